//! `pipe reconcile`: the side-by-side check of a migration as one command. For an
//! hour range it counts the events per hour (and per a key such as `service`) in
//! every place a topology's sinks deliver to, each counted by its own component
//! ([`ComponentDef::count`]: the archive through SQL, Elasticsearch with `_count`,
//! Kafka by consuming the hour's records, BigQuery with a query, files by reading
//! their lines), and prints the counts side by side with the difference. Exit code 1
//! when any hour differs by more than the tolerance.
//!
//! [`ComponentDef::count`]: crate::component::ComponentDef::count

use crate::component::Kind;
use crate::config::Topology;
use chrono::{DateTime, Duration, TimeZone, Timelike, Utc};
use futures::future::BoxFuture;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// Counts per (hour start, key value); the key is `""` without `--by`.
pub type HourCounts = BTreeMap<(DateTime<Utc>, String), u64>;

/// Counts what one sink delivered in a window: its options as written, where its
/// state lives, and what to count. `Err` says why the place cannot be counted.
pub type CountFn = fn(CountTarget) -> BoxFuture<'static, Result<HourCounts, String>>;

/// What a sink's count function gets.
#[derive(Debug, Clone)]
pub struct CountTarget {
    /// The sink's id.
    pub id: String,
    /// Its options as written in the topology.
    pub options: toml::Table,
    /// The topology's data directory.
    pub data_dir: PathBuf,
    /// The hours to count: from `from` (inclusive) to `to` (exclusive), whole hours.
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Count per this field's value too.
    pub by: Option<String>,
}

impl CountTarget {
    /// The start of the hour `t` falls in, when it falls inside the window.
    pub fn hour_of(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let hour = t.with_minute(0)?.with_second(0)?.with_nanosecond(0)?;
        (t >= self.from && t < self.to).then_some(hour)
    }

    /// The value of the `by` field in `fields` (a JSON object), `""` without `by`,
    /// `"(none)"` when the field is missing.
    pub fn key_of(&self, fields: &serde_json::Value) -> String {
        match &self.by {
            None => String::new(),
            Some(path) => {
                let mut v = fields;
                for part in path.split('.') {
                    v = &v[part];
                }
                match v {
                    serde_json::Value::Null => NO_KEY.to_string(),
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                }
            }
        }
    }
}

/// The key of an event without the `by` field.
pub const NO_KEY: &str = "(none)";

/// Parses an hour as `2026-12-02T13`, `2026-12-02T13:00` or RFC 3339.
pub fn parse_hour(text: &str) -> Result<DateTime<Utc>, String> {
    let t = text.trim();
    let parsed = DateTime::parse_from_rfc3339(t)
        .map(|d| d.with_timezone(&Utc))
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(&format!("{t}:00"), "%Y-%m-%dT%H:%M:%S")
                .or_else(|_| chrono::NaiveDateTime::parse_from_str(&format!("{t}:00:00"), "%Y-%m-%dT%H:%M:%S"))
                .map(|n| Utc.from_utc_datetime(&n))
        })
        .map_err(|_| format!("`{text}` is not an hour like 2026-12-02T13 (UTC)"))?;
    if parsed.minute() != 0 || parsed.second() != 0 || parsed.nanosecond() != 0 {
        return Err(format!("`{text}` is not the start of an hour"));
    }
    Ok(parsed)
}

/// One place's counts, or why they are missing.
pub struct Place {
    pub sink: String,
    pub type_name: String,
    pub counts: Result<HourCounts, String>,
}

/// Counts every selected sink of `topology` (all sinks that can be counted when
/// `sinks` is empty).
pub async fn count_all(
    topology: &Topology,
    sinks: &[String],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    by: Option<String>,
) -> Result<Vec<Place>, String> {
    let mut places = Vec::new();
    let mut tasks = Vec::new();
    for node in topology.nodes.iter().filter(|n| n.kind == Kind::Sink) {
        if !sinks.is_empty() && !sinks.contains(&node.id) {
            continue;
        }
        let def = crate::components::find(Kind::Sink, &node.type_name);
        let Some(count) = def.and_then(|d| d.count) else {
            if !sinks.is_empty() {
                return Err(format!(
                    "sink `{}` ({}) cannot be counted: reconcile counts archives, files, Elasticsearch, Kafka and BigQuery",
                    node.id, node.type_name
                ));
            }
            continue;
        };
        let target = CountTarget {
            id: node.id.clone(),
            options: node.options.clone(),
            data_dir: topology.data_dir.clone(),
            from,
            to,
            by: by.clone(),
        };
        tasks.push((node.id.clone(), node.type_name.clone(), tokio::spawn(count(target))));
    }
    for s in sinks {
        if !topology.nodes.iter().any(|n| n.kind == Kind::Sink && &n.id == s) {
            return Err(format!("the topology has no sink `{s}`"));
        }
    }
    for (sink, type_name, task) in tasks {
        let counts = task.await.unwrap_or_else(|e| Err(format!("the count failed: {e}")));
        places.push(Place {
            sink,
            type_name,
            counts,
        });
    }
    if places.len() < 2 {
        return Err(format!(
            "reconcile compares at least two places; the topology has {} sink(s) that can be counted",
            places.len()
        ));
    }
    Ok(places)
}

/// A row of the report: an hour, a key, each place's count, and whether they agree.
pub struct Row {
    pub hour: DateTime<Utc>,
    pub key: String,
    pub counts: Vec<u64>,
    pub difference: u64,
}

/// The rows for every hour of the window (and every key seen), in order.
pub fn compare(places: &[Place], from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Row> {
    let counted: Vec<&HourCounts> = places.iter().filter_map(|p| p.counts.as_ref().ok()).collect();
    let mut keys: BTreeSet<String> = counted.iter().flat_map(|c| c.keys().map(|(_, k)| k.clone())).collect();
    if keys.is_empty() {
        keys.insert(String::new());
    }
    let mut rows = Vec::new();
    let mut hour = from;
    while hour < to {
        for key in &keys {
            let counts: Vec<u64> = counted
                .iter()
                .map(|c| c.get(&(hour, key.clone())).copied().unwrap_or(0))
                .collect();
            let max = counts.iter().copied().max().unwrap_or(0);
            let min = counts.iter().copied().min().unwrap_or(0);
            rows.push(Row {
                hour,
                key: key.clone(),
                counts,
                difference: max - min,
            });
        }
        hour += Duration::hours(1);
    }
    rows
}

/// The report as text: a table, then one line per difference beyond `tolerance`
/// naming the hour and the place that has fewer; returns it and whether all agree.
pub fn report(places: &[Place], rows: &[Row], by: Option<&str>, tolerance: u64) -> (String, bool) {
    use std::fmt::Write;
    let counted: Vec<&Place> = places.iter().filter(|p| p.counts.is_ok()).collect();
    let mut out = String::new();
    let mut header = vec!["hour (UTC)".to_string()];
    if let Some(b) = by {
        header.push(b.to_string());
    }
    header.extend(counted.iter().map(|p| format!("{} ({})", p.sink, p.type_name)));
    header.push("difference".into());
    let mut table = vec![header];
    for r in rows {
        let mut line = vec![r.hour.format("%Y-%m-%dT%H:00").to_string()];
        if by.is_some() {
            line.push(r.key.clone());
        }
        line.extend(r.counts.iter().map(u64::to_string));
        line.push(if r.difference > tolerance {
            format!("{} ✗", r.difference)
        } else {
            r.difference.to_string()
        });
        table.push(line);
    }
    let widths: Vec<usize> = (0..table[0].len())
        .map(|i| table.iter().map(|l| l[i].chars().count()).max().unwrap_or(0))
        .collect();
    for line in &table {
        let cells: Vec<String> = line.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    let mut agree = true;
    for p in places {
        if let Err(e) = &p.counts {
            agree = false;
            let _ = writeln!(out, "cannot count {} ({}): {e}", p.sink, p.type_name);
        }
    }
    for r in rows.iter().filter(|r| r.difference > tolerance) {
        agree = false;
        let max = r.counts.iter().copied().max().unwrap_or(0);
        let short: Vec<String> = counted
            .iter()
            .zip(&r.counts)
            .filter(|(_, c)| **c < max)
            .map(|(p, c)| format!("{} has {c} ({} fewer)", p.sink, max - c))
            .collect();
        let key = if r.key.is_empty() {
            String::new()
        } else {
            format!(" {}={}", by.unwrap_or(""), r.key)
        };
        let _ = writeln!(
            out,
            "differs: {}{key}: {} of {max}",
            r.hour.format("%Y-%m-%dT%H:00"),
            short.join(", ")
        );
    }
    (out, agree)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(sink: &str, counts: &[(u32, &str, u64)]) -> Place {
        let counts = counts
            .iter()
            .map(|(h, k, n)| {
                (
                    (Utc.with_ymd_and_hms(2026, 12, 2, *h, 0, 0).unwrap(), k.to_string()),
                    *n,
                )
            })
            .collect();
        Place {
            sink: sink.into(),
            type_name: "t".into(),
            counts: Ok(counts),
        }
    }

    #[test]
    fn a_missing_hour_in_one_place_is_named() {
        let from = parse_hour("2026-12-02T10").unwrap();
        let to = parse_hour("2026-12-02T13").unwrap();
        let places = vec![
            place("archive", &[(10, "", 100), (11, "", 100), (12, "", 100)]),
            place("es", &[(10, "", 100), (11, "", 95), (12, "", 100)]),
        ];
        let rows = compare(&places, from, to);
        assert_eq!(rows.len(), 3);
        let (text, agree) = report(&places, &rows, None, 0);
        assert!(!agree);
        assert!(
            text.contains("differs: 2026-12-02T11:00: es has 95 (5 fewer) of 100"),
            "{text}"
        );
        let (_, agree) = report(&places, &rows, None, 5);
        assert!(agree, "within the tolerance");
    }

    #[test]
    fn hours_parse_in_three_spellings_and_must_be_whole() {
        let h = Utc.with_ymd_and_hms(2026, 12, 2, 13, 0, 0).unwrap();
        assert_eq!(parse_hour("2026-12-02T13").unwrap(), h);
        assert_eq!(parse_hour("2026-12-02T13:00").unwrap(), h);
        assert_eq!(parse_hour("2026-12-02T13:00:00Z").unwrap(), h);
        assert!(parse_hour("2026-12-02T13:30").is_err());
        assert!(parse_hour("yesterday").is_err());
    }
}
