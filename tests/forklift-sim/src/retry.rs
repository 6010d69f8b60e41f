//! Which API errors Forklift requeues and retries (the server away, busy or restarting) and which
//! fail a VM for good (the server refused the request: 4xx such as 403 or 422).

use std::time::{Duration, Instant};

/// Whether trying again later may help: transport errors (connect, reset, timeout), 429, 5xx,
/// and 409 (an optimistic-concurrency conflict, which a controller simply requeues).
pub fn is_transient(err: &kube::Error) -> bool {
    match err {
        kube::Error::Api(status) => {
            // Server-side apply's "field not declared in schema" is a 500 that never passes.
            let permanent = status.message.contains("not declared in schema")
                || status.message.contains("failed to create typed patch");
            matches!(status.code, 409 | 429 | 500..=599) && !permanent
        }
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => true,
        _ => false,
    }
}

/// Exponential backoff for a VM's requeued step: 250 ms doubling up to 5 s, in real time.
#[derive(Debug, Clone, Default)]
pub struct Backoff {
    pub failures: u32,
    pub next_at: Option<Instant>,
}

impl Backoff {
    /// Records a transient failure; returns the delay before the next attempt.
    pub fn failed(&mut self) -> Duration {
        let delay = Duration::from_millis(250)
            .saturating_mul(1 << self.failures.min(5))
            .min(Duration::from_secs(5));
        self.failures += 1;
        self.next_at = Some(Instant::now() + delay);
        delay
    }

    /// Whether a (re)try is due now: never tried, or the backoff delay has passed.
    pub fn due(&self) -> bool {
        self.next_at.is_none_or(|at| at <= Instant::now())
    }
}

/// Backoffs by key (an object's uid), for controllers that retry many objects independently, as
/// client-go's rate-limited work queue does.
#[derive(Debug, Default)]
pub struct Keyed {
    backoffs: std::collections::HashMap<String, Backoff>,
}

impl Keyed {
    pub fn due(&self, key: &str) -> bool {
        self.backoffs.get(key).is_none_or(Backoff::due)
    }

    /// Records a failure for `key`; returns the delay before its next attempt.
    pub fn failed(&mut self, key: &str) -> Duration {
        self.backoffs.entry(key.to_string()).or_default().failed()
    }

    /// Failures so far for `key`.
    pub fn failures(&self, key: &str) -> u32 {
        self.backoffs.get(key).map_or(0, |b| b.failures)
    }

    pub fn succeeded(&mut self, key: &str) {
        self.backoffs.remove(key);
    }

    /// Waits `delay` before acting on `key` again (a change is on its way to the watch cache).
    pub fn pause(&mut self, key: &str, delay: Duration) {
        let entry = self.backoffs.entry(key.to_string()).or_default();
        entry.next_at = Some(Instant::now() + delay);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16, message: &str) -> kube::Error {
        kube::Error::Api(Box::new(kube::core::Status {
            code,
            message: message.into(),
            ..Default::default()
        }))
    }

    #[test]
    fn server_trouble_is_transient_refusals_are_not() {
        for code in [409, 429, 500, 503, 504] {
            assert!(is_transient(&api(code, "busy")), "{code}");
        }
        for code in [400, 401, 403, 404, 422] {
            assert!(!is_transient(&api(code, "no")), "{code}");
        }
        assert!(!is_transient(&api(
            500,
            ".spec.foo: field not declared in schema"
        )));
        let connect: Box<dyn std::error::Error + Send + Sync> = "client error (Connect)".into();
        assert!(is_transient(&kube::Error::Service(connect)));
    }

    #[test]
    fn backoff_doubles_up_to_five_seconds() {
        let mut b = Backoff::default();
        assert!(b.due());
        let delays: Vec<u128> = (0..8).map(|_| b.failed().as_millis()).collect();
        assert_eq!(delays, [250, 500, 1000, 2000, 4000, 5000, 5000, 5000]);
        assert!(!b.due());
    }
}
