//! Gauges a component declares: a value set from time to time (files watched, open
//! files, a consumer's lag), alone or as a family with bounded labels (one series per
//! assigned Kafka partition, never one per file or per key).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The static description of one gauge.
#[derive(Debug, PartialEq, Eq)]
pub struct GaugeSpec {
    /// The Prometheus name, with its unit (`pipe_kafka_consumer_lag_messages`).
    pub metric: &'static str,
    /// Label names besides the component's own; empty for a single value.
    pub labels: &'static [&'static str],
    /// What it measures, for the generated docs.
    pub doc: &'static str,
}

/// A single gauge value.
#[derive(Debug, Clone, Default)]
pub struct Gauge(pub(super) Arc<AtomicU64>);

impl Gauge {
    /// Sets the value.
    pub fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }
    /// Adds to the value.
    pub fn add(&self, v: u64) {
        self.0.fetch_add(v, Ordering::Relaxed);
    }
    /// Subtracts from the value, stopping at zero.
    pub fn sub(&self, v: u64) {
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |x| Some(x.saturating_sub(v)));
    }
    /// The value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A family of gauges told apart by label values (in the order of
/// [`GaugeSpec::labels`]). Set from periodic statistics, not per event.
#[derive(Debug, Clone, Default)]
pub struct GaugeFamily(pub(super) Arc<Mutex<BTreeMap<Vec<String>, u64>>>);

impl GaugeFamily {
    /// Sets the series with these label values.
    pub fn set(&self, labels: &[&str], v: u64) {
        let key: Vec<String> = labels.iter().map(|s| s.to_string()).collect();
        self.lock().insert(key, v);
    }
    /// Keeps only the series for which `keep` is true (e.g. partitions still assigned).
    pub fn retain(&self, mut keep: impl FnMut(&[String]) -> bool) {
        self.lock().retain(|k, _| keep(k));
    }
    /// Every series.
    pub fn series(&self) -> Vec<(Vec<String>, u64)> {
        self.lock().iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
    /// The sum over every series.
    pub fn sum(&self) -> u64 {
        self.lock().values().sum()
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Vec<String>, u64>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}
