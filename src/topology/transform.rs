//! The task that runs one transform: receives batches, runs the transform on as many
//! cores as it allows (in order), and sends each output to its consumers.

use crate::component::{Input, Outputs, Transform, TransformOutput};
use crate::metrics::ComponentMetrics;
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::task::JoinHandle;

type Done = (Box<dyn Transform>, TransformOutput);

/// Runs `transform` until its input closes and every result is sent.
pub async fn run(
    transform: Box<dyn Transform>,
    mut input: Input,
    out: Outputs,
    metrics: Arc<ComponentMetrics>,
) -> Result<(), String> {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let mut idle: Vec<Box<dyn Transform>> = (1..cores).map_while(|_| transform.clone_box()).collect();
    idle.push(transform);
    let parallelism = idle.len();
    let named = out.named.len();
    let mut inflight: VecDeque<JoinHandle<Done>> = VecDeque::new();
    let mut input_open = true;
    loop {
        if input_open && inflight.len() < parallelism {
            tokio::select! {
                biased;
                done = async { inflight.front_mut().expect("guarded").await }, if !inflight.is_empty() => {
                    inflight.pop_front();
                    let (t, result) = done.map_err(|e| format!("transform task failed: {e}"))?;
                    idle.push(t);
                    emit(&out, result).await;
                }
                batch = input.recv() => match batch {
                    Some(batch) => {
                        let mut t = idle.pop().expect("fewer tasks in flight than instances");
                        let metrics = metrics.clone();
                        inflight.push_back(tokio::spawn(async move {
                            let mut result = TransformOutput::new(named);
                            t.transform(batch, &mut result, &metrics);
                            (t, result)
                        }));
                    }
                    None => input_open = false,
                },
            }
        } else if let Some(h) = inflight.pop_front() {
            let (t, result) = h.await.map_err(|e| format!("transform task failed: {e}"))?;
            idle.push(t);
            emit(&out, result).await;
        } else if !input_open {
            for t in &mut idle {
                let mut result = TransformOutput::new(named);
                t.flush(&mut result, &metrics);
                emit(&out, result).await;
            }
            return Ok(());
        }
    }
}

async fn emit(out: &Outputs, result: TransformOutput) {
    let TransformOutput { default, named } = result;
    out.default.send(default).await;
    for ((_, fanout), batch) in out.named.iter().zip(named) {
        fanout.send(batch).await;
    }
}
