//! Runs one test's inputs through the topology's sources' decoding and its transforms,
//! synchronously and in graph order, and collects what every output carried. Sinks
//! are never built; transforms are flushed (open `sql` windows emitted) once their
//! input has ended, before their consumers run.

use super::spec::{InputSpec, TestSpec};
use crate::component::{Body, Kind, TransformOutput};
use crate::config::Node;
use crate::event::Event;
use std::collections::{HashMap, HashSet};
use vrl::value::{KeyString, ObjectMap, Value};

/// The events each output carried (`id`, `id.name`), in order.
pub type Collected = HashMap<String, Vec<Event>>;

/// Feeds `test`'s inputs into `nodes` (a topology loaded without sinks) and returns what
/// each source and transform output carried.
pub fn run(test: &TestSpec, nodes: Vec<Node>) -> Collected {
    let mut collected: Collected = HashMap::new();
    // Events given straight to a transform, before anything its inputs carry.
    let mut direct: HashMap<String, Vec<Event>> = HashMap::new();
    for input in &test.inputs {
        let Some(node) = nodes.iter().find(|n| n.id == input.insert_at) else {
            continue;
        };
        match node.kind {
            Kind::Source => at_source(node, input, &mut collected),
            _ => direct.entry(node.id.clone()).or_default().extend(given(input)),
        }
    }
    let mut transforms: Vec<Node> = nodes.into_iter().filter(|n| n.kind == Kind::Transform).collect();
    let mut done: HashSet<String> = HashSet::new();
    while !transforms.is_empty() {
        // The next one whose upstream transforms have all run (the graph is acyclic).
        let ready = transforms
            .iter()
            .position(|t| {
                t.inputs.iter().all(|i| {
                    let id = i.split_once('.').map_or(i.as_str(), |(id, _)| id);
                    done.contains(id) || !transforms.iter().any(|o| o.id == id)
                })
            })
            .unwrap_or(0);
        let node = transforms.remove(ready);
        let mut batch = direct.remove(&node.id).unwrap_or_default();
        for i in &node.inputs {
            batch.extend(collected.get(i).into_iter().flatten().map(Event::duplicate));
        }
        let Body::Transform(mut t) = node.built.body else {
            continue;
        };
        let mut out = TransformOutput::new(node.built.outputs.len());
        t.transform(batch, &mut out, &node.metrics);
        t.flush(&mut out, &node.metrics);
        collected.entry(node.id.clone()).or_default().extend(out.default);
        for (name, events) in node.built.outputs.iter().zip(out.named) {
            collected
                .entry(format!("{}.{name}", node.id))
                .or_default()
                .extend(events);
        }
        done.insert(node.id);
    }
    collected
}

/// The events of `input` as given: its `events`, then one `{message}` per line.
fn given(input: &InputSpec) -> Vec<Event> {
    let mut events: Vec<Event> = input.events.iter().map(fields_event).collect();
    events.extend(input.lines.iter().map(|l| message_event(l)));
    events
}

/// `input` at the source `node`: lines through its decoding, events as given. A line
/// the source refuses goes to its `dropped` output, marked as the source marks it.
fn at_source(node: &Node, input: &InputSpec, collected: &mut Collected) {
    let mut out = input.events.iter().map(fields_event).collect::<Vec<_>>();
    for line in &input.lines {
        let decoded = match &node.built.decoder {
            Some(decode) => decode(line.as_bytes()),
            None => Ok(vec![message_fields(line)]),
        };
        match decoded {
            Ok(events) => out.extend(events.into_iter().map(Event::from_map)),
            Err(reason) => {
                let mut e = message_event(line);
                let mut why = ObjectMap::new();
                why.insert("reason".into(), Value::from(reason));
                why.insert("component".into(), Value::from(node.id.as_str()));
                e.insert("dropped", Value::Object(why));
                collected.entry(format!("{}.dropped", node.id)).or_default().push(e);
            }
        }
    }
    collected.entry(node.id.clone()).or_default().extend(out);
}

fn message_fields(line: &str) -> ObjectMap {
    ObjectMap::from([(KeyString::from("message"), Value::from(line))])
}

fn message_event(line: &str) -> Event {
    Event::from_map(message_fields(line))
}

/// An event of TOML fields; a TOML date-time with an offset becomes a timestamp.
pub fn fields_event(fields: &toml::Table) -> Event {
    Event::new(vrl_value(&toml::Value::Table(fields.clone())))
}

fn vrl_value(v: &toml::Value) -> Value {
    match v {
        toml::Value::Datetime(d) => match chrono::DateTime::parse_from_rfc3339(&d.to_string()) {
            Ok(t) => Value::Timestamp(t.with_timezone(&chrono::Utc)),
            Err(_) => Value::from(d.to_string()),
        },
        toml::Value::Table(t) => Value::Object(
            t.iter()
                .map(|(k, v)| (KeyString::from(k.as_str()), vrl_value(v)))
                .collect(),
        ),
        toml::Value::Array(a) => Value::Array(a.iter().map(vrl_value).collect()),
        other => Value::from(toml_json(other)),
    }
}

/// A TOML value as JSON; date-times as their text, as events show them.
pub fn toml_json(v: &toml::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        toml::Value::String(s) => J::String(s.clone()),
        toml::Value::Integer(i) => J::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        toml::Value::Boolean(b) => J::Bool(*b),
        toml::Value::Datetime(d) => J::String(d.to_string()),
        toml::Value::Array(a) => J::Array(a.iter().map(toml_json).collect()),
        toml::Value::Table(t) => J::Object(t.iter().map(|(k, v)| (k.clone(), toml_json(v))).collect()),
    }
}
