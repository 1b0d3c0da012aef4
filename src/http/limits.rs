//! Cross-cutting limits of the HTTP API: per-key rate limits (`429` with `Retry-After`),
//! request timeouts, and CORS for the configured browser origins.

use crate::error::ApiError;
use axum::http::{header, HeaderName, HeaderValue, Method};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use std::num::NonZeroU32;
use std::time::Duration;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// How long one request may take before the server gives up on it.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Rate limits per API key (by its digest), a GCRA token bucket.
pub struct RateLimits {
    limiter: DefaultKeyedRateLimiter<String>,
}

impl RateLimits {
    pub fn per_second(rate: u32) -> Self {
        let rate = NonZeroU32::new(rate.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = rate.saturating_mul(NonZeroU32::new(2).unwrap_or(NonZeroU32::MIN));
        Self {
            limiter: DefaultKeyedRateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
        }
    }

    /// Lets a request of `key` through, or refuses it with `429` and `Retry-After`.
    pub fn check(&self, key: &str) -> Result<(), ApiError> {
        match self.limiter.check_key(&key.to_owned()) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                Err(ApiError::new(
                    axum::http::StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    "Too many requests",
                    format!("this key's rate limit is exceeded; retry in {seconds} s"),
                )
                .with_header(header::RETRY_AFTER, HeaderValue::from(seconds)))
            }
        }
    }

    /// Forgets keys idle long enough to be back at a full bucket.
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

/// CORS for the configured origins; `None` when there are none (no CORS headers at all).
pub fn cors(origins: &[String]) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .map(|o| o.trim())
        .filter(|o| !o.is_empty())
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::IF_MATCH,
                HeaderName::from_static("idempotency-key"),
                HeaderName::from_static("x-request-id"),
            ])
            .expose_headers([
                header::ETAG,
                header::LOCATION,
                header::RETRY_AFTER,
                HeaderName::from_static("x-request-id"),
                HeaderName::from_static("idempotent-replayed"),
            ])
            .max_age(Duration::from_secs(3600)),
    )
}
