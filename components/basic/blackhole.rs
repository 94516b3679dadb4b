//! The `blackhole` sink: acknowledges and discards every event, counting them, and
//! optionally logs the running total (for benchmarks and smoke tests).

use crate::ack::BatchStatus;
use crate::component::{BoxFuture, BuildContext, BuildError, Built, Sink, SinkContext, parse_options};
use serde::Deserialize;
use std::time::Duration;

/// Options of the `blackhole` sink.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BlackholeConfig {
    /// Log the number of events received so far at most this often, in ms (default
    /// 0: never).
    #[serde(default)]
    print_interval_ms: u64,
}

pub fn build(_cx: &BuildContext, options: toml::Value) -> Result<Built, BuildError> {
    let config: BlackholeConfig = parse_options(options)?;
    Ok(Built::sink(Blackhole {
        print_interval: (config.print_interval_ms > 0).then(|| Duration::from_millis(config.print_interval_ms)),
    }))
}

struct Blackhole {
    print_interval: Option<Duration>,
}

impl Sink for Blackhole {
    fn run(self: Box<Self>, mut cx: SinkContext) -> BoxFuture {
        Box::pin(async move {
            let mut total = 0u64;
            let mut printed = 0u64;
            let mut tick = tokio::time::interval(self.print_interval.unwrap_or(Duration::from_secs(3600)));
            loop {
                tokio::select! {
                    batch = cx.input.recv() => {
                        let Some(batch) = batch else { break };
                        total += batch.len() as u64;
                        cx.metrics.received(batch.len() as u64, 0);
                        cx.metrics.sent(batch.len() as u64, 0);
                        for e in batch {
                            e.finalize(BatchStatus::Delivered);
                        }
                    }
                    _ = tick.tick(), if self.print_interval.is_some() => {
                        if total != printed {
                            printed = total;
                            tracing::info!(component = %cx.id, events = total, "Blackhole total.");
                        }
                    }
                }
            }
            Ok(())
        })
    }
}
