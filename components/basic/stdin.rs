//! The `stdin` source: one event per line of standard input, with `message`, `host`
//! and `timestamp`. When standard input closes the source finishes; once every other
//! source has too, pipe drains, flushes and exits 0, so `cat x.log | pipe -t t.toml`
//! works as a batch job. Standard input cannot be re-read, so nothing is replayed
//! after a crash.

use super::events::LineTruncated;
use crate::component::{BoxFuture, BuildContext, BuildError, Built, Source, SourceContext, parse_options};
use crate::event::{Event, EventBatch};
use crate::metrics::Emitter;
use bytes::Bytes;
use serde::Deserialize;
use std::io::Read;
use tokio::sync::mpsc;
use vrl::value::{KeyString, ObjectMap, Value};

/// Options of the `stdin` source.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct StdinConfig {
    /// Longest line kept, in bytes; longer lines are truncated and counted.
    #[serde(default = "default_max_line_bytes")]
    max_line_bytes: usize,
}

fn default_max_line_bytes() -> usize {
    100 * 1024
}

pub fn build(_cx: &BuildContext, options: toml::Value) -> Result<Built, BuildError> {
    let config: StdinConfig = parse_options(options)?;
    Ok(Built::source(Stdin {
        max_line_bytes: config.max_line_bytes.max(1),
    })
    .claim(crate::component::Resource::File("<stdin>".into())))
}

struct Stdin {
    max_line_bytes: usize,
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
            let too_long = cx.metrics.emitter::<LineTruncated>();
            let mut partial: Vec<u8> = Vec::new();
            loop {
                let chunk = tokio::select! {
                    c = rx.recv() => c,
                    _ = cx.shutdown.wait() => return Ok(()),
                };
                let Some(chunk) = chunk else { break };
                partial.extend_from_slice(&chunk);
                let Some(last_nl) = memchr::memrchr(b'\n', &partial) else {
                    continue;
                };
                let rest = partial.split_off(last_nl + 1);
                let batch = self.lines(&partial, &host, &cx, &too_long);
                partial = rest;
                if !cx.out.default.send(batch).await {
                    return Ok(());
                }
            }
            if !partial.is_empty() {
                partial.push(b'\n');
                let batch = self.lines(&partial, &host, &cx, &too_long);
                cx.out.default.send(batch).await;
            }
            Ok(())
        })
    }
}

impl Stdin {
    fn lines(&self, data: &[u8], host: &Value, cx: &SourceContext, too_long: &Emitter<LineTruncated>) -> EventBatch {
        let now = chrono::Utc::now();
        let mut batch = Vec::new();
        let mut truncated = 0;
        for mut line in data
            .split(|b| *b == b'\n')
            .take(memchr::memchr_iter(b'\n', data).count())
        {
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            if line.len() > self.max_line_bytes {
                line = &line[..self.max_line_bytes];
                truncated += 1;
            }
            let mut m = ObjectMap::new();
            m.insert(
                KeyString::from("message"),
                Value::Bytes(Bytes::from(String::from_utf8_lossy(line).into_owned())),
            );
            m.insert(KeyString::from("host"), host.clone());
            m.insert(KeyString::from("timestamp"), Value::Timestamp(now));
            batch.push(Event::from_map(m));
        }
        too_long.emit_n(
            LineTruncated {
                lines: truncated,
                max_line_bytes: self.max_line_bytes,
            },
            truncated,
        );
        cx.metrics.received(batch.len() as u64, data.len() as u64);
        batch
    }
}
