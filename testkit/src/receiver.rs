//! A webhook receiver: a real HTTP server on port 0 that answers each request as it is
//! told (a script of answers first, then its standing answer) and records it.
//!
//! It keeps two records: a [`Receipt`] of every request (which event, when, how it was
//! answered; cheap enough for the bench's thousands a second), and, when asked to, the
//! whole [`Received`] request with its headers and body (what the tests inspect and the
//! bench replays).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// How the receiver answers one request.
#[derive(Clone, Debug)]
pub enum Answer {
    Status(u16),
    /// Wait this long, then answer 200.
    Hang(Duration),
    StatusRetryAfter(u16, u64),
}

/// One request, whole.
#[derive(Clone, Debug)]
pub struct Received {
    pub at: Instant,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub json: Value,
    /// The status this request was answered with.
    pub answered: u16,
}

/// What one request carried, in brief: the event's type and its customer's id, version
/// and origin, as the hub's webhook bodies name them (empty when the body is not one).
#[derive(Clone, Debug)]
pub struct Receipt {
    /// When the request arrived.
    pub at: Instant,
    /// The same moment by the wall clock, to compare with the hub's own timestamps.
    pub wall: DateTime<Utc>,
    pub kind: String,
    pub contact_id: String,
    pub version: i64,
    pub origin: Option<String>,
    pub answered: u16,
    /// Answered only after a hang: a hub with a shorter timeout had given up on it.
    pub hung: bool,
}

impl Receipt {
    /// Answered 2xx at once: the hub saw it succeed.
    pub fn accepted(&self) -> bool {
        (200..300).contains(&self.answered) && !self.hung
    }
}

/// The standing answer, once the script is used up.
type Otherwise = Arc<dyn Fn() -> Answer + Send + Sync>;
/// A check of each kept body: what is wrong with it (nothing, when it is fine).
type Check = Arc<dyn Fn(&Value) -> Vec<String> + Send + Sync>;

struct Inner {
    /// Requests begun, answered or not.
    started: AtomicUsize,
    keep_requests: AtomicBool,
    parse_json: bool,
    received: Mutex<Vec<Received>>,
    receipts: Mutex<Vec<Receipt>>,
    script: Mutex<VecDeque<Answer>>,
    otherwise: Otherwise,
    check: Option<Check>,
    /// What `check` found wrong, reported by every read of the kept requests.
    violations: Mutex<Vec<String>>,
    arrived: Notify,
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    inner: Arc<Inner>,
}

/// How to start a [`Receiver`]: by default it keeps whole requests and answers 200.
pub struct ReceiverBuilder {
    keep_requests: bool,
    parse_json: bool,
    otherwise: Otherwise,
    check: Option<Check>,
}

impl ReceiverBuilder {
    /// Whether whole requests are kept (receipts always are); can change later with
    /// [`Receiver::keep_requests`].
    pub fn keep_requests(mut self, keep: bool) -> Self {
        self.keep_requests = keep;
        self
    }

    /// Whether a kept request's body is parsed into [`Received::json`] (else `Null`): the
    /// bench keeps bodies only to replay them, and must not spend the machine's CPU on it.
    pub fn parse_json(mut self, parse: bool) -> Self {
        self.parse_json = parse;
        self
    }

    /// The answer to every request the script does not cover.
    pub fn otherwise(mut self, answer: impl Fn() -> Answer + Send + Sync + 'static) -> Self {
        self.otherwise = Arc::new(answer);
        self
    }

    /// Checks every kept body (against a schema, say); what it finds fails every later
    /// read of the kept requests.
    pub fn check(mut self, check: impl Fn(&Value) -> Vec<String> + Send + Sync + 'static) -> Self {
        self.check = Some(Arc::new(check));
        self
    }

    pub async fn start(self) -> Receiver {
        let inner = Arc::new(Inner {
            started: AtomicUsize::new(0),
            keep_requests: AtomicBool::new(self.keep_requests),
            parse_json: self.parse_json,
            received: Mutex::default(),
            receipts: Mutex::default(),
            script: Mutex::default(),
            otherwise: self.otherwise,
            check: self.check,
            violations: Mutex::default(),
            arrived: Notify::new(),
        });
        let app = Router::new().fallback(receive).with_state(inner.clone());
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a receiver");
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, inner }
    }
}

/// The part of a webhook body a receipt keeps, read without building a JSON tree.
#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct Brief {
    #[serde(rename = "type")]
    kind: String,
    data: BriefData,
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct BriefData {
    contact_id: String,
    version: i64,
    origin: Option<String>,
}

async fn receive(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let (at, wall) = (Instant::now(), Utc::now());
    inner.started.fetch_add(1, Ordering::SeqCst);
    let scripted = inner.script.lock().unwrap().pop_front();
    let answer = scripted.unwrap_or_else(|| (inner.otherwise)());
    let (status, hang) = match &answer {
        Answer::Status(s) | Answer::StatusRetryAfter(s, _) => (*s, None),
        Answer::Hang(delay) => (200, Some(*delay)),
    };
    let brief: Brief = serde_json::from_slice(&body).unwrap_or_default();
    let kept = inner
        .keep_requests
        .load(Ordering::Relaxed)
        .then(|| Received {
            at,
            json: if inner.parse_json {
                serde_json::from_slice(&body).unwrap_or(Value::Null)
            } else {
                Value::Null
            },
            headers,
            body,
            answered: status,
        });
    if let Some(delay) = hang {
        tokio::time::sleep(delay).await;
    }
    inner.receipts.lock().unwrap().push(Receipt {
        at,
        wall,
        kind: brief.kind,
        contact_id: brief.data.contact_id,
        version: brief.data.version,
        origin: brief.data.origin,
        answered: status,
        hung: hang.is_some(),
    });
    if let Some(kept) = kept {
        if let Some(check) = &inner.check {
            let found = check(&kept.json);
            inner.violations.lock().unwrap().extend(found);
        }
        inner.received.lock().unwrap().push(kept);
    }
    inner.arrived.notify_waiters();
    let status = StatusCode::from_u16(status).expect("a valid status");
    match answer {
        Answer::StatusRetryAfter(_, secs) => {
            (status, [("retry-after", secs.to_string())], "later").into_response()
        }
        _ => (status, "ok").into_response(),
    }
}

impl Receiver {
    /// A receiver that keeps whole requests and answers 200 unless scripted.
    pub async fn start() -> Self {
        Self::builder().start().await
    }

    pub fn builder() -> ReceiverBuilder {
        ReceiverBuilder {
            keep_requests: true,
            parse_json: true,
            otherwise: Arc::new(|| Answer::Status(200)),
            check: None,
        }
    }

    /// Queues answers for the next requests (then the standing answer).
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.inner.script.lock().unwrap().extend(answers);
    }

    /// Drops the answers not used yet.
    pub fn clear_script(&self) {
        self.inner.script.lock().unwrap().clear();
    }

    pub fn keep_requests(&self, keep: bool) {
        self.inner.keep_requests.store(keep, Ordering::Relaxed);
    }

    /// How many requests have begun (a hanging one counts before it is answered).
    pub fn started(&self) -> usize {
        self.inner.started.load(Ordering::SeqCst)
    }

    /// The whole requests kept so far.
    #[track_caller]
    pub fn received(&self) -> Vec<Received> {
        let violations = self.inner.violations.lock().unwrap();
        assert!(
            violations.is_empty(),
            "bodies that fail the receiver's check: {violations:?}"
        );
        self.inner.received.lock().unwrap().clone()
    }

    /// The whole requests kept so far, leaving none.
    pub fn take_received(&self) -> Vec<Received> {
        std::mem::take(&mut *self.inner.received.lock().unwrap())
    }

    /// The kept requests answered 2xx.
    pub fn delivered(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| (200..300).contains(&r.answered))
            .collect()
    }

    pub fn receipts(&self) -> Vec<Receipt> {
        self.inner.receipts.lock().unwrap().clone()
    }

    pub fn receipt_count(&self) -> usize {
        self.inner.receipts.lock().unwrap().len()
    }

    /// Forgets every receipt and kept request.
    pub fn clear(&self) {
        self.inner.receipts.lock().unwrap().clear();
        self.inner.received.lock().unwrap().clear();
    }

    /// Waits until `done` holds for the kept requests, at most `limit`.
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

    /// Every kept request verifies with the official Standard Webhooks library.
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
