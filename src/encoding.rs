//! How sinks turn an event into bytes: the whole event as JSON, or its `message` as
//! text. Shared by the file, console and kafka sinks.

use crate::event::{Event, value_to_string};
use serde::Deserialize;

/// How an event becomes bytes.
#[derive(Debug, Deserialize, serde::Serialize, schemars::JsonSchema, Clone, Copy, Default, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// The whole event as one JSON object.
    #[default]
    Json,
    /// The `message` field as text; the whole event as JSON when it has none.
    Text,
}

/// Appends `event` encoded as `encoding` to `out` (no trailing newline).
pub fn encode(event: &Event, encoding: Encoding, out: &mut Vec<u8>) {
    match encoding {
        Encoding::Json => {
            let _ = serde_json::to_writer(&mut *out, &event.value);
        }
        Encoding::Text => match event.get("message") {
            Some(v) => out.extend_from_slice(value_to_string(v).as_bytes()),
            None => {
                let _ = serde_json::to_writer(&mut *out, &event.value);
            }
        },
    }
}

/// Appends `event` as one line (with its newline) to `out`.
pub fn encode_line(event: &Event, encoding: Encoding, out: &mut Vec<u8>) {
    encode(event, encoding, out);
    out.push(b'\n');
}
