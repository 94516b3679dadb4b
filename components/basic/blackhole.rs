//! The `blackhole` sink: acknowledges and discards every event, counting them.

use crate::ack::BatchStatus;
use crate::component::{BoxFuture, BuildContext, BuildError, Built, Sink, SinkContext, parse_options};
use serde::Deserialize;

/// Options of the `blackhole` sink (none).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BlackholeConfig {}

pub fn build(_cx: &BuildContext, options: toml::Value) -> Result<Built, BuildError> {
    let _: BlackholeConfig = parse_options(options)?;
    Ok(Built::sink(Blackhole))
}

struct Blackhole;

impl Sink for Blackhole {
    fn run(self: Box<Self>, mut cx: SinkContext) -> BoxFuture {
        Box::pin(async move {
            while let Some(batch) = cx.input.recv().await {
                cx.metrics.received(batch.len() as u64, 0);
                cx.metrics.sent(batch.len() as u64, 0);
                for e in batch {
                    e.finalize(BatchStatus::Delivered);
                }
            }
            Ok(())
        })
    }
}
