//! The one retry policy every component uses for transient failures: jittered
//! exponential backoff, and one "failing" / "works again" log pair per outage instead
//! of a line per attempt. While failing, the component's [`RETRYING`] gauge is 1 (and
//! `/health` reports it degraded).

use crate::error::ComponentError;
use crate::metrics::{ComponentMetrics, Emitter, GaugeSpec, InternalEvent};

/// 1 while an operation of the component fails and is retried with backoff.
pub static RETRYING: GaugeSpec = GaugeSpec {
    metric: "pipe_component_retrying",
    labels: &[],
    doc: "1 while an operation (a request, an upload, a write) fails and is retried with backoff; then `/health` reports the component degraded.",
};
use std::time::{Duration, Instant};

/// Jittered exponential backoff: `first`, doubling up to `max`, each wait ×0.5–1.5.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// Waits from `first` doubling to `max`.
    pub fn new(first: Duration, max: Duration) -> Self {
        Backoff { first, max, attempt: 0 }
    }

    /// The default for talking to servers and disks: 100 ms doubling to 30 s.
    pub fn standard() -> Self {
        Backoff::new(Duration::from_millis(100), Duration::from_secs(30))
    }

    /// The next wait.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.first.saturating_mul(1u32 << self.attempt.min(20)).min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        base.mul_f64(0.5 + jitter())
    }

    /// Starts again from `first`.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// A number in [0, 1) that differs between calls and processes.
fn jitter() -> f64 {
    (random_u64() % 1_000_000) as f64 / 1_000_000.0
}

/// A number that differs between calls and processes (not for cryptography).
pub fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.finish()
}

/// Retries of one kind of operation in one component (e.g. "bulk requests").
pub struct Retry {
    what: &'static str,
    backoff: Backoff,
    failing_since: Option<Instant>,
    attempts: u64,
    last_log: Option<Instant>,
}

impl Retry {
    /// Retries of `what` (a plural noun: "uploads", "bulk requests", "writes").
    pub fn new(what: &'static str) -> Self {
        Retry::with_backoff(what, Backoff::standard())
    }

    /// Retries with another backoff.
    pub fn with_backoff(what: &'static str, backoff: Backoff) -> Self {
        Retry {
            what,
            backoff,
            failing_since: None,
            attempts: 0,
            last_log: None,
        }
    }

    /// Records a failed attempt (counted by `counter`), logs when the failure starts
    /// and once a minute while it lasts, and returns how long to wait.
    pub fn failed<E: InternalEvent>(
        &mut self,
        error: &ComponentError,
        counter: &Emitter<E>,
        metrics: &ComponentMetrics,
    ) -> Duration {
        counter.count(1);
        self.attempts += 1;
        let now = Instant::now();
        let first = self.failing_since.is_none();
        if first {
            self.failing_since = Some(now);
            metrics.gauge(&RETRYING).set(1);
        }
        if first
            || self
                .last_log
                .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(60))
        {
            self.last_log = Some(now);
            tracing::error!(component = %metrics.id, fault = %error.fault, attempts = self.attempts, error = %error, "{} fail; retrying with backoff, the events concerned wait.", capitalized(self.what));
        }
        self.backoff.next_delay()
    }

    /// Like [`Retry::failed`], then sleeps.
    pub async fn wait<E: InternalEvent>(
        &mut self,
        error: &ComponentError,
        counter: &Emitter<E>,
        metrics: &ComponentMetrics,
    ) {
        let delay = self.failed(error, counter, metrics);
        tokio::time::sleep(delay).await;
    }

    /// Records a success: logs the recovery if it was failing and resets the backoff.
    pub fn succeeded(&mut self, metrics: &ComponentMetrics) {
        if let Some(since) = self.failing_since.take() {
            metrics.gauge(&RETRYING).set(0);
            tracing::info!(component = %metrics.id, failed_for_secs = since.elapsed().as_secs(), attempts = self.attempts, "{} work again.", capitalized(self.what));
        }
        self.attempts = 0;
        self.last_log = None;
        self.backoff.reset();
    }

    /// True between a failure and the next success.
    pub fn is_failing(&self) -> bool {
        self.failing_since.is_some()
    }
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_max() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let waits: Vec<Duration> = (0..8).map(|_| b.next_delay()).collect();
        assert!(waits[0] >= Duration::from_millis(50) && waits[0] < Duration::from_millis(150));
        assert!(waits[7] >= Duration::from_millis(500) && waits[7] < Duration::from_millis(1500));
        b.reset();
        assert!(b.next_delay() < Duration::from_millis(150));
    }

    #[test]
    fn failing_gauge_follows_the_outage() {
        let m = ComponentMetrics::unchecked("s", "sink");
        let mut r = Retry::new("writes");
        r.failed(&ComponentError::external("down"), &m.emitter::<Down>(), &m);
        assert!(r.is_failing());
        assert_eq!(m.snapshot().gauges[RETRYING.metric], 1);
        r.succeeded(&m);
        assert!(!r.is_failing());
        assert_eq!(m.snapshot().gauges[RETRYING.metric], 0);
        assert_eq!(m.snapshot().errors["down"], 1);
    }

    struct Down;
    impl InternalEvent for Down {
        const SPEC: crate::metrics::EventSpec = crate::metrics::EventSpec {
            name: "down",
            counts: crate::metrics::Counts::Error {
                fault: crate::error::Fault::External,
                stage: crate::metrics::Stage::Sending,
            },
            doc: "Down.",
        };
        fn log(&self, _: &str, _: u64) {}
    }
}
