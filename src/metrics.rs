//! Per-component counters: events and bytes in and out, errors by kind, discards by
//! reason, and gauges (file checkpoints, buffer fill). Kept in memory so a metrics
//! endpoint can expose them; logged as a summary at shutdown.

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The counters of one component.
#[derive(Debug, Default)]
pub struct ComponentMetrics {
    /// The component id.
    pub id: String,
    /// `source`, `transform` or `sink`.
    pub kind: &'static str,
    events_in: AtomicU64,
    bytes_in: AtomicU64,
    events_out: AtomicU64,
    bytes_out: AtomicU64,
    errors: Mutex<BTreeMap<String, u64>>,
    discarded: Mutex<BTreeMap<String, u64>>,
    gauges: Mutex<BTreeMap<String, u64>>,
    last_log_sec: AtomicU64,
}

/// A point-in-time copy of one component's counters.
#[derive(Debug, Serialize, Clone, PartialEq)]
pub struct Snapshot {
    pub id: String,
    pub kind: &'static str,
    pub events_in: u64,
    pub bytes_in: u64,
    pub events_out: u64,
    pub bytes_out: u64,
    pub errors: BTreeMap<String, u64>,
    pub discarded: BTreeMap<String, u64>,
    pub gauges: BTreeMap<String, u64>,
}

fn bump(map: &Mutex<BTreeMap<String, u64>>, key: &str, n: u64) {
    let mut m = map.lock().unwrap_or_else(|e| e.into_inner());
    match m.get_mut(key) {
        Some(v) => *v += n,
        None => {
            m.insert(key.to_string(), n);
        }
    }
}

impl ComponentMetrics {
    /// Counters for component `id` of `kind`.
    pub fn new(id: &str, kind: &'static str) -> Arc<Self> {
        Arc::new(ComponentMetrics {
            id: id.to_string(),
            kind,
            ..Default::default()
        })
    }
    /// Counts events (and their bytes) received.
    pub fn received(&self, events: u64, bytes: u64) {
        self.events_in.fetch_add(events, Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes, Ordering::Relaxed);
    }
    /// Counts events (and their bytes) sent on or written.
    pub fn sent(&self, events: u64, bytes: u64) {
        self.events_out.fetch_add(events, Ordering::Relaxed);
        self.bytes_out.fetch_add(bytes, Ordering::Relaxed);
    }
    /// Counts an error of `kind` (e.g. `invalid_utf8`, `vrl_runtime`, `io`).
    pub fn error(&self, kind: &str, n: u64) {
        bump(&self.errors, kind, n);
    }
    /// Counts events discarded for `reason` (e.g. `filtered`, `line_too_long`).
    pub fn discarded(&self, reason: &str, n: u64) {
        bump(&self.discarded, reason, n);
    }
    /// Sets gauge `name` (e.g. `checkpoint./var/log/app.log`).
    pub fn gauge(&self, name: &str, value: u64) {
        self.gauges
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), value);
    }
    /// True at most once a second: lets per-event warnings be logged without flooding.
    pub fn log_due(&self) -> bool {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.last_log_sec.swap(now, Ordering::Relaxed) != now
    }
    /// A copy of every counter.
    pub fn snapshot(&self) -> Snapshot {
        let lock = |m: &Mutex<BTreeMap<String, u64>>| m.lock().unwrap_or_else(|e| e.into_inner()).clone();
        Snapshot {
            id: self.id.clone(),
            kind: self.kind,
            events_in: self.events_in.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            events_out: self.events_out.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            errors: lock(&self.errors),
            discarded: lock(&self.discarded),
            gauges: lock(&self.gauges),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_accumulate() {
        let m = ComponentMetrics::new("x", "source");
        m.received(2, 10);
        m.error("io", 1);
        m.error("io", 2);
        m.discarded("filtered", 1);
        let s = m.snapshot();
        assert_eq!((s.events_in, s.bytes_in), (2, 10));
        assert_eq!(s.errors["io"], 3);
        assert_eq!(s.discarded["filtered"], 1);
    }
}
