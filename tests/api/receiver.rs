//! A webhook receiver for tests: a real HTTP server on port 0 that records every request
//! and answers as the test scripts it (a status, a delay, a `Retry-After`).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::Notify;

#[derive(Clone, Debug)]
pub enum Answer {
    Status(u16),
    /// Wait this long, then answer 200.
    Hang(Duration),
    StatusRetryAfter(u16, u64),
}

#[derive(Clone, Debug)]
pub struct Received {
    pub at: Instant,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub json: Value,
    /// The status this request was answered with.
    pub answered: u16,
}

#[derive(Default)]
struct Inner {
    /// Requests begun, answered or not.
    started: std::sync::atomic::AtomicUsize,
    received: Mutex<Vec<Received>>,
    script: Mutex<VecDeque<Answer>>,
    arrived: Notify,
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    inner: Arc<Inner>,
}

async fn receive(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    inner
        .started
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let answer = inner
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(Answer::Status(200));
    let status = match &answer {
        Answer::Status(s) | Answer::StatusRetryAfter(s, _) => *s,
        Answer::Hang(_) => 200,
    };
    let received = Received {
        at: Instant::now(),
        json: serde_json::from_slice(&body).unwrap_or(Value::Null),
        headers,
        body,
        answered: status,
    };
    if let Answer::Hang(delay) = answer {
        tokio::time::sleep(delay).await;
    }
    inner.received.lock().unwrap().push(received);
    inner.arrived.notify_waiters();
    let status = StatusCode::from_u16(status).unwrap();
    match answer {
        Answer::StatusRetryAfter(_, secs) => {
            (status, [("retry-after", secs.to_string())], "later").into_response()
        }
        _ => (status, "ok").into_response(),
    }
}

impl Receiver {
    pub async fn start() -> Self {
        let inner = Arc::new(Inner::default());
        let app = Router::new().fallback(receive).with_state(inner.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, inner }
    }

    /// Queues answers for the next requests (then 200).
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.inner.script.lock().unwrap().extend(answers);
    }

    /// Drops the answers not used yet: from now on every request gets 200.
    pub fn clear_script(&self) {
        self.inner.script.lock().unwrap().clear();
    }

    /// How many requests have begun (a hanging one counts before it is answered).
    pub fn started(&self) -> usize {
        self.inner.started.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.received.lock().unwrap().clone()
    }

    /// The requests answered 2xx.
    pub fn delivered(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| (200..300).contains(&r.answered))
            .collect()
    }

    /// Waits until `done` holds for what was received, at most `limit`.
    pub async fn wait_until(
        &self,
        limit: Duration,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = Instant::now() + limit;
        loop {
            let notified = self.inner.arrived.notified();
            let received = self.received();
            if done(&received) || Instant::now() >= deadline {
                return received;
            }
            let _ = tokio::time::timeout(
                Duration::from_millis(100).min(deadline - Instant::now()),
                notified,
            )
            .await;
        }
    }

    /// Every request verifies with the official Standard Webhooks library.
    #[track_caller]
    pub fn assert_all_signed(&self, secret: &str) {
        let verifier = standardwebhooks::Webhook::new(secret).expect("a whsec_ secret");
        for r in self.received() {
            verifier
                .verify(&r.body, &r.headers)
                .unwrap_or_else(|e| panic!("delivery does not verify: {e:?}: {:?}", r.headers));
        }
    }
}
