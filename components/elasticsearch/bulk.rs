//! The `_bulk` API: encoding action/source pairs as NDJSON and reading the per-item
//! results, which decide for each document: done, retry it alone, or refuse it.

use serde::Deserialize;
use std::collections::BTreeMap;

/// The bulk action per document.
#[derive(Debug, Deserialize, serde::Serialize, schemars::JsonSchema, Clone, Copy, Default, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Create or replace.
    #[default]
    Index,
    /// Create only; with an id, a repeat gets 409 and counts as already delivered.
    Create,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Index => "index",
            Action::Create => "create",
        }
    }
}

/// One document to send.
#[derive(Debug, Clone)]
pub struct Doc {
    pub index: String,
    pub id: Option<String>,
    /// The JSON source.
    pub source: Vec<u8>,
}

/// What happened to one document.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// Stored (or already there: 409 on `create` with an id).
    Done,
    /// Temporarily refused (429, 5xx): send it again, alone.
    Retry(String),
    /// Refused for good (mapping or parse error, 4xx), with Elasticsearch's reason.
    Reject(String),
}

/// The NDJSON body for `docs`.
pub fn encode(docs: &[&Doc], action: Action) -> Vec<u8> {
    let mut out = Vec::with_capacity(docs.iter().map(|d| d.source.len() + 64).sum());
    for d in docs {
        let mut meta = serde_json::Map::new();
        meta.insert("_index".into(), d.index.clone().into());
        if let Some(id) = &d.id {
            meta.insert("_id".into(), id.clone().into());
        }
        let line = serde_json::json!({ action.name(): meta });
        let _ = serde_json::to_writer(&mut out, &line);
        out.push(b'\n');
        out.extend_from_slice(&d.source);
        out.push(b'\n');
    }
    out
}

#[derive(Deserialize)]
struct Response {
    #[serde(default)]
    items: Vec<BTreeMap<String, Item>>,
}

#[derive(Deserialize)]
struct Item {
    status: u16,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

/// Reads a `_bulk` response for `docs` (sent in that order).
pub fn outcomes(body: &[u8], docs: &[&Doc], action: Action) -> Result<Vec<Outcome>, String> {
    let response: Response = serde_json::from_slice(body).map_err(|e| format!("unreadable _bulk response: {e}"))?;
    if response.items.len() != docs.len() {
        return Err(format!(
            "_bulk response has {} items for {} documents",
            response.items.len(),
            docs.len()
        ));
    }
    Ok(response
        .items
        .into_iter()
        .zip(docs)
        .map(|(item, doc)| {
            let Some(item) = item.into_values().next() else {
                return Outcome::Retry("empty item in _bulk response".into());
            };
            let reason = || describe(item.error.as_ref(), item.status);
            match item.status {
                200..=299 => Outcome::Done,
                409 if action == Action::Create && doc.id.is_some() => Outcome::Done,
                429 | 500..=599 => Outcome::Retry(reason()),
                _ => Outcome::Reject(reason()),
            }
        })
        .collect())
}

fn describe(error: Option<&serde_json::Value>, status: u16) -> String {
    match error {
        Some(e) => {
            let kind = e["type"].as_str().unwrap_or("error");
            let reason = e["reason"].as_str().unwrap_or("");
            let cause = e["caused_by"]["reason"]
                .as_str()
                .map(|c| format!(" (caused by: {c})"))
                .unwrap_or_default();
            format!("{status} {kind}: {reason}{cause}")
        }
        None => format!("status {status}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(id: Option<&str>) -> Doc {
        Doc {
            index: "app-2026.11.27".into(),
            id: id.map(str::to_string),
            source: br#"{"a":1}"#.to_vec(),
        }
    }

    #[test]
    fn encodes_pairs() {
        let (a, b) = (doc(Some("x")), doc(None));
        let body = String::from_utf8(encode(&[&a, &b], Action::Create)).unwrap();
        let lines: Vec<&str> = body.lines().collect();
        assert_eq!(lines[0], r#"{"create":{"_id":"x","_index":"app-2026.11.27"}}"#);
        assert_eq!(lines[1], r#"{"a":1}"#);
        assert_eq!(lines[2], r#"{"create":{"_index":"app-2026.11.27"}}"#);
    }

    #[test]
    fn per_item_outcomes() {
        let docs = [doc(Some("a")), doc(Some("b")), doc(Some("c")), doc(None), doc(None)];
        let refs: Vec<&Doc> = docs.iter().collect();
        let body = br#"{"errors":true,"items":[
            {"create":{"status":201}},
            {"create":{"status":409,"error":{"type":"version_conflict_engine_exception","reason":"exists"}}},
            {"create":{"status":429,"error":{"type":"es_rejected_execution_exception","reason":"queue full"}}},
            {"create":{"status":400,"error":{"type":"mapper_parsing_exception","reason":"failed to parse field [n]","caused_by":{"reason":"not a number"}}}},
            {"create":{"status":503}}]}"#;
        let out = outcomes(body, &refs, Action::Create).unwrap();
        assert_eq!(out[0], Outcome::Done);
        assert_eq!(out[1], Outcome::Done, "409 on create with an id is already delivered");
        assert!(matches!(&out[2], Outcome::Retry(r) if r.contains("429")));
        assert!(
            matches!(&out[3], Outcome::Reject(r) if r.contains("mapper_parsing_exception") && r.contains("not a number"))
        );
        assert!(matches!(&out[4], Outcome::Retry(_)));
        let out = outcomes(br#"{"items":[{"index":{"status":409}}]}"#, &refs[..1], Action::Index).unwrap();
        assert!(matches!(out[0], Outcome::Reject(_)), "409 on index is a real conflict");
        assert!(outcomes(br#"{"items":[]}"#, &refs[..1], Action::Index).is_err());
    }
}
