//! The command-line clients of a running pipe's API: `pipe tap` prints the samples of
//! a tap as JSON lines, `pipe top` shows each component's rates and counters.

use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

/// Where the API is and how to authenticate.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `HOST:PORT` or a URL.
    pub address: String,
    /// The bearer token, if the API requires one.
    pub token: Option<String>,
}

/// A failure of `pipe tap` or `pipe top`.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The API could not be reached or answered badly (retrying may help).
    #[error("cannot talk to the API at {url}: {message} (is pipe running with its API on? see --api)")]
    Unreachable { url: String, message: String },
    /// The API refused the request (a wrong pattern, filter or token).
    #[error("the API refused the request ({status}): {body}")]
    Refused { status: u16, body: String },
    /// Writing the output failed (e.g. a closed pipe).
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
}

impl Endpoint {
    fn url(&self, path_and_query: &str) -> String {
        let base = if self.address.starts_with("http://") || self.address.starts_with("https://") {
            self.address.trim_end_matches('/').to_string()
        } else {
            format!("http://{}", self.address)
        };
        format!("{base}{path_and_query}")
    }

    async fn get(&self, client: &reqwest::Client, path: &str) -> Result<reqwest::Response, ClientError> {
        let url = self.url(path);
        let mut req = client.get(&url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(|e| ClientError::Unreachable {
            url: url.clone(),
            message: e.to_string(),
        })?;
        if !resp.status().is_success() {
            let status = resp.status().as_u16();
            let body = resp.text().await.unwrap_or_default();
            return Err(ClientError::Refused { status, body });
        }
        Ok(resp)
    }
}

/// What `pipe tap` asks for.
#[derive(Debug, Clone, Default)]
pub struct TapArgs {
    pub outputs_of: Option<String>,
    pub inputs_of: Option<String>,
    /// Stop after this many samples (0: until interrupted).
    pub limit: u64,
    pub interval_ms: u64,
    /// A VRL condition, applied by the server.
    pub filter: Option<String>,
}

/// Prints the tap's samples to `out` as JSON lines (`{"output", "event", "metadata"}`)
/// until `limit` samples or the end of the stream; lost-sample notices go to stderr.
pub async fn tap(endpoint: &Endpoint, args: &TapArgs, out: &mut dyn Write) -> Result<u64, ClientError> {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    if let Some(o) = &args.outputs_of {
        query.append_pair("outputs_of", o);
    }
    if let Some(i) = &args.inputs_of {
        query.append_pair("inputs_of", i);
    }
    if args.limit > 0 {
        query.append_pair("limit", &args.limit.min(10_000).to_string());
    }
    query.append_pair("interval_ms", &args.interval_ms.to_string());
    if let Some(f) = &args.filter {
        query.append_pair("filter", f);
    }
    let client = reqwest::Client::new();
    let mut resp = endpoint
        .get(&client, &format!("/api/v1/tap?{}", query.finish()))
        .await?;
    let mut buf: Vec<u8> = Vec::new();
    let mut printed = 0u64;
    let mut event_name = String::new();
    loop {
        let chunk = match resp.chunk().await {
            Ok(Some(c)) => c,
            Ok(None) => return Ok(printed),
            Err(e) => {
                return Err(ClientError::Unreachable {
                    url: endpoint.url("/api/v1/tap"),
                    message: e.to_string(),
                });
            }
        };
        buf.extend_from_slice(&chunk);
        while let Some(pos) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\r', '\n']);
            if let Some(name) = line.strip_prefix("event:") {
                event_name = name.trim().to_string();
            } else if let Some(data) = line.strip_prefix("data:") {
                let data = data.trim_start();
                match event_name.as_str() {
                    "sample" => {
                        writeln!(out, "{data}")?;
                        printed += 1;
                        if args.limit > 0 && printed >= args.limit {
                            out.flush()?;
                            return Ok(printed);
                        }
                    }
                    "lost" => eprintln!("pipe tap: samples lost (not read fast enough): {data}"),
                    "subscribed" => eprintln!("pipe tap: tapping {data}"),
                    _ => {}
                }
            } else if line.is_empty() {
                out.flush()?;
                event_name.clear();
            }
        }
    }
}

/// One row of `pipe top`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TopRow {
    pub id: String,
    pub kind: String,
    #[serde(rename = "type")]
    pub type_name: String,
    pub received_events_total: u64,
    pub sent_events_total: u64,
    pub received_events_per_sec: f64,
    pub sent_events_per_sec: f64,
    pub errors_total: u64,
    pub discarded_total: u64,
    pub input_queue_batches: u64,
    pub utilization: f64,
    /// Summed over partitions, for Kafka sources.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kafka_lag_messages: Option<u64>,
    pub health: String,
}

fn sum(v: &Json) -> u64 {
    v.as_object()
        .map(|m| m.values().filter_map(Json::as_u64).sum())
        .unwrap_or(0)
}

/// The rows of `pipe top`, from `GET /api/v1/components`.
pub async fn top_rows(endpoint: &Endpoint) -> Result<Vec<TopRow>, ClientError> {
    let client = reqwest::Client::new();
    let resp = endpoint.get(&client, "/api/v1/components").await?;
    let url = endpoint.url("/api/v1/components");
    let text = resp.text().await.map_err(|e| ClientError::Unreachable {
        url: url.clone(),
        message: e.to_string(),
    })?;
    let body: Json = serde_json::from_str(&text).map_err(|e| ClientError::Unreachable {
        url,
        message: format!("not the JSON expected: {e}"),
    })?;
    let mut rows = Vec::new();
    for c in body["components"].as_array().into_iter().flatten() {
        let counters = &c["counters"];
        let gauges: BTreeMap<String, u64> = serde_json::from_value(counters["gauges"].clone()).unwrap_or_default();
        let lag: Vec<u64> = gauges
            .iter()
            .filter(|(k, _)| k.starts_with("pipe_kafka_consumer_lag_messages"))
            .map(|(_, v)| *v)
            .collect();
        rows.push(TopRow {
            id: c["id"].as_str().unwrap_or_default().to_string(),
            kind: c["kind"].as_str().unwrap_or_default().to_string(),
            type_name: c["type"].as_str().unwrap_or_default().to_string(),
            received_events_total: counters["received_events"].as_u64().unwrap_or(0),
            sent_events_total: counters["sent_events"].as_u64().unwrap_or(0),
            received_events_per_sec: c["rates"]["received_events_per_sec"].as_f64().unwrap_or(0.0),
            sent_events_per_sec: c["rates"]["sent_events_per_sec"].as_f64().unwrap_or(0.0),
            errors_total: sum(&counters["errors"]),
            discarded_total: sum(&counters["discarded"]),
            input_queue_batches: counters["input_queue_batches"].as_u64().unwrap_or(0),
            utilization: c["rates"]["utilization"].as_f64().unwrap_or(0.0),
            kafka_lag_messages: (!lag.is_empty()).then(|| lag.iter().sum()),
            health: c["health"]["status"].as_str().unwrap_or("?").to_string(),
        });
    }
    Ok(rows)
}

/// The rows as a fixed-width table.
pub fn render_table(rows: &[TopRow]) -> String {
    let mut s = format!(
        "{:<20} {:<10} {:<14} {:>10} {:>10} {:>12} {:>12} {:>8} {:>9} {:>6} {:>6} {:>10} {}\n",
        "ID",
        "KIND",
        "TYPE",
        "IN/s",
        "OUT/s",
        "IN",
        "OUT",
        "ERRORS",
        "DISCARDS",
        "QUEUE",
        "UTIL",
        "KAFKA LAG",
        "HEALTH"
    );
    for r in rows {
        s.push_str(&format!(
            "{:<20} {:<10} {:<14} {:>10.1} {:>10.1} {:>12} {:>12} {:>8} {:>9} {:>6} {:>5.0}% {:>10} {}\n",
            r.id,
            r.kind,
            r.type_name,
            r.received_events_per_sec,
            r.sent_events_per_sec,
            r.received_events_total,
            r.sent_events_total,
            r.errors_total,
            r.discarded_total,
            r.input_queue_batches,
            r.utilization * 100.0,
            r.kafka_lag_messages
                .map(|l| l.to_string())
                .unwrap_or_else(|| "-".into()),
            r.health
        ));
    }
    s
}

/// `pipe top`: once (as a table or JSON), or redrawn every `every` until interrupted.
pub async fn top(endpoint: &Endpoint, once: bool, json: bool, every: Duration) -> Result<(), ClientError> {
    let mut stdout = std::io::stdout();
    loop {
        let rows = top_rows(endpoint).await?;
        if json {
            let text = serde_json::to_string_pretty(&serde_json::json!({"components": rows})).unwrap_or_default();
            writeln!(stdout, "{text}")?;
        } else {
            if !once {
                // Clear the screen and go home, then redraw.
                write!(stdout, "\x1b[2J\x1b[H")?;
                writeln!(
                    stdout,
                    "pipe top — {} (every {} s, Ctrl-C to quit)\n",
                    endpoint.address,
                    every.as_secs_f64()
                )?;
            }
            write!(stdout, "{}", render_table(&rows))?;
        }
        stdout.flush()?;
        if once {
            return Ok(());
        }
        tokio::time::sleep(every).await;
    }
}
