//! `pipe kafka-mock`: librdkafka's mock cluster (an in-memory implementation of the
//! Kafka protocol meant for testing clients) in a process of its own, so an edge and
//! an aggregator can be tried, and tested, without a Kafka cluster.
//!
//! It prints the bootstrap address as the first line on standard output, then reads
//! commands on standard input, one per line, answering `ok` or `error: …`:
//! `down [BROKER]` and `up [BROKER]` (every broker when none is named),
//! `create TOPIC PARTITIONS`. It exits at end of input. Nothing is kept on disk.

use rdkafka::mocking::MockCluster;
use std::io::{BufRead, Write};

/// Runs a mock cluster of `brokers` brokers with `topics` (name, partitions) created.
pub fn run(brokers: i32, topics: &[(String, i32)]) -> Result<(), String> {
    let cluster = MockCluster::new(brokers).map_err(|e| format!("cannot start the mock cluster: {e}"))?;
    for (name, partitions) in topics {
        cluster
            .create_topic(name, *partitions, 1)
            .map_err(|e| format!("cannot create topic `{name}`: {e}"))?;
    }
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{}", cluster.bootstrap_servers()).map_err(|e| e.to_string())?;
    stdout.flush().map_err(|e| e.to_string())?;
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(|e| e.to_string())?;
        let answer = match command(&cluster, brokers, &line) {
            Ok(()) => "ok".to_string(),
            Err(e) => format!("error: {e}"),
        };
        writeln!(stdout, "{answer}").map_err(|e| e.to_string())?;
        stdout.flush().map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn command<C: rdkafka::client::ClientContext>(
    cluster: &MockCluster<'_, C>,
    brokers: i32,
    line: &str,
) -> Result<(), String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let targets = |arg: Option<&&str>| -> Result<Vec<i32>, String> {
        match arg {
            None => Ok((1..=brokers).collect()),
            Some(b) => b
                .parse()
                .map(|b| vec![b])
                .map_err(|_| format!("`{b}` is not a broker number")),
        }
    };
    match words.as_slice() {
        ["down", rest @ ..] => {
            for b in targets(rest.first())? {
                cluster.broker_down(b).map_err(|e| e.to_string())?;
            }
            Ok(())
        }
        ["up", rest @ ..] => {
            for b in targets(rest.first())? {
                cluster.broker_up(b).map_err(|e| e.to_string())?;
            }
            Ok(())
        }
        ["create", topic, partitions] => {
            let n: i32 = partitions
                .parse()
                .map_err(|_| format!("`{partitions}` is not a number"))?;
            cluster.create_topic(topic, n, 1).map_err(|e| e.to_string())
        }
        [] => Ok(()),
        _ => Err(format!(
            "unknown command `{line}` (down [N], up [N], create TOPIC PARTITIONS)"
        )),
    }
}
