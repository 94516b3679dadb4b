//! The `blackhole` sink: acknowledges and discards every event, counting them, and
//! optionally logs the running total (for benchmarks and smoke tests).
//!
//! Test hook, not for users (and not in the user docs): `test_only_fail_first_batches
//! = N` finalizes the first N batches it receives as errored (lost in flight), so
//! tests can check how sources recover. It is refused unless the environment has
//! `PIPE_TEST_HOOKS=1`, so no production topology can turn it on by mistake.

use crate::ack::BatchStatus;
use crate::component::{BoxFuture, BuildContext, BuildError, Built, Sink, SinkContext, parse_options};
use serde::Deserialize;
use std::time::Duration;

/// Options of the `blackhole` sink.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct BlackholeConfig {
    /// Log the running total of events (`Blackhole total. events=N`) at most this
    /// often, in ms; `0` never.
    #[serde(default)]
    print_interval_ms: u64,
    /// TEST HOOK (needs `PIPE_TEST_HOOKS=1`): the first N batches are finalized as
    /// errored instead of delivered. Left out of the docs.
    #[serde(default)]
    #[schemars(skip)]
    test_only_fail_first_batches: u64,
}

/// The environment variable that allows test hooks.
const TEST_HOOKS_ENV: &str = "PIPE_TEST_HOOKS";

pub fn build(_cx: &BuildContext, options: toml::Value) -> Result<Built, BuildError> {
    let config: BlackholeConfig = parse_options(options)?;
    if config.test_only_fail_first_batches > 0 && std::env::var(TEST_HOOKS_ENV).as_deref() != Ok("1") {
        return Err(BuildError::key(
            "test_only_fail_first_batches",
            format!("is a test hook, refused unless {TEST_HOOKS_ENV}=1"),
        ));
    }
    Ok(Built::sink(Blackhole {
        print_interval: (config.print_interval_ms > 0).then(|| Duration::from_millis(config.print_interval_ms)),
        fail_batches: config.test_only_fail_first_batches,
    }))
}

struct Blackhole {
    print_interval: Option<Duration>,
    /// Test hook: batches still to be finalized as errored.
    fail_batches: u64,
}

impl Sink for Blackhole {
    fn run(self: Box<Self>, mut cx: SinkContext) -> BoxFuture {
        Box::pin(async move {
            let mut total = 0u64;
            let mut printed = 0u64;
            let mut tick = tokio::time::interval(self.print_interval.unwrap_or(Duration::from_secs(3600)));
            let mut fail_batches = self.fail_batches;
            loop {
                tokio::select! {
                    batch = cx.input.recv() => {
                        let Some(batch) = batch else { break };
                        if fail_batches > 0 {
                            fail_batches -= 1;
                            tracing::info!(component = %cx.id, events = batch.len(), "Test hook: the batch is finalized as errored.");
                            for e in batch {
                                e.finalize(BatchStatus::Errored);
                            }
                            continue;
                        }
                        total += batch.len() as u64;
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
