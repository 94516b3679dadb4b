//! `pipe reconcile` over BigQuery: the rows per hour of the sink's table, counted by
//! a `COUNT(*) … GROUP BY` query on its `time_field`, with the sink's own endpoint
//! and credentials.

use super::config::BigQueryConfig;
use super::rest::Rest;
use crate::reconcile::{CountTarget, HourCounts, NO_KEY};
use futures::future::BoxFuture;
use std::time::Duration;

/// Counts the table of the `bigquery` sink `t`.
pub fn count(t: CountTarget) -> BoxFuture<'static, Result<HourCounts, String>> {
    Box::pin(async move {
        let config: BigQueryConfig =
            crate::component::parse_options(toml::Value::Table(t.options.clone())).map_err(|e| e.to_string())?;
        let cfg = config.check().map_err(|e| e.to_string())?;
        if !cfg.table.is_static() {
            return Err(format!(
                "the table `{}` is a template; reconcile counts one table",
                cfg.config.table
            ));
        }
        let credentials = cfg.credentials().map_err(|e| e.to_string())?;
        let rest = Rest::new(cfg.rest_base.clone(), credentials, Duration::from_secs(90))?;
        let c = &cfg.config;
        let time = format!("`{}`", c.time_field.replace('`', ""));
        let key = match &t.by {
            Some(b) => format!("CAST(`{}` AS STRING)", b.replace('`', "")),
            None => "''".to_string(),
        };
        let sql = format!(
            "SELECT UNIX_SECONDS(TIMESTAMP_TRUNC({time}, HOUR)) AS h, {key} AS k, COUNT(*) AS n \
             FROM `{}.{}.{}` WHERE {time} >= TIMESTAMP('{}') AND {time} < TIMESTAMP('{}') GROUP BY 1, 2",
            c.project,
            c.dataset,
            c.table,
            t.from.to_rfc3339(),
            t.to.to_rfc3339(),
        );
        let rows = rest.query(&sql).await.map_err(|e| e.to_string())?;
        let mut counts = HourCounts::new();
        for row in rows {
            let cell = |i: usize| row.get(i).cloned().flatten();
            let Some(hour) = cell(0)
                .and_then(|h| h.parse::<f64>().ok())
                .and_then(|h| chrono::DateTime::from_timestamp(h as i64, 0))
            else {
                continue;
            };
            let key = match (&t.by, cell(1)) {
                (None, _) => String::new(),
                (Some(_), Some(k)) => k,
                (Some(_), None) => NO_KEY.to_string(),
            };
            let n = cell(2).and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
            *counts.entry((hour, key)).or_default() += n;
        }
        Ok(counts)
    })
}
