//! `pipe reconcile` over the `file` sink's files: every file its path template can
//! have written, read line by line (gzip members too), each JSON line counted in the
//! hour of its `time_field`.

use super::sink::FileSinkConfig;
use crate::compression::Compression;
use crate::encoding::Encoding;
use crate::reconcile::{CountTarget, HourCounts};
use futures::future::BoxFuture;
use std::io::{BufRead, BufReader, Read};

/// The glob of every path `template` renders.
fn glob_of(template: &str) -> Result<String, String> {
    let t = crate::template::Template::parse(template, "timestamp").map_err(|e| e.to_string())?;
    Ok(t.wildcard(|text| glob::Pattern::escape(text)))
}

/// Counts the files of the `file` sink `t`.
pub fn count(t: CountTarget) -> BoxFuture<'static, Result<HourCounts, String>> {
    Box::pin(async move {
        let config: FileSinkConfig =
            crate::component::parse_options(toml::Value::Table(t.options.clone())).map_err(|e| e.to_string())?;
        if config.encoding == Encoding::Text {
            return Err("its lines are text (encoding = \"text\"), which carry no event time; count a sink with encoding = \"json\"".into());
        }
        tokio::task::spawn_blocking(move || count_files(&t, &config))
            .await
            .map_err(|e| e.to_string())?
    })
}

fn count_files(t: &CountTarget, config: &FileSinkConfig) -> Result<HourCounts, String> {
    let pattern = glob_of(&config.path)?;
    let paths = glob::glob(&pattern).map_err(|e| format!("the path `{}` gives no glob: {e}", config.path))?;
    let mut counts = HourCounts::new();
    for path in paths.flatten() {
        let file = std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let reader: Box<dyn Read> = if config.compression == Compression::Gzip {
            Box::new(flate2::read::MultiGzDecoder::new(file))
        } else {
            Box::new(file)
        };
        for line in BufReader::new(reader).lines() {
            let line = line.map_err(|e| format!("{}: {e}", path.display()))?;
            let Ok(fields) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            let Some(time) = fields
                .get(&config.time_field)
                .and_then(|v| v.as_str())
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            else {
                continue;
            };
            if let Some(hour) = t.hour_of(time.with_timezone(&chrono::Utc)) {
                *counts.entry((hour, t.key_of(&fields))).or_default() += 1;
            }
        }
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::glob_of;

    #[test]
    fn templates_become_globs() {
        assert_eq!(
            glob_of("/logs/{{ service }}-%Y-%m-%d:%H.log").unwrap(),
            "/logs/*-*-*-*:*.log"
        );
        assert_eq!(glob_of("/out/out.log").unwrap(), "/out/out.log");
        assert_eq!(glob_of("/a/%-H[1].log").unwrap(), "/a/*[[]1[]].log");
    }
}
