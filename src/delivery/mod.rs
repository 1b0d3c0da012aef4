//! Webhook delivery: a dispatcher built from typed stages, `claim → send → classify →
//! record`, that any number of servers can run against one Postgres (leases,
//! `SKIP LOCKED`); on SQLite one process owns dispatch. Woken by the committing
//! transaction (`NOTIFY`, or in-process), with a periodic sweep as the safety net.

pub mod client;
pub mod schedule;
pub mod signing;

use self::client::{AddressGuard, Answer, Failure, WebhookClient};
use self::schedule::{parse_retry_after, RetrySchedule};
use crate::domain::time::{self, Timestamp};
use crate::domain::wire;
use crate::storage::{AttemptRecord, AttemptResult, ClaimedDelivery, DispatchStore};
use futures_util::StreamExt;
use ipnet::IpNet;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// A webhook failing this long without a success is disabled.
pub const DISABLE_AFTER_DAYS: i64 = 5;

/// Attempts written per transaction at most.
const RECORD_BATCH: usize = 256;

/// How long the recorder gathers attempts after the first before writing them.
const RECORD_GATHER: Duration = Duration::from_millis(3);

/// How often to look again when deliveries are due but none can be claimed.
const BLOCKED_POLL: Duration = Duration::from_millis(100);

/// The longest the loop sleeps while it knows of nothing due: `next_due` does not see
/// deliveries leased by a server that died, and this bounds how long after their lease
/// lapses another server takes them (an empty claim and a look a second when idle).
const LAPSED_LEASE_POLL: Duration = Duration::from_secs(1);

/// The Standard Webhooks headers of one delivery (`None` if a value cannot be a header).
fn webhook_headers(event_id: &str, timestamp: i64, signature: &str) -> Option<HeaderMap> {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert("webhook-id", HeaderValue::from_str(event_id).ok()?);
    headers.insert("webhook-timestamp", HeaderValue::from(timestamp));
    headers.insert("webhook-signature", HeaderValue::from_str(signature).ok()?);
    Some(headers)
}

#[derive(Clone, Debug)]
pub struct DispatchConfig {
    pub schedule: RetrySchedule,
    /// How long a receiver has to answer.
    pub timeout: Duration,
    /// Addresses outside public space that webhooks may reach.
    pub allowed_cidrs: Vec<IpNet>,
    /// Deliveries claimed per step.
    pub batch: i64,
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// The longest the dispatcher sleeps without a wake-up.
    pub sweep: Duration,
    /// Snapshots in flight at once at most (a share of `concurrency`): a backfill to one
    /// product never holds every sending permit (SPEC section 11).
    pub snapshot_concurrency: usize,
    /// Customers per backfill chunk, and the pending snapshots a backfill may have
    /// before its next chunk is queued.
    pub backfill_chunk: i64,
    pub backfill_pending: i64,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        Self {
            schedule: RetrySchedule::default(),
            timeout: Duration::from_secs(15),
            allowed_cidrs: Vec::new(),
            batch: 128,
            concurrency: 256,
            sweep: Duration::from_secs(5),
            snapshot_concurrency: 16,
            backfill_chunk: 1_000,
            backfill_pending: 2_000,
        }
    }
}

impl DispatchConfig {
    /// A claim outlives the longest send by a margin; if its server dies, another
    /// server takes the delivery once the lease lapses.
    pub fn lease(&self) -> Duration {
        self.timeout + Duration::from_secs(5) + self.timeout / 2
    }
}

/// What one attempt to send came to.
#[derive(Debug)]
pub enum Sent {
    /// The receiver answered (any status).
    Answered(Answer),
    /// No answer: refused address, connection error, timeout.
    Failed(Failure),
    /// Nothing could be sent: the product has no URL, or its secret cannot sign.
    Unsendable(&'static str),
}

/// What an attempt's outcome means for its delivery (pure: no I/O, no clock, no
/// randomness). `attempts` counts this one; `jitter` is a number in [0, 1).
pub fn classify(
    sent: &Sent,
    attempts: i32,
    schedule: &RetrySchedule,
    now: Timestamp,
    jitter: f64,
) -> AttemptResult {
    let retry_after = match sent {
        Sent::Answered(answer) => match answer.status {
            200..=299 => return AttemptResult::Delivered,
            410 => return AttemptResult::Gone,
            _ => answer
                .retry_after
                .as_deref()
                .and_then(|value| parse_retry_after(value, now)),
        },
        Sent::Failed(_) => None,
        Sent::Unsendable(_) => return AttemptResult::GiveUp,
    };
    match schedule.next_delay(attempts.max(0) as usize, retry_after, jitter) {
        Some(delay) => AttemptResult::Retry(now + chrono_of(delay)),
        None => AttemptResult::GiveUp,
    }
}

/// The row the log keeps of an attempt.
fn attempt_record(
    d: &ClaimedDelivery,
    at: Timestamp,
    sent: Sent,
    result: AttemptResult,
) -> AttemptRecord {
    let (response_code, latency, response_body, error) = match sent {
        Sent::Answered(a) => (Some(i32::from(a.status)), a.latency, Some(a.body), None),
        Sent::Failed(f) => (None, f.latency, None, Some(f.error)),
        Sent::Unsendable(why) => (None, Duration::ZERO, None, Some(why.to_owned())),
    };
    AttemptRecord {
        snapshot: d.snapshot.is_some(),
        probe: d.probe,
        delivery_id: d.delivery_id.clone(),
        product_id: d.product_id.clone(),
        attempt: d.attempts,
        at,
        response_code,
        latency_ms: latency.as_millis() as i64,
        response_body,
        error,
        result,
        disable_if_failing_since: at - chrono::Duration::days(DISABLE_AFTER_DAYS),
    }
}

pub struct Dispatcher {
    store: Arc<dyn DispatchStore>,
    client: WebhookClient,
    config: DispatchConfig,
    /// The loop saw deliveries due that it could not claim (another version of their
    /// pair in flight): the next recorded attempt may free them, so recording wakes the
    /// loop. Otherwise a success wakes nobody, and a delivered burst costs no empty
    /// claims.
    waiting: AtomicBool,
}

fn chrono_of(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::zero())
}

impl Dispatcher {
    pub fn new(store: Arc<dyn DispatchStore>, config: DispatchConfig) -> anyhow::Result<Self> {
        let client = WebhookClient::new(
            config.timeout,
            AddressGuard::new(config.allowed_cidrs.clone()),
        )?;
        Ok(Self {
            store,
            client,
            config,
            waiting: AtomicBool::new(false),
        })
    }

    /// One step: claim due deliveries, send them concurrently, record each outcome.
    /// Returns how many were handled.
    pub async fn step(&self) -> anyhow::Result<usize> {
        let claimed = self.claim(self.config.batch, self.config.batch).await?;
        let handled = claimed.len();
        let records: Vec<AttemptRecord> = futures_util::stream::iter(claimed)
            .map(|delivery| self.attempt(delivery))
            .buffer_unordered(self.config.concurrency)
            .collect()
            .await;
        self.record(&records).await?;
        Ok(handled)
    }

    /// Stage 1: lease up to `limit` due deliveries, live ones first, of which at most
    /// `snapshots` snapshots.
    async fn claim(&self, limit: i64, snapshots: i64) -> anyhow::Result<Vec<ClaimedDelivery>> {
        let now = time::now();
        let lease_until = now + chrono_of(self.config.lease());
        Ok(self
            .store
            .claim_deliveries(now, lease_until, limit, snapshots)
            .await?)
    }

    /// The backfill stage: queues the next chunk of a running backfill (whichever server
    /// dispatches), and completes the backfills that are done. Whether a chunk was queued.
    pub async fn backfill_step(&self) -> anyhow::Result<bool> {
        let now = time::now();
        let queued = self
            .store
            .queue_backfill_chunk(
                now,
                self.config.backfill_chunk,
                self.config.backfill_pending,
            )
            .await?;
        self.store.settle_backfills(now).await?;
        Ok(queued.is_some())
    }

    /// Runs the backfill stage until `shutdown`: chunk after chunk while there is work,
    /// else on a wake-up or every sweep.
    async fn run_backfills(&self, shutdown: CancellationToken) {
        let wakeup = self.store.backfill_wakeup();
        loop {
            let busy = match self.backfill_step().await {
                Ok(busy) => busy,
                Err(err) => {
                    tracing::warn!(error = %err, "queuing a backfill chunk failed; retrying shortly");
                    false
                }
            };
            if busy {
                if shutdown.is_cancelled() {
                    return;
                }
                continue;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = wakeup.notified() => {}
                _ = tokio::time::sleep(self.config.sweep) => {}
            }
        }
    }

    /// Stages 2 and 3 for one delivery, in a span naming it (never personal data):
    /// send, then classify what came back into the record to write.
    async fn attempt(&self, d: ClaimedDelivery) -> AttemptRecord {
        let span = tracing::info_span!(
            "delivery",
            delivery_id = %d.delivery_id,
            product_id = %d.product_id,
            attempt = d.attempts,
        );
        async {
            let started = time::now();
            let sent = self.send(&d, started).await;
            let result = classify(
                &sent,
                // The retries this delivery has spent: failed probes spend none.
                d.attempts - d.spared,
                &self.config.schedule,
                time::now(),
                rand::random::<f64>(),
            );
            tracing::debug!(?result, "delivery attempted");
            attempt_record(&d, started, sent, result)
        }
        .instrument(span)
        .await
    }

    /// Stage 2: the signed Standard Webhooks request.
    async fn send(&self, d: &ClaimedDelivery, now: Timestamp) -> Sent {
        let body = match &d.snapshot {
            // A snapshot's event is the customer as it is now (the data of an update).
            Some(stored) => wire::webhook_body(
                &d.event_type,
                &d.event_created,
                &wire::event_data(&stored.customer, None),
                stored.vendor_customer_id.as_deref(),
            ),
            None => {
                let vendor_id = d
                    .vendor_ids
                    .get(d.product_id.as_str())
                    .and_then(|v| v.as_str());
                wire::webhook_body(&d.event_type, &d.event_created, &d.data, vendor_id)
            }
        };
        // A JSON value always serializes.
        let body = serde_json::to_vec(&body).unwrap_or_default();
        let timestamp = now.timestamp();
        let secrets: Vec<&str> = d.secrets.iter().map(String::as_str).collect();
        let headers = signing::signature_header(&secrets, &d.event_id, timestamp, &body)
            .ok()
            .and_then(|signature| webhook_headers(&d.event_id, timestamp, &signature));
        let (Some(url), Some(headers)) = (d.webhook_url.as_deref(), headers) else {
            return Sent::Unsendable("the product has no webhook URL or a malformed secret");
        };
        match self.client.post(url, headers, body).await {
            Ok(answer) => Sent::Answered(answer),
            Err(failure) => Sent::Failed(failure),
        }
    }

    /// Stage 4: records attempts in one transaction, counting them by outcome.
    /// Recording frees the (product, customer) pairs for their next version, and a
    /// failure sets a retry time or pauses a product: then the loop is woken (for a
    /// success, only if it is waiting for one).
    async fn record(&self, records: &[AttemptRecord]) -> anyhow::Result<()> {
        for record in records {
            let outcome = match record.result {
                AttemptResult::Delivered => "delivered",
                AttemptResult::Retry(_) => "retry",
                AttemptResult::GiveUp => "failed",
                AttemptResult::Gone => "gone",
            };
            metrics::counter!("customer_list_deliveries_total", "outcome" => outcome).increment(1);
            metrics::histogram!("customer_list_delivery_duration_seconds")
                .record(record.latency_ms as f64 / 1000.0);
        }
        self.store.record_attempts(records).await?;
        let failed = records
            .iter()
            .any(|r| !matches!(r.result, AttemptResult::Delivered));
        if self.waiting.swap(false, SeqCst) || failed {
            self.store.delivery_wakeup().notify_one();
        }
        if records.iter().any(|r| r.snapshot) {
            // Snapshots drained: the backfill stage may queue its next chunk.
            self.store.backfill_wakeup().notify_one();
        }
        Ok(())
    }

    /// Writes what the senders report, in batches: whatever arrived while the previous
    /// batch was being written, or within `RECORD_GATHER` of its first, goes in the next
    /// one. Ends when every sender is gone.
    async fn record_continuously(
        &self,
        mut sent: tokio::sync::mpsc::UnboundedReceiver<AttemptRecord>,
    ) {
        while let Some(first) = sent.recv().await {
            let mut batch = vec![first];
            // The sends of one claim end within moments of each other: gathered for a
            // moment, they are written in one transaction instead of one each (nothing
            // waits on a record but the pair's next version).
            let _ = tokio::time::timeout(RECORD_GATHER, async {
                while batch.len() < RECORD_BATCH {
                    match sent.recv().await {
                        Some(record) => batch.push(record),
                        None => break,
                    }
                }
            })
            .await;
            if let Err(err) = self.record(&batch).await {
                // The leases lapse and the deliveries are sent again: at least once.
                tracing::warn!(error = %err, count = batch.len(), "could not record delivery attempts");
            }
        }
    }

    /// How long to sleep before the next step: until the next delivery not in flight
    /// falls due, at most one sweep interval. One due now could not be claimed: the loop
    /// is marked waiting (before the look, so a record written meanwhile still wakes it)
    /// and sleeps until a record or a write wakes it, polling slowly.
    async fn idle_for(&self) -> Duration {
        self.waiting.store(true, SeqCst);
        let now = time::now();
        let due = match self.store.next_due(now).await {
            Ok(Some(due)) => (due - now).to_std().unwrap_or(Duration::ZERO),
            Ok(None) => self.config.sweep,
            Err(err) => {
                tracing::warn!(error = %err, "reading the next due delivery failed");
                return BLOCKED_POLL;
            }
        };
        if due.is_zero() {
            return BLOCKED_POLL;
        }
        self.waiting.store(false, SeqCst);
        due.min(self.config.sweep).min(LAPSED_LEASE_POLL)
    }

    /// Runs until `shutdown`, as a pipeline of the same stages: it takes its sending
    /// permits first (waiting for at least one) and claims exactly that many, so a slow
    /// receiver holds one permit, never the others. On shutdown, deliveries in flight
    /// finish and are recorded first.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let wakeup = self.store.delivery_wakeup();
        let forwarder = {
            let store = self.store.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move { store.forward_notifications(shutdown).await })
        };
        let (report, sent) = tokio::sync::mpsc::unbounded_channel();
        let recorder = {
            let this = self.clone();
            tokio::spawn(async move { this.record_continuously(sent).await })
        };
        let backfills = {
            let this = self.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move { this.run_backfills(shutdown).await })
        };
        let permits = Arc::new(Semaphore::new(self.config.concurrency));
        let snapshot_permits = Arc::new(Semaphore::new(self.config.snapshot_concurrency));
        let mut in_flight = tokio::task::JoinSet::new();
        loop {
            while in_flight.try_join_next().is_some() {}
            let held = tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                held = self.take_permits(&permits) => held,
            };
            let wanted = held.len();
            // Snapshots in batches, once half their permits are free: claiming one for
            // each that finished cost a claim transaction per snapshot.
            let free = snapshot_permits.available_permits();
            let snapshot_room = if free * 2 >= self.config.snapshot_concurrency {
                free.min(wanted)
            } else {
                0
            };
            let claimed = match self.claim(wanted as i64, snapshot_room as i64).await {
                Ok(claimed) => claimed,
                Err(err) => {
                    tracing::warn!(error = %err, "claiming deliveries failed; retrying shortly");
                    Vec::new()
                }
            };
            let got = claimed.len();
            // Permits beyond what was claimed drop with `held` here.
            for (delivery, permit) in claimed.into_iter().zip(held) {
                let this = self.clone();
                let report = report.clone();
                // At most `snapshot_room` snapshots were claimed: these never wait.
                let snapshot_permit = match delivery.snapshot {
                    Some(_) => snapshot_permits.clone().try_acquire_owned().ok(),
                    None => None,
                };
                in_flight.spawn(async move {
                    let _ = report.send(this.attempt(delivery).await);
                    drop((permit, snapshot_permit));
                });
            }
            if got == wanted {
                // Every permit found work: there may be more due.
                continue;
            }
            let idle = self.idle_for().await;
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = wakeup.notified() => {}
                _ = tokio::time::sleep(idle) => {}
            }
        }
        while in_flight.join_next().await.is_some() {}
        let _ = backfills.await;
        drop(report);
        let _ = recorder.await;
        let _ = forwarder.await;
    }

    /// Waits for one sending permit, then takes as many more as are free, up to a batch.
    async fn take_permits(&self, permits: &Arc<Semaphore>) -> Vec<OwnedSemaphorePermit> {
        let Ok(first) = permits.clone().acquire_owned().await else {
            return Vec::new();
        };
        let mut held = vec![first];
        while (held.len() as i64) < self.config.batch {
            match permits.clone().try_acquire_owned() {
                Ok(permit) => held.push(permit),
                Err(_) => break,
            }
        }
        held
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(status: u16, retry_after: Option<&str>) -> Sent {
        Sent::Answered(Answer {
            status,
            retry_after: retry_after.map(str::to_owned),
            body: String::new(),
            latency: Duration::from_millis(3),
        })
    }

    fn at(seconds: i64) -> Timestamp {
        chrono::DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn a_2xx_is_delivered_and_410_disables() {
        let schedule = RetrySchedule::default();
        for status in [200, 204, 299] {
            let sent = answered(status, None);
            assert_eq!(
                classify(&sent, 1, &schedule, at(0), 0.5),
                AttemptResult::Delivered
            );
        }
        let gone = answered(410, None);
        assert_eq!(
            classify(&gone, 1, &schedule, at(0), 0.5),
            AttemptResult::Gone
        );
    }

    #[test]
    fn failures_retry_on_the_schedule_until_it_runs_out() {
        let schedule = RetrySchedule::parse("5,300").unwrap();
        let failed = Sent::Failed(Failure {
            error: "connection refused".into(),
            latency: Duration::ZERO,
        });
        // Jitter 0.5 is the schedule's own delay (±20% around it).
        assert_eq!(
            classify(&failed, 1, &schedule, at(0), 0.5),
            AttemptResult::Retry(at(5))
        );
        assert_eq!(
            classify(&answered(503, None), 2, &schedule, at(0), 0.5),
            AttemptResult::Retry(at(300))
        );
        assert_eq!(
            classify(&failed, 3, &schedule, at(0), 0.5),
            AttemptResult::GiveUp
        );
        // The lowest jitter is 20% early.
        assert_eq!(
            classify(&failed, 1, &schedule, at(0), 0.0),
            AttemptResult::Retry(at(4))
        );
    }

    #[test]
    fn retry_after_is_honoured_within_the_schedule() {
        let schedule = RetrySchedule::parse("5,300").unwrap();
        let wanted = answered(429, Some("120"));
        assert_eq!(
            classify(&wanted, 1, &schedule, at(0), 0.9),
            AttemptResult::Retry(at(120))
        );
        let too_long = answered(503, Some("86400"));
        assert_eq!(
            classify(&too_long, 1, &schedule, at(0), 0.9),
            AttemptResult::Retry(at(300))
        );
    }

    #[test]
    fn what_cannot_be_sent_gives_up_at_once() {
        let schedule = RetrySchedule::default();
        let sent = Sent::Unsendable("no URL");
        assert_eq!(
            classify(&sent, 1, &schedule, at(0), 0.5),
            AttemptResult::GiveUp
        );
    }
}
