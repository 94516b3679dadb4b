//! The `stdin` source: one event per line of standard input, with `message` (or,
//! with `decoding = "json"`, the line's JSON fields), `host` and `timestamp`. When standard input closes the source finishes; once every other
//! source has too, pipe drains, flushes and exits 0, so `cat x.log | pipe -t t.toml`
//! works as a batch job. Standard input cannot be re-read, so nothing is replayed
//! after a crash.

use super::events::{LineTruncated, UndecodableLine};
use crate::component::{BoxFuture, BuildContext, BuildError, Built, Source, SourceContext, parse_options};
use crate::decoding::{self, LineDecoding};
use crate::event::{Event, EventBatch};
use crate::metrics::Emitter;
use serde::Deserialize;
use std::io::Read;
use tokio::sync::mpsc;
use vrl::value::{KeyString, Value};

/// Options of the `stdin` source.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct StdinConfig {
    /// Longest line kept, in bytes; longer lines are truncated and counted, and never
    /// buffered whole.
    #[serde(default = "default_max_line_bytes")]
    max_line_bytes: usize,
    /// `text`: the line in `message`. `json`: the line's JSON object fields are the
    /// event's fields (`host` and `timestamp` added when absent); a line that is not
    /// JSON goes to `ID.dropped`.
    #[serde(default)]
    decoding: LineDecoding,
}

fn default_max_line_bytes() -> usize {
    100 * 1024
}

pub fn build(_cx: &BuildContext, options: toml::Value) -> Result<Built, BuildError> {
    let config: StdinConfig = parse_options(options)?;
    let built = Built::source(Stdin {
        max_line_bytes: config.max_line_bytes.max(1),
        decoding: config.decoding,
    })
    .claim(crate::component::Resource::File("<stdin>".into()));
    Ok(match config.decoding {
        LineDecoding::Text => built,
        LineDecoding::Json => built
            .with_outputs(vec!["dropped".into()])
            .with_decoder(std::sync::Arc::new(|line| decoding::json_fields(line).map(|f| vec![f]))),
    })
}

struct Stdin {
    max_line_bytes: usize,
    decoding: LineDecoding,
}

/// What the stdin source reports while it reads.
struct Reports {
    too_long: Emitter<LineTruncated>,
    undecodable: Emitter<UndecodableLine>,
    /// Lines read so far, to name a bad one.
    lines: u64,
}

impl Source for Stdin {
    fn run(self: Box<Self>, mut cx: SourceContext) -> BoxFuture {
        Box::pin(async move {
            let (tx, mut rx) = mpsc::channel::<Vec<u8>>(4);
            std::thread::spawn(move || {
                let mut stdin = std::io::stdin().lock();
                loop {
                    let mut buf = vec![0u8; 256 * 1024];
                    match stdin.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            buf.truncate(n);
                            if tx.blocking_send(buf).is_err() {
                                break;
                            }
                        }
                    }
                }
            });
            let host = crate::event::interned(&gethostname::gethostname().to_string_lossy());
            let mut reports = Reports {
                too_long: cx.metrics.emitter(),
                undecodable: cx.metrics.emitter(),
                lines: 0,
            };
            let dropped = cx.out.named("dropped").cloned().unwrap_or_default();
            // The unfinished last line, at most `max_line_bytes` + 1 bytes: a longer
            // one is sent truncated at once and the rest of it skipped, so a line
            // without end cannot grow memory.
            let mut partial: Vec<u8> = Vec::new();
            let mut skipping = false;
            loop {
                let chunk = tokio::select! {
                    c = rx.recv() => c,
                    _ = cx.shutdown.wait() => return Ok(()),
                };
                let Some(chunk) = chunk else { break };
                let mut data = &chunk[..];
                if skipping {
                    let Some(nl) = memchr::memchr(b'\n', data) else {
                        continue;
                    };
                    data = &data[nl + 1..];
                    skipping = false;
                }
                partial.extend_from_slice(data);
                let unfinished = memchr::memrchr(b'\n', &partial).map_or(0, |nl| nl + 1);
                if partial.len() - unfinished > self.max_line_bytes {
                    // Already too long: the line ends here, truncated, and the rest
                    // of it is skipped.
                    partial.truncate(unfinished + self.max_line_bytes + 1);
                    partial.push(b'\n');
                    skipping = true;
                }
                let Some(last_nl) = memchr::memrchr(b'\n', &partial) else {
                    continue;
                };
                let rest = partial.split_off(last_nl + 1);
                let (batch, bad) = self.lines(&partial, &host, &cx, &mut reports);
                partial = rest;
                dropped.send(bad).await;
                if !cx.out.default.send(batch).await {
                    return Ok(());
                }
            }
            if !partial.is_empty() {
                partial.push(b'\n');
                let (batch, bad) = self.lines(&partial, &host, &cx, &mut reports);
                dropped.send(bad).await;
                cx.out.default.send(batch).await;
            }
            Ok(())
        })
    }
}

impl Stdin {
    /// The events of the lines in `data`, and those of the lines that cannot be
    /// decoded.
    fn lines(&self, data: &[u8], host: &Value, cx: &SourceContext, reports: &mut Reports) -> (EventBatch, EventBatch) {
        let now = chrono::Utc::now();
        let mut batch = Vec::new();
        let mut bad = Vec::new();
        let mut truncated = 0;
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', data) {
            let mut line = &data[start..end];
            start = end + 1;
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            if line.len() > self.max_line_bytes {
                line = &line[..self.max_line_bytes];
                truncated += 1;
            }
            reports.lines += 1;
            let mut m = match decoding::line_fields(self.decoding, line, &mut 0) {
                Ok(fields) => fields,
                Err(reason) => {
                    reports.undecodable.emit(UndecodableLine {
                        line: reports.lines,
                        reason: reason.clone(),
                    });
                    bad.push(Event::from_map(decoding::undecodable(line, reason, &cx.id)));
                    continue;
                }
            };
            m.entry(KeyString::from("host")).or_insert_with(|| host.clone());
            m.entry(KeyString::from("timestamp")).or_insert(Value::Timestamp(now));
            batch.push(Event::from_map(m));
        }
        let too_long = &reports.too_long;
        too_long.emit_n(
            LineTruncated {
                lines: truncated,
                max_line_bytes: self.max_line_bytes,
            },
            truncated,
        );
        cx.metrics.received((batch.len() + bad.len()) as u64, data.len() as u64);
        (batch, bad)
    }
}
