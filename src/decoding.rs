//! How a source turns one line or record into an event's fields: as text in
//! `message`, or parsed as JSON straight into the fields (no `message` string is built
//! and no `parse_json` is needed). Shared by the sources that take `decoding`.

use serde::Deserialize;
use vrl::value::{KeyString, ObjectMap, Value};

/// How a line becomes an event.
#[derive(Debug, Deserialize, serde::Serialize, schemars::JsonSchema, Clone, Copy, Default, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum LineDecoding {
    /// The line, as UTF-8 text (invalid bytes replaced), in `message`.
    #[default]
    Text,
    /// A JSON object's fields become the event's fields; other JSON values go to
    /// `message`; a line that is not JSON goes to the source's `dropped` output.
    Json,
}

/// The fields of one line as `decoding` says, or why it cannot be decoded. Text that
/// is not UTF-8 is kept with U+FFFD in place of the bad bytes, counted in
/// `invalid_utf8`.
pub fn line_fields(decoding: LineDecoding, line: &[u8], invalid_utf8: &mut u64) -> Result<ObjectMap, String> {
    match decoding {
        LineDecoding::Json => json_fields(line),
        LineDecoding::Text => {
            let text = match simdutf8::basic::from_utf8(line) {
                Ok(s) => bytes::Bytes::copy_from_slice(s.as_bytes()),
                Err(_) => {
                    *invalid_utf8 += 1;
                    bytes::Bytes::from(String::from_utf8_lossy(line).into_owned())
                }
            };
            Ok(ObjectMap::from([(KeyString::from("message"), Value::Bytes(text))]))
        }
    }
}

/// The fields of one JSON value: an object's fields, anything else in `message`; or
/// why it is not JSON.
pub fn json_fields(payload: &[u8]) -> Result<ObjectMap, String> {
    match serde_json::from_slice::<Value>(payload) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Ok(ObjectMap::from([(KeyString::from("message"), other)])),
        Err(e) => Err(format!("not JSON: {e}")),
    }
}

/// An event's fields for a line that could not be decoded, for a `dropped` output:
/// the line (lossily as text) in `message` and `dropped = {reason, component}`.
pub fn undecodable(line: &[u8], reason: String, component: &str) -> ObjectMap {
    let mut why = ObjectMap::new();
    why.insert("reason".into(), Value::from(reason));
    why.insert("component".into(), Value::from(component));
    ObjectMap::from([
        (
            KeyString::from("message"),
            Value::from(String::from_utf8_lossy(line).into_owned()),
        ),
        (KeyString::from("dropped"), Value::Object(why)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_become_fields_other_values_a_message_and_the_rest_an_error() {
        let f = json_fields(br#"{"a":1,"b":{"c":"x"}}"#).unwrap();
        assert_eq!(f.get("a"), Some(&Value::Integer(1)));
        assert_eq!(json_fields(b"42").unwrap().get("message"), Some(&Value::Integer(42)));
        let e = json_fields(b"{not json").unwrap_err();
        assert!(e.starts_with("not JSON: "), "{e}");
        let d = undecodable(b"{not json", e, "in");
        assert_eq!(d.get("message"), Some(&Value::from("{not json")));
    }
}
