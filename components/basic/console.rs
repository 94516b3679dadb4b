//! The `console` sink: prints events to standard output, one per line, as JSON or as
//! their `message` (`encoding = "text"`). Acknowledges once the batch is flushed.

use super::events::StdoutFailed;
use crate::ack::BatchStatus;
use crate::component::{BoxFuture, BuildContext, BuildError, Built, Sink, SinkContext, parse_options};
use crate::encoding::{Encoding, encode_line};
use serde::Deserialize;
use std::io::Write;

/// Options of the `console` sink.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ConsoleConfig {
    /// How events are written.
    #[serde(default)]
    encoding: Encoding,
}

pub fn build(_cx: &BuildContext, options: toml::Value) -> Result<Built, BuildError> {
    let config: ConsoleConfig = parse_options(options)?;
    Ok(Built::sink(Console(config.encoding)))
}

struct Console(Encoding);

impl Sink for Console {
    fn run(self: Box<Self>, mut cx: SinkContext) -> BoxFuture {
        Box::pin(async move {
            let mut buf = Vec::new();
            let failed = cx.metrics.emitter::<StdoutFailed>();
            while let Some(batch) = cx.input.recv().await {
                buf.clear();
                for e in &batch {
                    encode_line(e, self.0, &mut buf);
                }
                let written = {
                    let mut out = std::io::stdout().lock();
                    out.write_all(&buf).and_then(|_| out.flush())
                };
                let status = match written {
                    Ok(()) => {
                        cx.metrics.sent(batch.len() as u64, buf.len() as u64);
                        BatchStatus::Delivered
                    }
                    Err(error) => {
                        failed.emit(StdoutFailed { error });
                        BatchStatus::Errored
                    }
                };
                for e in batch {
                    e.finalize(status);
                }
            }
            Ok(())
        })
    }
}
