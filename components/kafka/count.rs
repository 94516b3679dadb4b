//! `pipe reconcile` over a Kafka topic: the records of the window, counted per hour
//! of their record timestamp (and per key, read from JSON values). Each partition is
//! read from the first offset stamped an hour before the window's start
//! (`offsets_for_times`; event times need not grow with the offsets, so the hour is
//! slack for late records) to its end at the time of counting.

use super::client::{Connection, LibrdkafkaOptions};
use super::sink::KafkaSinkConfig;
use crate::reconcile::{CountTarget, HourCounts};
use futures::future::BoxFuture;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How far before the window reading starts, for records stamped out of order.
const SLACK_MS: i64 = 3_600_000;
/// How long the whole count may take.
const DEADLINE: Duration = Duration::from_secs(300);

/// Counts what the `kafka` sink `t` produced.
pub fn count(t: CountTarget) -> BoxFuture<'static, Result<HourCounts, String>> {
    Box::pin(async move {
        let config: KafkaSinkConfig =
            crate::component::parse_options(toml::Value::Table(t.options.clone())).map_err(|e| e.to_string())?;
        if config.topic.contains("{{") || config.topic.contains('%') {
            return Err(format!(
                "the topic `{}` is a template; reconcile counts one topic",
                config.topic
            ));
        }
        tokio::task::spawn_blocking(move || consume(&t, &config))
            .await
            .map_err(|e| e.to_string())?
    })
}

fn consume(t: &CountTarget, config: &KafkaSinkConfig) -> Result<HourCounts, String> {
    let options = LibrdkafkaOptions::default();
    let consumer: BaseConsumer = Connection {
        id: &t.id,
        bootstrap_servers: &config.bootstrap_servers,
        sasl: config.sasl.as_ref(),
        tls: config.tls.as_ref(),
        librdkafka_options: &options,
    }
    .client_config(&[
        ("group.id", "pipe-reconcile"),
        ("enable.auto.commit", "false"),
        ("enable.partition.eof", "false"),
    ])
    .map_err(|e| e.to_string())?
    .create()
    .map_err(|e| format!("cannot create a Kafka consumer: {e}"))?;
    let timeout = Duration::from_secs(10);
    let topic = config.topic.as_str();
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| format!("topic `{topic}`: {e}"))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|tp| tp.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err(format!("topic `{topic}` has no partitions"));
    }
    let mut at_time = TopicPartitionList::new();
    for p in &partitions {
        at_time
            .add_partition_offset(topic, *p, Offset::Offset(t.from.timestamp_millis() - SLACK_MS))
            .map_err(|e| e.to_string())?;
    }
    // Without an answer (a broker that cannot look offsets up by time), read it all.
    let starts = consumer.offsets_for_times(at_time, timeout).ok();
    let mut ends: HashMap<i32, i64> = HashMap::new();
    let mut assign = TopicPartitionList::new();
    for p in &partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, *p, timeout)
            .map_err(|e| format!("partition {p}: {e}"))?;
        let start = match starts
            .as_ref()
            .and_then(|s| s.find_partition(topic, *p))
            .map(|e| e.offset())
        {
            Some(Offset::Offset(o)) => o.max(low),
            // No record stamped that late, or no answer (librdkafka's mock cluster
            // answers the end): read it all rather than trust it.
            _ => low,
        };
        if start < high {
            assign
                .add_partition_offset(topic, *p, Offset::Offset(start))
                .map_err(|e| e.to_string())?;
            ends.insert(*p, high);
        }
    }
    let mut counts = HourCounts::new();
    if ends.is_empty() {
        return Ok(counts);
    }
    consumer.assign(&assign).map_err(|e| e.to_string())?;
    let started = Instant::now();
    while !ends.is_empty() {
        if started.elapsed() > DEADLINE {
            return Err(format!(
                "topic `{topic}` was not read to the window's end within {} s",
                DEADLINE.as_secs()
            ));
        }
        let Some(message) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let m = message.map_err(|e| format!("topic `{topic}`: {e}"))?;
        let partition = m.partition();
        let ms = m.timestamp().to_millis().unwrap_or(0);
        if m.offset() + 1 >= ends.get(&partition).copied().unwrap_or(0) {
            ends.remove(&partition);
        }
        let Some(time) = chrono::DateTime::from_timestamp_millis(ms) else {
            continue;
        };
        if let Some(hour) = t.hour_of(time) {
            let key = match &t.by {
                None => String::new(),
                Some(_) => {
                    let fields = m
                        .payload()
                        .and_then(|p| serde_json::from_slice::<serde_json::Value>(p).ok())
                        .unwrap_or_default();
                    t.key_of(&fields)
                }
            };
            *counts.entry((hour, key)).or_default() += 1;
        }
    }
    Ok(counts)
}
