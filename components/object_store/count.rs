//! `pipe reconcile` over the archive: the events per hour (and key) in its files,
//! counted by SQL over the archive as `pipe query` reads it.

use super::config::ArchiveConfig;
use super::query;
use crate::reconcile::{CountTarget, HourCounts, NO_KEY};
use arrow::array::{Array, AsArray};
use arrow::datatypes::Int64Type;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

/// Counts the archive of the `object_store` sink `t`. DataFusion's futures are not
/// `Send` in general, so the query runs on a runtime of its own thread.
pub fn count(t: CountTarget) -> BoxFuture<'static, Result<HourCounts, String>> {
    Box::pin(async move {
        tokio::task::spawn_blocking(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?
                .block_on(query_counts(t))
        })
        .await
        .map_err(|e| e.to_string())?
    })
}

async fn query_counts(t: CountTarget) -> Result<HourCounts, String> {
    let config: ArchiveConfig =
        crate::component::parse_options(toml::Value::Table(t.options.clone())).map_err(|e| e.to_string())?;
    let checked = config.check().map_err(|e| e.to_string())?;
    let (ctx, _) = query::session(&checked.config.url, &checked.store, query::TABLE, None)
        .await
        .map_err(|e| e.to_string())?;
    let time = format!(
        "CAST(\"{}\" AS TIMESTAMP)",
        checked.config.time_field.replace('"', "\"\"")
    );
    let key = match &t.by {
        Some(b) => format!("CAST(\"{}\" AS VARCHAR)", b.replace('"', "\"\"")),
        None => "''".to_string(),
    };
    let sql = format!(
        "SELECT CAST(to_unixtime(date_trunc('hour', {time})) AS BIGINT) AS h, {key} AS k, count(*) AS n \
             FROM logs WHERE {time} >= TIMESTAMP '{}' AND {time} < TIMESTAMP '{}' GROUP BY 1, 2",
        t.from.format("%Y-%m-%dT%H:%M:%S"),
        t.to.format("%Y-%m-%dT%H:%M:%S"),
    );
    let frame = ctx.sql(&sql).await.map_err(|e| e.to_string())?;
    let batches = frame.collect().await.map_err(|e| e.to_string())?;
    let mut counts = HourCounts::new();
    for b in batches {
        let cast = |i: usize, ty: &arrow::datatypes::DataType| {
            arrow::compute::cast(b.column(i), ty).map_err(|e| e.to_string())
        };
        let hours = cast(0, &arrow::datatypes::DataType::Int64)?;
        let keys = cast(1, &arrow::datatypes::DataType::Utf8)?;
        let ns = cast(2, &arrow::datatypes::DataType::Int64)?;
        let (hours, keys, ns) = (
            hours.as_primitive::<Int64Type>(),
            keys.as_string::<i32>(),
            ns.as_primitive::<Int64Type>(),
        );
        for row in 0..b.num_rows() {
            let Some(hour) = DateTime::<Utc>::from_timestamp(hours.value(row), 0) else {
                continue;
            };
            let key = if t.by.is_none() {
                String::new()
            } else if keys.is_null(row) {
                NO_KEY.to_string()
            } else {
                keys.value(row).to_string()
            };
            *counts.entry((hour, key)).or_default() += ns.value(row) as u64;
        }
    }
    Ok(counts)
}
