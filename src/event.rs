//! Events: a VRL [`Value`] (the event's fields), a metadata value (VRL's `%` paths),
//! and the acknowledgement handle of the source batch the event came from.
//!
//! Events move between components in batches ([`EventBatch`]). Cloning an event for a
//! fan-out clones its acknowledgement handle, so every branch must deliver its copy
//! before the source hears "delivered".

use crate::ack::{BatchNotifier, BatchStatus, Finalizers};
use std::sync::Arc;
use vrl::value::{KeyString, ObjectMap, Value};

/// A batch of events, the unit moved over channels.
pub type EventBatch = Vec<Event>;

/// One log event.
#[derive(Debug)]
pub struct Event {
    /// The event's fields; an object for every event a source emits.
    pub value: Value,
    /// Metadata reachable from VRL as `%field`.
    pub metadata: Value,
    finalizer: Option<Arc<BatchNotifier>>,
}

impl Event {
    /// An event with the given fields and no acknowledgement handle.
    pub fn new(value: Value) -> Self {
        Event {
            value,
            metadata: Value::Object(ObjectMap::new()),
            finalizer: None,
        }
    }

    /// An event made of `fields`.
    pub fn from_map(fields: ObjectMap) -> Self {
        Event::new(Value::Object(fields))
    }

    /// Attaches the acknowledgement handle of a source batch.
    pub fn with_notifier(mut self, notifier: &Arc<BatchNotifier>) -> Self {
        self.finalizer = Some(notifier.clone());
        self
    }

    /// The same fields with the same acknowledgement handle; the copy must be
    /// finalized like the original.
    pub fn duplicate(&self) -> Self {
        Event {
            value: self.value.clone(),
            metadata: self.metadata.clone(),
            finalizer: self.finalizer.clone(),
        }
    }

    /// A new event with other fields that stays tied to this event's batch.
    pub fn derive(&self, value: Value) -> Self {
        Event {
            value,
            metadata: self.metadata.clone(),
            finalizer: self.finalizer.clone(),
        }
    }

    /// Reports this event's fate to its source.
    pub fn finalize(mut self, status: BatchStatus) {
        if let Some(f) = self.finalizer.take() {
            f.update(status);
        }
    }

    /// Moves the acknowledgement handle into `finalizers`, for sinks that acknowledge
    /// after a later flush.
    pub fn take_finalizer(&mut self, finalizers: &mut Finalizers) {
        if let Some(f) = self.finalizer.take() {
            finalizers.push(f);
        }
    }

    /// Takes the acknowledgement handle out, for sinks that hand each event's fate to
    /// an outside callback (a Kafka delivery report); the event itself then no longer
    /// reports anything.
    pub fn take_notifier(&mut self) -> Option<Arc<BatchNotifier>> {
        self.finalizer.take()
    }

    /// The top-level field `key`, if the event is an object holding it.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match &self.value {
            Value::Object(map) => map.get(key),
            _ => None,
        }
    }

    /// A dotted path lookup (`a.b.c`) into the event's fields.
    pub fn get_path(&self, path: &str) -> Option<&Value> {
        let mut cur = &self.value;
        for part in path.split('.') {
            cur = match cur {
                Value::Object(map) => map.get(part)?,
                _ => return None,
            };
        }
        Some(cur)
    }

    /// Sets the top-level field `key`, turning a non-object event into an object.
    pub fn insert(&mut self, key: &str, value: impl Into<Value>) {
        if !matches!(self.value, Value::Object(_)) {
            let old = std::mem::replace(&mut self.value, Value::Object(ObjectMap::new()));
            if let Value::Object(map) = &mut self.value {
                map.insert(KeyString::from("message"), old);
            }
        }
        if let Value::Object(map) = &mut self.value {
            map.insert(KeyString::from(key), value.into());
        }
    }
}

impl Drop for Event {
    fn drop(&mut self) {
        if let Some(f) = self.finalizer.take() {
            f.update(BatchStatus::Errored);
        }
    }
}

/// A string value repeated on many events (a host name, a file path), interned for
/// the life of the process: copies of it then cost no allocation and no reference
/// count traffic between threads. Only for values from a small, bounded set.
pub fn interned(text: &str) -> Value {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    static TABLE: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut table = TABLE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let text: &'static str = match table.get(text) {
        Some(t) => t,
        None => {
            let leaked: &'static str = Box::leak(text.to_string().into_boxed_str());
            table.insert(leaked);
            leaked
        }
    };
    Value::Bytes(bytes::Bytes::from_static(text.as_bytes()))
}

/// Renders a value as text: strings as they are, everything else as JSON.
pub fn value_to_string(value: &Value) -> String {
    match value {
        Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        Value::String(s) => s.to_string(),
        Value::Timestamp(t) => t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ack;

    #[tokio::test]
    async fn dropped_event_errors_its_batch_and_finalized_copy_does_not() {
        let (n, rx) = BatchNotifier::new();
        let e = Event::new(Value::from("x")).with_notifier(&n);
        drop(n);
        let copy = e.duplicate();
        e.finalize(BatchStatus::Delivered);
        copy.finalize(BatchStatus::Delivered);
        assert_eq!(ack::wait(rx).await, BatchStatus::Delivered);

        let (n, rx) = BatchNotifier::new();
        let e = Event::new(Value::from("x")).with_notifier(&n);
        drop(n);
        drop(e);
        assert_eq!(ack::wait(rx).await, BatchStatus::Errored);
    }

    #[test]
    fn paths_and_insert() {
        let mut e = Event::new(Value::from("hello"));
        e.insert("a", 1);
        assert_eq!(e.get("message"), Some(&Value::from("hello")));
        assert_eq!(e.get_path("a"), Some(&Value::from(1)));
        assert_eq!(e.get_path("a.b"), None);
    }
}
