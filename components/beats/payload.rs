//! What one data frame becomes as an event: a JSON object's fields exactly as the
//! client sent them (`@timestamp`, `@metadata`, `host`, `agent`, `log`, … are not
//! renamed, parsed or added to), any other JSON value in `message`, and a v1 frame's
//! key/value pairs as string fields.

use super::frame::Body;
use vrl::value::{KeyString, ObjectMap, Value};

/// The event's fields. `Err` holds the event made of a payload that is not JSON: its
/// bytes (as UTF-8, invalid sequences replaced) in `message`, so that nothing a
/// client sent is lost; the caller counts it.
pub fn fields(body: &Body<'_>) -> Result<Value, Value> {
    match body {
        Body::Json(bytes) => match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => Ok(Value::Object(map)),
            Ok(other) => Ok(message(other)),
            Err(_) => Err(message(Value::from(String::from_utf8_lossy(bytes).into_owned()))),
        },
        Body::Pairs(pairs) => {
            let mut map = ObjectMap::new();
            for (k, v) in pairs.iter() {
                map.insert(
                    KeyString::from(String::from_utf8_lossy(k).into_owned()),
                    Value::from(String::from_utf8_lossy(v).into_owned()),
                );
            }
            Ok(Value::Object(map))
        }
    }
}

fn message(value: Value) -> Value {
    let mut map = ObjectMap::new();
    map.insert(KeyString::from("message"), value);
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::super::frame::{self, Frame, Version, encode};
    use super::*;

    #[test]
    fn beats_fields_are_kept_as_sent() {
        let json = br#"{"@timestamp":"2026-01-02T03:04:05.678Z","@metadata":{"beat":"filebeat","type":"_doc","version":"8.15.0"},"message":"hi","host":{"name":"web-1"},"log":{"offset":42}}"#;
        let value = fields(&Body::Json(json)).unwrap();
        let back: serde_json::Value = serde_json::to_value(&value).unwrap();
        let sent: serde_json::Value = serde_json::from_slice(json).unwrap();
        assert_eq!(back, sent);
        // What Logstash configs write as `%{[@metadata][beat]}-%{+YYYY.MM.dd}`.
        let index = crate::template::Template::parse("{{ @metadata.beat }}-%Y.%m.%d", "@timestamp").unwrap();
        assert_eq!(
            index.render(&crate::event::Event::new(value)).unwrap(),
            "filebeat-2026.01.02"
        );
    }

    #[test]
    fn other_values_go_to_message_and_bad_json_is_kept_as_text() {
        assert_eq!(
            fields(&Body::Json(b"\"plain\"")).unwrap(),
            message(Value::from("plain"))
        );
        assert_eq!(
            fields(&Body::Json(b"{\"a\":")).unwrap_err(),
            message(Value::from("{\"a\":"))
        );
        let mut buf = Vec::new();
        encode::data(&mut buf, Version::V1, 1, &[(b"line", b"hello"), (b"offset", b"7")]);
        let Some((Frame::Data { pairs, .. }, _)) = frame::parse(&buf, 100).unwrap() else {
            panic!("a data frame")
        };
        let v = fields(&Body::Pairs(pairs)).unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), r#"{"line":"hello","offset":"7"}"#);
    }
}
