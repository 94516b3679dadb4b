//! The `generator` source: synthetic events for demos, tests and benchmarks. Each
//! event's `message` is a JSON log line (`format = "json"`), a plain text line
//! (`"text"`), or the next of the configured `lines`; `seq` counts from 0.

use crate::component::{BoxFuture, BuildContext, BuildError, Built, Source, SourceContext, parse_options};
use crate::event::Event;
use serde::Deserialize;
use std::time::{Duration, Instant};
use vrl::value::{KeyString, ObjectMap, Value};

/// Options of the `generator` source.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct GeneratorConfig {
    /// What `message` holds; ignored when `lines` is set.
    #[serde(default)]
    format: Format,
    /// Emit these lines in turn instead.
    #[serde(default)]
    lines: Vec<String>,
    /// Stop after this many events; the source then finishes (default: forever).
    count: Option<u64>,
    /// Events per second (default: as fast as possible).
    rate: Option<f64>,
    /// Events per batch.
    #[serde(default = "default_batch")]
    batch_size: usize,
}

/// What a generated `message` holds.
#[derive(Debug, Deserialize, serde::Serialize, schemars::JsonSchema, Default, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum Format {
    /// A JSON log line with `ts`, `service`, `level`, `seq`, `msg`.
    #[default]
    Json,
    /// A plain text line.
    Text,
}

fn default_batch() -> usize {
    1000
}

pub fn build(_cx: &BuildContext, options: toml::Value) -> Result<Built, BuildError> {
    let config: GeneratorConfig = parse_options(options)?;
    if config.rate.is_some_and(|r| r <= 0.0 || !r.is_finite()) {
        return Err(BuildError::key(
            "rate",
            "must be a positive number of events per second",
        ));
    }
    if config.batch_size == 0 {
        return Err(BuildError::key("batch_size", "must be positive"));
    }
    Ok(Built::source(Generator(config)))
}

struct Generator(GeneratorConfig);

const SERVICES: [&str; 4] = ["api", "web", "auth", "billing"];
const LEVELS: [&str; 4] = ["info", "info", "warn", "error"];

impl Generator {
    fn message(&self, seq: u64) -> String {
        if !self.0.lines.is_empty() {
            return self.0.lines[(seq % self.0.lines.len() as u64) as usize].clone();
        }
        let service = SERVICES[(seq % 4) as usize];
        let level = LEVELS[((seq / 4) % 4) as usize];
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        match self.0.format {
            Format::Json => serde_json::json!({ "ts": now, "service": service, "level": level, "seq": seq, "msg": format!("request {seq} handled") }).to_string(),
            Format::Text => format!("{now} {level} {service} request {seq} handled"),
        }
    }
}

impl Source for Generator {
    fn run(self: Box<Self>, mut cx: SourceContext) -> BoxFuture {
        Box::pin(async move {
            let started = Instant::now();
            let mut seq = 0u64;
            let total = self.0.count.unwrap_or(u64::MAX);
            while seq < total && !cx.shutdown.is_triggered() {
                let mut n = (self.0.batch_size as u64).min(total - seq);
                if let Some(rate) = self.0.rate {
                    // Emit what is due by now, waiting for the next one when nothing is.
                    let due = (started.elapsed().as_secs_f64() * rate) as u64 + 1;
                    if due <= seq {
                        let wait = Duration::from_secs_f64((seq + 1) as f64 / rate).saturating_sub(started.elapsed());
                        tokio::select! { _ = tokio::time::sleep(wait) => {}, _ = cx.shutdown.wait() => break }
                        continue;
                    }
                    n = n.min(due - seq);
                }
                let now = chrono::Utc::now();
                let mut batch = Vec::with_capacity(n as usize);
                let mut bytes = 0;
                for i in seq..seq + n {
                    let message = self.message(i);
                    bytes += message.len() as u64;
                    let mut m = ObjectMap::new();
                    m.insert(KeyString::from("message"), Value::from(message));
                    m.insert(KeyString::from("seq"), Value::Integer(i as i64));
                    m.insert(KeyString::from("timestamp"), Value::Timestamp(now));
                    batch.push(Event::from_map(m));
                }
                seq += n;
                cx.metrics.received(n, bytes);
                if !cx.out.default.send(batch).await {
                    break;
                }
            }
            Ok(())
        })
    }
}
