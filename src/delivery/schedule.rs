//! When a failed delivery is tried again: the retry schedule (default 5 s, 5 min, 30 min,
//! 2 h, 5 h, 10 h, 10 h), each delay ±20% so retries of many deliveries spread out, and a
//! receiver's `Retry-After` honoured within the schedule's bounds.

use std::time::Duration;

pub const DEFAULT_SCHEDULE: &str = "5,300,1800,7200,18000,36000,36000";

#[derive(Clone, Debug, PartialEq)]
pub struct RetrySchedule(Vec<Duration>);

impl RetrySchedule {
    /// Comma-separated seconds (fractions allowed), e.g. `5,300,1800`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let delays = raw
            .split(',')
            .map(|part| {
                let secs: f64 = part
                    .trim()
                    .parse()
                    .map_err(|_| format!("{part:?} is not a number of seconds"))?;
                if !(0.0..=86_400.0 * 7.0).contains(&secs) {
                    return Err(format!("{part:?} must be from 0 to 604800 seconds"));
                }
                Ok(Duration::from_secs_f64(secs))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if delays.is_empty() {
            return Err("needs at least one delay".into());
        }
        Ok(Self(delays))
    }

    /// How many attempts a delivery gets in all: the first and one per delay.
    pub fn max_attempts(&self) -> usize {
        self.0.len() + 1
    }

    /// The wait before the next attempt after `attempts` failed ones, or `None` when the
    /// delivery has used them all. `jitter` is a number in [0, 1).
    pub fn next_delay(
        &self,
        attempts: usize,
        retry_after: Option<Duration>,
        jitter: f64,
    ) -> Option<Duration> {
        let base = *self.0.get(attempts.checked_sub(1)?)?;
        if let Some(wanted) = retry_after {
            let lowest = self.0.iter().min().copied().unwrap_or_default();
            let highest = self.0.iter().max().copied().unwrap_or_default();
            return Some(wanted.clamp(lowest, highest));
        }
        Some(base.mul_f64(0.8 + 0.4 * jitter.clamp(0.0, 1.0)))
    }
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self::parse(DEFAULT_SCHEDULE).unwrap_or(Self(vec![Duration::from_secs(5)]))
    }
}

/// `Retry-After`: delay seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    (at.with_timezone(&chrono::Utc) - now).to_std().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_schedule_with_jitter() {
        let s = RetrySchedule::default();
        assert_eq!(s.max_attempts(), 8);
        assert_eq!(s.next_delay(1, None, 0.5), Some(Duration::from_secs(5)));
        let low = s.next_delay(2, None, 0.0).unwrap();
        let high = s.next_delay(2, None, 0.999).unwrap();
        assert_eq!(low, Duration::from_secs(240));
        assert!(high > Duration::from_secs(359) && high <= Duration::from_secs(360));
        assert_eq!(
            s.next_delay(8, None, 0.5),
            None,
            "seven retries, then give up"
        );
    }

    #[test]
    fn retry_after_is_honoured_within_bounds() {
        let s = RetrySchedule::default();
        assert_eq!(
            s.next_delay(1, Some(Duration::from_secs(60)), 0.5),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            s.next_delay(1, Some(Duration::from_secs(1)), 0.5),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            s.next_delay(1, Some(Duration::from_secs(999_999)), 0.5),
            Some(Duration::from_secs(36000))
        );
        let now = chrono::Utc::now();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert!(parse_retry_after("soon", now).is_none());
    }

    #[test]
    fn schedules_parse_strictly() {
        assert_eq!(RetrySchedule::parse("0.1, 0.2").unwrap().max_attempts(), 3);
        assert!(RetrySchedule::parse("").is_err());
        assert!(RetrySchedule::parse("5,x").is_err());
        assert!(RetrySchedule::parse("-1").is_err());
    }
}
