//! The Kafka REST Proxy's produce API on the `http` source, so that clients written
//! for Confluent's REST Proxy send here unchanged:
//!
//! - v2 `POST /topics/{topic}`, `{"records": [{"key": …, "value": …}]}`, in the JSON
//!   embedded format (`application/vnd.kafka.json.v2+json`) or the binary one
//!   (`application/vnd.kafka.binary.v2+json`: base64 keys and values, decoded
//!   here); schema formats (Avro, JSON Schema, Protobuf) get 415;
//! - v3 `POST /v3/clusters/{cluster}/topics/{topic}/records`: one record, or a stream
//!   of concatenated records, `{"key": {"type": …, "data": …}, "value": {…}}` with
//!   types `JSON`, `STRING` and `BINARY`, each answered by a delivery report in order;
//! - `GET /topics` and `GET /topics/{topic}`, answered from the `topics` option;
//! - the error codes clients check: 40401 unknown topic, 42201 invalid records, 415
//!   unsupported content type, 50003 retriable (under backpressure, or not
//!   delivered).
//!
//! Decoders stop at `max_events` records, like every body decoder of the source.

use super::decode::{BodyError, Capped, fields, json_to_value};
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde_json::{Value as Json, json};
use vrl::value::{KeyString, ObjectMap, Value};

/// How v2 record keys and values are embedded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Embedded {
    /// JSON values as they are.
    Json,
    /// Base64 strings of the bytes.
    Binary,
}

/// The embedded format a v2 request's Content-Type names. No Content-Type, or a
/// plain JSON one, is the JSON format.
pub fn embedded(content_type: Option<&str>) -> Result<Embedded, BodyError> {
    let media = content_type
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match media.as_str() {
        ""
        | "application/json"
        | "application/vnd.kafka+json"
        | "application/vnd.kafka.v2+json"
        | "application/vnd.kafka.json.v2+json"
        | "application/vnd.kafka.json.v1+json" => Ok(Embedded::Json),
        "application/vnd.kafka.binary.v2+json" | "application/vnd.kafka.binary.v1+json" => Ok(Embedded::Binary),
        other => Err(BodyError::UnsupportedContentType(format!(
            "Content-Type `{other}` is not taken: use application/vnd.kafka.json.v2+json or application/vnd.kafka.binary.v2+json (schema formats are not supported)"
        ))),
    }
}

/// The v2 error code of an HTTP status, as Confluent's REST Proxy sends it.
pub fn v2_error_code(status: StatusCode) -> u32 {
    match status.as_u16() {
        404 => 40401,
        422 => 42201,
        415 => 415,
        500 | 503 => 50003,
        s => u32::from(s) * 100 + 1,
    }
}

/// `GET /topics`: the topics accepted (an empty list when any is).
pub fn topic_list(topics: &[String]) -> Json {
    json!(topics)
}

/// `GET /topics/{topic}`: what v2 clients read of a topic.
pub fn topic_info(topic: &str) -> Json {
    json!({
        "name": topic,
        "configs": {},
        "partitions": [{"partition": 0, "leader": 0, "replicas": [{"broker": 0, "leader": true, "in_sync": true}]}],
    })
}

/// A v2 produce request, `{"records": [...]}`: reads the records into `out` (other
/// keys are ignored), at most `max` of them.
struct Envelope<'a> {
    out: &'a mut Vec<ObjectMap>,
    max: usize,
    too_many: &'a mut bool,
    topic: &'a str,
    embedded: Embedded,
    /// The first record that cannot be decoded (bad base64), and why.
    invalid: &'a mut Option<String>,
}

impl<'de> Visitor<'de> for Envelope<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object with `records`")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = false;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key != "records" {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            if seen {
                return Err(de::Error::duplicate_field("records"));
            }
            seen = true;
            let (topic, embedded) = (self.topic, self.embedded);
            let invalid = &mut *self.invalid;
            let mut index = 0;
            map.next_value_seed(Capped {
                out: &mut *self.out,
                max: self.max,
                too_many: &mut *self.too_many,
                each: |r: V2Record| {
                    index += 1;
                    match v2_event(r, topic, embedded) {
                        Ok(m) => m,
                        Err(e) => {
                            invalid.get_or_insert_with(|| format!("record {index}: {e}"));
                            ObjectMap::new()
                        }
                    }
                },
                item: std::marker::PhantomData,
            })?;
        }
        if !seen {
            return Err(de::Error::missing_field("records"));
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct V2Record {
    #[serde(default)]
    key: Json,
    value: Json,
    #[serde(default)]
    partition: Option<i64>,
}

/// The events of a v2 produce request: the record value's fields (or `message` when
/// the value is not an object, or is binary), with `topic`, and `key` and
/// `partition` when given.
pub fn v2_records(
    body: &[u8],
    topic: &str,
    embedded: Embedded,
    max_events: usize,
) -> Result<Vec<ObjectMap>, BodyError> {
    let mut out = Vec::new();
    let mut too_many = false;
    let mut invalid = None;
    let mut de = serde_json::Deserializer::from_slice(body);
    let envelope = Envelope {
        out: &mut out,
        max: max_events,
        too_many: &mut too_many,
        topic,
        embedded,
        invalid: &mut invalid,
    };
    let read = de::Deserializer::deserialize_map(&mut de, envelope).and_then(|()| de.end());
    if too_many {
        return Err(BodyError::TooManyEvents(max_events));
    }
    read.map_err(|e| {
        BodyError::Malformed(format!(
            "not a Kafka REST v2 records envelope ({{\"records\":[{{\"key\":..,\"value\":..}}]}}): line {} column {}: {e}",
            e.line(),
            e.column()
        ))
    })?;
    if let Some(why) = invalid {
        return Err(BodyError::InvalidRecords(why));
    }
    Ok(out)
}

/// Base64 `data` as bytes.
fn binary(data: &Json, what: &str) -> Result<Value, String> {
    match data {
        Json::Null => Ok(Value::Null),
        Json::String(s) => STANDARD
            .decode(s.trim())
            .map(|b| Value::Bytes(b.into()))
            .map_err(|e| format!("{what} is not base64: {e}")),
        _ => Err(format!("{what} must be a base64 string in the binary format")),
    }
}

fn v2_event(r: V2Record, topic: &str, embedded: Embedded) -> Result<ObjectMap, String> {
    let (mut m, key) = match embedded {
        Embedded::Json => (fields(r.value), (!r.key.is_null()).then(|| json_to_value(r.key))),
        Embedded::Binary => {
            let mut m = ObjectMap::new();
            m.insert(KeyString::from("message"), binary(&r.value, "the value")?);
            let key = binary(&r.key, "the key")?;
            (m, (!matches!(key, Value::Null)).then_some(key))
        }
    };
    m.insert(KeyString::from("topic"), Value::from(topic.to_string()));
    if let Some(k) = key {
        m.insert(KeyString::from("key"), k);
    }
    if let Some(p) = r.partition {
        m.insert(KeyString::from("partition"), Value::Integer(p));
    }
    Ok(m)
}

/// The v2 answer to a delivered request of `count` records.
pub fn v2_reply(count: usize) -> Json {
    let offsets: Vec<_> = (0..count)
        .map(|_| json!({ "partition": null, "offset": null, "error_code": null, "error": null }))
        .collect();
    json!({ "offsets": offsets, "key_schema_id": null, "value_schema_id": null })
}

/// One v3 record.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct V3Record {
    #[serde(default)]
    partition_id: Option<i64>,
    #[serde(default)]
    headers: Vec<V3Header>,
    #[serde(default)]
    key: Option<V3Data>,
    #[serde(default)]
    value: Option<V3Data>,
    #[serde(default)]
    timestamp: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct V3Header {
    name: String,
    #[serde(default)]
    value: Option<String>,
}

#[derive(Deserialize)]
struct V3Data {
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    data: Json,
    #[serde(flatten)]
    other: serde_json::Map<String, Json>,
}

/// A v3 delivery report, before delivery: what the record held, or why it is refused.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    Accepted {
        partition: i64,
        key: Option<(String, usize)>,
        value: Option<(String, usize)>,
        timestamp: Option<String>,
    },
    Refused(String),
}

/// The records of a v3 produce request (one JSON object, or several concatenated):
/// the events of the valid ones, and a report for each record in order.
pub fn v3_records(body: &[u8], topic: &str, max_events: usize) -> Result<(Vec<ObjectMap>, Vec<Report>), BodyError> {
    let mut events = Vec::new();
    let mut reports = Vec::new();
    for item in serde_json::Deserializer::from_slice(body).into_iter::<Json>() {
        let item = item.map_err(|e| {
            BodyError::Malformed(format!(
                "not a stream of Kafka REST v3 records: line {} column {}: {e}",
                e.line(),
                e.column()
            ))
        })?;
        if reports.len() == max_events {
            return Err(BodyError::TooManyEvents(max_events));
        }
        match serde_json::from_value::<V3Record>(item)
            .map_err(|e| format!("not a v3 record: {e}"))
            .and_then(|r| v3_event(r, topic))
        {
            Ok((event, report)) => {
                events.push(event);
                reports.push(report);
            }
            Err(why) => reports.push(Report::Refused(why)),
        }
    }
    if reports.is_empty() {
        return Err(BodyError::Malformed("no record in the body".into()));
    }
    Ok((events, reports))
}

/// A v3 key or value as a field value, with its type and size for the report.
fn v3_data(d: &V3Data, what: &str) -> Result<(Value, String, usize), String> {
    if let Some(k) = d.other.keys().next() {
        return Err(format!(
            "{what}: `{k}` (schemas) is not supported; send BINARY, JSON or STRING"
        ));
    }
    let kind = d.kind.as_deref().unwrap_or("JSON").to_ascii_uppercase();
    match kind.as_str() {
        "JSON" => {
            let size = serde_json::to_string(&d.data).map(|s| s.len()).unwrap_or(0);
            Ok((json_to_value(d.data.clone()), kind, size))
        }
        "STRING" => match &d.data {
            Json::String(s) => Ok((Value::from(s.clone()), kind, s.len())),
            _ => Err(format!("{what}: a STRING needs a string `data`")),
        },
        "BINARY" => {
            let v = binary(&d.data, what)?;
            let size = match &v {
                Value::Bytes(b) => b.len(),
                _ => 0,
            };
            Ok((v, kind, size))
        }
        other => Err(format!(
            "{what}: type `{other}` is not supported; use BINARY, JSON or STRING"
        )),
    }
}

fn v3_event(r: V3Record, topic: &str) -> Result<(ObjectMap, Report), String> {
    let (mut m, value) = match &r.value {
        Some(v) => {
            let (value, kind, size) = v3_data(v, "value")?;
            let m = match value {
                Value::Object(m) => m,
                other => {
                    let mut m = ObjectMap::new();
                    m.insert(KeyString::from("message"), other);
                    m
                }
            };
            (m, Some((kind, size)))
        }
        None => (ObjectMap::new(), None),
    };
    let key = match &r.key {
        Some(k) => {
            let (v, t, n) = v3_data(k, "key")?;
            m.insert(KeyString::from("key"), v);
            Some((t, n))
        }
        None => None,
    };
    m.insert(KeyString::from("topic"), Value::from(topic.to_string()));
    if let Some(p) = r.partition_id {
        m.insert(KeyString::from("partition"), Value::Integer(p));
    }
    if !r.headers.is_empty() {
        let mut headers = ObjectMap::new();
        for h in &r.headers {
            let v = match &h.value {
                Some(v) => binary(&Json::String(v.clone()), &format!("header `{}`", h.name))?,
                None => Value::Null,
            };
            headers.insert(KeyString::from(h.name.as_str()), v);
        }
        m.insert(KeyString::from("headers"), Value::Object(headers));
    }
    if let Some(ts) = &r.timestamp {
        let t = chrono::DateTime::parse_from_rfc3339(ts)
            .map_err(|e| format!("`timestamp` is not RFC 3339: {e}"))?
            .with_timezone(&chrono::Utc);
        m.insert(KeyString::from("timestamp"), Value::Timestamp(t));
    }
    let report = Report::Accepted {
        partition: r.partition_id.unwrap_or(0),
        key,
        value,
        timestamp: r.timestamp.clone(),
    };
    Ok((m, report))
}

/// The delivery reports of a v3 request, in order, as concatenated JSON: each
/// accepted record gets `error_code` 200 and the next of `offsets`.
pub fn v3_reply(reports: &[Report], cluster: &str, topic: &str, mut next_offset: impl FnMut() -> u64) -> String {
    let mut out = String::new();
    for r in reports {
        let report = match r {
            Report::Accepted {
                partition,
                key,
                value,
                timestamp,
            } => {
                let mut j = json!({
                    "error_code": 200,
                    "cluster_id": cluster,
                    "topic_name": topic,
                    "partition_id": partition,
                    "offset": next_offset(),
                    "timestamp": timestamp.clone().unwrap_or_else(|| chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
                });
                if let Some((t, n)) = key {
                    j["key"] = json!({"type": t, "size": n});
                }
                if let Some((t, n)) = value {
                    j["value"] = json!({"type": t, "size": n});
                }
                j
            }
            Report::Refused(why) => json!({"error_code": 400, "message": why}),
        };
        out.push_str(&report.to_string());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The produce examples of Confluent's REST Proxy API reference (v2, JSON and
    /// binary embedded formats).
    #[test]
    fn confluent_v2_examples_decode() {
        let json = br#"{"records":[{"key":"somekey","value":{"foo":"bar"}},{"value":["foo","bar"],"partition":1},{"value":53.5}]}"#;
        let e = v2_records(json, "test", Embedded::Json, 10).unwrap();
        assert_eq!(e[0]["foo"], Value::from("bar"));
        assert_eq!(e[0]["key"], Value::from("somekey"));
        assert_eq!(e[1]["partition"], Value::Integer(1));
        assert_eq!(crate::event::value_to_string(&e[2]["message"]), "53.5");
        let binary = br#"{"records":[{"key":"a2V5","value":"Y29uZmx1ZW50"},{"value":"a2Fma2E=","partition":1},{"value":"bG9ncw=="}]}"#;
        let e = v2_records(binary, "test", Embedded::Binary, 10).unwrap();
        assert_eq!(e[0]["key"], Value::from("key"));
        assert_eq!(e[0]["message"], Value::from("confluent"));
        assert_eq!(e[1]["message"], Value::from("kafka"));
        assert_eq!(e[2]["message"], Value::from("logs"));
        let bad = br#"{"records":[{"value":"bG9ncw=="},{"value":"not base64!"}]}"#;
        let err = v2_records(bad, "test", Embedded::Binary, 10).unwrap_err();
        assert!(
            matches!(&err, BodyError::InvalidRecords(m) if m.contains("record 2")),
            "{err:?}"
        );
        assert!(
            v2_records(br#"{"records":[{"key":"k"}]}"#, "t", Embedded::Json, 10).is_err(),
            "value is required"
        );
        let e = v2_records(
            br#"{"key_schema":"x","records":[{"value":1}],"n":[1]}"#,
            "t",
            Embedded::Json,
            10,
        )
        .unwrap();
        assert_eq!(e.len(), 1, "other keys are ignored");
        assert_eq!(
            v2_records(br#"{"records":[{"value":1},{"value":2}]}"#, "t", Embedded::Json, 1),
            Err(BodyError::TooManyEvents(1))
        );
    }

    #[test]
    fn content_types_pick_the_embedded_format_or_are_refused() {
        assert_eq!(embedded(None).unwrap(), Embedded::Json);
        assert_eq!(
            embedded(Some("application/vnd.kafka.json.v2+json")).unwrap(),
            Embedded::Json
        );
        assert_eq!(
            embedded(Some("application/vnd.kafka.binary.v2+json; charset=utf-8")).unwrap(),
            Embedded::Binary
        );
        assert!(matches!(
            embedded(Some("application/vnd.kafka.avro.v2+json")),
            Err(BodyError::UnsupportedContentType(_))
        ));
        assert_eq!(v2_error_code(StatusCode::NOT_FOUND), 40401);
        assert_eq!(v2_error_code(StatusCode::UNPROCESSABLE_ENTITY), 42201);
        assert_eq!(v2_error_code(StatusCode::SERVICE_UNAVAILABLE), 50003);
    }

    /// The v3 example of Confluent's API reference (`POST
    /// /v3/clusters/{cluster_id}/topics/{topic_name}/records`), and a stream of
    /// records in the three types with one invalid among them.
    #[test]
    fn confluent_v3_examples_decode_and_are_reported_in_order() {
        let one = br#"{"partition_id": 1, "headers": [{"name": "Header-1", "value": "SGVhZGVyLTE="}, {"name": "Header-2", "value": "SGVhZGVyLTI="}], "key": {"type": "JSON", "data": "Hello"}, "value": {"type": "JSON", "data": "World"}, "timestamp": "2021-02-05T19:14:42Z"}"#;
        let (events, reports) = v3_records(one, "topic-1", 10).unwrap();
        assert_eq!(events[0]["message"], Value::from("World"));
        assert_eq!(events[0]["key"], Value::from("Hello"));
        assert_eq!(events[0]["partition"], Value::Integer(1));
        let Value::Object(h) = &events[0]["headers"] else {
            panic!("headers")
        };
        assert_eq!(h["Header-1"], Value::from("Header-1"));
        assert!(matches!(events[0]["timestamp"], Value::Timestamp(_)));
        let reply = v3_reply(&reports, "cluster-1", "topic-1", || 0);
        let r: Json = serde_json::from_str(reply.trim()).unwrap();
        assert_eq!(r["error_code"], 200);
        assert_eq!(r["partition_id"], 1);
        assert_eq!(r["key"], json!({"type": "JSON", "size": 7}));
        assert_eq!(r["value"], json!({"type": "JSON", "size": 7}));
        assert_eq!(r["timestamp"], "2021-02-05T19:14:42Z");

        let stream = br#"{"value": {"type": "BINARY", "data": "a2Fma2E="}}
{"value": {"type": "STRING", "data": "plain"}}
{"value": {"schema_id": 3, "data": {"a": 1}}}
{"value": {"data": {"a": 1}}, "key": {"type": "STRING", "data": "k"}}"#;
        let (events, reports) = v3_records(stream, "t", 10).unwrap();
        assert_eq!(events.len(), 3);
        assert_eq!(events[0]["message"], Value::from("kafka"));
        assert_eq!(events[1]["message"], Value::from("plain"));
        assert_eq!(events[2]["a"], Value::from(1));
        assert!(matches!(&reports[2], Report::Refused(m) if m.contains("schema")));
        let mut n = 0;
        let reply = v3_reply(&reports, "c", "t", || {
            n += 1;
            n
        });
        let codes: Vec<i64> = reply
            .lines()
            .map(|l| serde_json::from_str::<Json>(l).unwrap()["error_code"].as_i64().unwrap())
            .collect();
        assert_eq!(codes, vec![200, 200, 400, 200]);
        assert_eq!(
            v3_records(b"{} {} {}", "t", 2).unwrap_err(),
            BodyError::TooManyEvents(2)
        );
        assert!(matches!(
            v3_records(b"{\"value\":", "t", 2),
            Err(BodyError::Malformed(_))
        ));
    }
}
