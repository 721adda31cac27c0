//! When and how long to wait before asking a provider again.
//!
//! 429 and 5xx answers and connection failures before any byte arrived are retried with
//! exponential backoff and full jitter (a uniformly random wait between zero and the capped
//! exponential), or after exactly the wait the provider asked for in `retry-after`.

use std::time::{Duration, SystemTime};

use http::HeaderMap;

/// How often and how patiently a request is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt; 0 disables retrying.
    pub max_retries: u32,
    /// The backoff before the first retry (before jitter); it doubles for each further retry.
    pub base_delay: Duration,
    /// No wait is longer than this. A provider that asks for a longer `retry-after` is not
    /// retried: the error says how long it asked for instead.
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// Retries used by default.
    pub const DEFAULT_MAX_RETRIES: u32 = 3;
    /// The first backoff used by default.
    pub const DEFAULT_BASE_DELAY: Duration = Duration::from_millis(500);
    /// The longest wait used by default.
    pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(30);

    pub const fn new(max_retries: u32, base_delay: Duration, max_delay: Duration) -> RetryPolicy {
        RetryPolicy {
            max_retries,
            base_delay,
            max_delay,
        }
    }

    /// Never retry.
    pub const fn never() -> RetryPolicy {
        RetryPolicy::new(0, Duration::ZERO, Duration::ZERO)
    }

    /// The wait before retry number `retry` (1 for the first retry), with full jitter.
    pub(crate) fn backoff(&self, retry: u32) -> Duration {
        let exponent = retry.saturating_sub(1).min(31);
        let ceiling = self
            .base_delay
            .saturating_mul(1u32 << exponent)
            .min(self.max_delay);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(fastrand::u64(0..=nanos))
    }
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy::new(
            RetryPolicy::DEFAULT_MAX_RETRIES,
            RetryPolicy::DEFAULT_BASE_DELAY,
            RetryPolicy::DEFAULT_MAX_DELAY,
        )
    }
}

/// The wait a 429 or 503 answer asks for: `retry-after-ms` (sent by Anthropic and OpenAI), or
/// `retry-after` in seconds or as an HTTP date.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    if let Some(millis) = header_text(headers, "retry-after-ms")
        .and_then(|value| value.trim().parse::<f64>().ok())
        .filter(|millis| millis.is_finite() && *millis >= 0.0)
    {
        return Some(Duration::from_secs_f64(millis / 1000.0));
    }
    let value = header_text(headers, "retry-after")?.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

fn header_text<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name)?.to_str().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn backoff_stays_under_the_capped_exponential() {
        let policy = RetryPolicy::new(5, Duration::from_millis(100), Duration::from_millis(250));
        for _ in 0..100 {
            assert!(policy.backoff(1) <= Duration::from_millis(100));
            assert!(policy.backoff(2) <= Duration::from_millis(200));
            assert!(policy.backoff(3) <= Duration::from_millis(250));
            assert!(policy.backoff(40) <= Duration::from_millis(250));
        }
    }

    #[test]
    fn retry_after_reads_seconds_milliseconds_and_dates() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert("retry-after-ms", HeaderValue::from_static("150"));
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(150)));

        let mut headers = HeaderMap::new();
        let later = SystemTime::now() + Duration::from_secs(120);
        let date = httpdate::fmt_http_date(later);
        headers.insert(
            "retry-after",
            HeaderValue::from_str(&date).expect("a date is a valid header value"),
        );
        let wait = retry_after(&headers).expect("an HTTP date is understood");
        assert!(wait > Duration::from_secs(100) && wait <= Duration::from_secs(120));

        headers.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }
}
