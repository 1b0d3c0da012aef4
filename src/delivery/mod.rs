//! Webhook delivery: a dispatcher built from one step, `claim → send → record`, that any
//! number of servers can run against one Postgres (leases, `SKIP LOCKED`); on SQLite one
//! process owns dispatch. Woken by the committing transaction (`NOTIFY`, or in-process),
//! with a periodic sweep as the safety net.

pub mod client;
pub mod schedule;
pub mod signing;

use self::client::{AddressGuard, WebhookClient};
use self::schedule::{parse_retry_after, RetrySchedule};
use crate::domain::time::{self, Timestamp};
use crate::domain::wire;
use crate::storage::{AttemptRecord, AttemptResult, ClaimedDelivery, DynStore};
use futures_util::StreamExt;
use ipnet::IpNet;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A webhook failing this long without a success is disabled.
pub const DISABLE_AFTER_DAYS: i64 = 5;

/// Attempts written per transaction at most.
const RECORD_BATCH: usize = 256;

/// How often to look again when deliveries are due but none can be claimed.
const BLOCKED_POLL: Duration = Duration::from_millis(100);

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
}

impl Default for DispatchConfig {
    fn default() -> Self {
        Self {
            schedule: RetrySchedule::default(),
            timeout: Duration::from_secs(15),
            allowed_cidrs: Vec::new(),
            batch: 128,
            concurrency: 64,
            sweep: Duration::from_secs(5),
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

pub struct Dispatcher {
    store: DynStore,
    client: WebhookClient,
    config: DispatchConfig,
}

fn chrono_of(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::zero())
}

impl Dispatcher {
    pub fn new(store: DynStore, config: DispatchConfig) -> anyhow::Result<Self> {
        let client = WebhookClient::new(
            config.timeout,
            AddressGuard::new(config.allowed_cidrs.clone()),
        )?;
        Ok(Self {
            store,
            client,
            config,
        })
    }

    /// One step: claim due deliveries, send them concurrently, record each outcome.
    /// Returns how many were handled.
    pub async fn step(&self) -> anyhow::Result<usize> {
        let now = time::now();
        let lease_until = now + chrono_of(self.config.lease());
        let claimed = self
            .store
            .claim_deliveries(now, lease_until, self.config.batch)
            .await?;
        let handled = claimed.len();
        let records: Vec<AttemptRecord> = futures_util::stream::iter(claimed)
            .map(|delivery| self.deliver(delivery))
            .buffer_unordered(self.config.concurrency)
            .collect()
            .await;
        self.record(&records).await?;
        Ok(handled)
    }

    /// Sends one claimed delivery; returns what happened, to be recorded.
    async fn deliver(&self, d: ClaimedDelivery) -> AttemptRecord {
        let now = time::now();
        let vendor_id = d
            .vendor_ids
            .get(d.product_id.as_str())
            .and_then(|v| v.as_str());
        let body = wire::webhook_body(&d.event_type, &d.event_created, &d.data, vendor_id);
        // A JSON value always serializes.
        let body = serde_json::to_vec(&body).unwrap_or_default();
        let timestamp = now.timestamp();
        let secrets: Vec<&str> = d.secrets.iter().map(String::as_str).collect();
        let mut record = AttemptRecord {
            delivery_id: d.delivery_id.clone(),
            product_id: d.product_id.clone(),
            attempt: d.attempts,
            at: now,
            response_code: None,
            latency_ms: 0,
            response_body: None,
            error: None,
            result: AttemptResult::GiveUp,
            disable_if_failing_since: now - chrono::Duration::days(DISABLE_AFTER_DAYS),
        };
        let headers = signing::signature_header(&secrets, &d.event_id, timestamp, &body)
            .ok()
            .and_then(|signature| webhook_headers(&d.event_id, timestamp, &signature));
        let (Some(url), Some(headers)) = (d.webhook_url.as_deref(), headers) else {
            record.error = Some("the product has no webhook URL or a malformed secret".into());
            return record;
        };
        let retry_after = match self.client.post(url, headers, body).await {
            Ok(answer) => {
                record.response_code = Some(i32::from(answer.status));
                record.latency_ms = answer.latency.as_millis() as i64;
                record.response_body = Some(answer.body);
                match answer.status {
                    200..=299 => {
                        record.result = AttemptResult::Delivered;
                        return record;
                    }
                    410 => {
                        record.result = AttemptResult::Gone;
                        return record;
                    }
                    _ => answer
                        .retry_after
                        .and_then(|value| parse_retry_after(&value, now)),
                }
            }
            Err(failure) => {
                record.latency_ms = failure.latency.as_millis() as i64;
                record.error = Some(failure.error);
                None
            }
        };
        record.result = match self.config.schedule.next_delay(
            d.attempts.max(0) as usize,
            retry_after,
            rand::random::<f64>(),
        ) {
            Some(delay) => AttemptResult::Retry(time::now() + chrono_of(delay)),
            None => AttemptResult::GiveUp,
        };
        record
    }

    /// Records attempts in one transaction, counting them by outcome. Recording frees
    /// the (product, customer) pairs for their next version: the loop is woken.
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
        self.store.delivery_wakeup().notify_one();
        Ok(())
    }

    /// Writes what the senders report, in batches: whatever arrived while the previous
    /// batch was being written goes in the next one. Ends when every sender is gone.
    async fn record_continuously(
        &self,
        mut sent: tokio::sync::mpsc::UnboundedReceiver<AttemptRecord>,
    ) {
        while let Some(first) = sent.recv().await {
            let mut batch = vec![first];
            while batch.len() < RECORD_BATCH {
                match sent.try_recv() {
                    Ok(record) => batch.push(record),
                    Err(_) => break,
                }
            }
            if let Err(err) = self.record(&batch).await {
                // The leases lapse and the deliveries are sent again: at least once.
                tracing::warn!(error = %err, count = batch.len(), "could not record delivery attempts");
            }
        }
    }

    /// How long to sleep before the next step: until the next delivery falls due, at
    /// most one sweep interval.
    async fn idle_for(&self) -> Duration {
        match self.store.next_due().await {
            Ok(Some(due)) => {
                let wait: Timestamp = due;
                (wait - time::now())
                    .to_std()
                    .unwrap_or(Duration::ZERO)
                    .min(self.config.sweep)
            }
            _ => self.config.sweep,
        }
    }

    /// Runs until `shutdown`, as a pipeline of the same claim → send → record: it
    /// claims only as many deliveries as it has free sending slots, and claims again as
    /// soon as one frees, so a slow receiver holds one slot, never the others. On
    /// shutdown, deliveries in flight finish and are recorded first.
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
        let slots = Arc::new(tokio::sync::Semaphore::new(self.config.concurrency));
        let mut in_flight = tokio::task::JoinSet::new();
        while !shutdown.is_cancelled() {
            while in_flight.try_join_next().is_some() {}
            let free = slots.available_permits() as i64;
            let claimed = if free == 0 {
                Ok(Vec::new())
            } else {
                let now = time::now();
                let lease_until = now + chrono_of(self.config.lease());
                self.store
                    .claim_deliveries(now, lease_until, free.min(self.config.batch))
                    .await
            };
            let claimed = match claimed {
                Ok(claimed) => claimed,
                Err(err) => {
                    tracing::warn!(error = %err, "claiming deliveries failed; retrying shortly");
                    Vec::new()
                }
            };
            let claimed_none = claimed.is_empty();
            let full = !claimed_none && claimed.len() as i64 >= free.min(self.config.batch);
            for delivery in claimed {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    break;
                };
                let this = self.clone();
                let report = report.clone();
                in_flight.spawn(async move {
                    let _ = report.send(this.deliver(delivery).await);
                    drop(slot);
                });
            }
            if full && slots.available_permits() > 0 {
                continue;
            }
            let wait_for_slot = full || free == 0;
            let idle = if wait_for_slot {
                Duration::from_secs(1)
            } else if claimed_none {
                // Due but not claimable (in flight, or behind an older version in
                // flight): recording wakes the loop; until then, poll slowly.
                self.idle_for().await.max(BLOCKED_POLL)
            } else {
                self.idle_for().await
            };
            let freed = slots.clone();
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = wakeup.notified() => {}
                _ = tokio::time::sleep(idle) => {}
                // A slot freed while all were busy: there may be more to claim.
                _ = async move {
                    if wait_for_slot {
                        let _ = freed.acquire().await;
                    } else {
                        std::future::pending::<()>().await
                    }
                } => {}
            }
        }
        while in_flight.join_next().await.is_some() {}
        drop(report);
        let _ = recorder.await;
        let _ = forwarder.await;
    }
}
