//! `pipe reconcile` over Elasticsearch: the documents per hour in the indices the
//! sink writes (its `index` template with `*` for every field and date part),
//! counted with `_count` and a range query on the event time; per key with a
//! `terms` aggregation.

use super::sink::{Auth, ElasticsearchConfig, Mode};
use crate::reconcile::{CountTarget, HourCounts, NO_KEY};
use crate::secret::{Secret, strip_userinfo};
use chrono::Duration;
use futures::future::BoxFuture;
use serde_json::{Value as Json, json};

/// Counts what the `elasticsearch` sink `t` indexed.
pub fn count(t: CountTarget) -> BoxFuture<'static, Result<HourCounts, String>> {
    Box::pin(async move {
        let config: ElasticsearchConfig =
            crate::component::parse_options(toml::Value::Table(t.options.clone())).map_err(|e| e.to_string())?;
        let endpoint = config.endpoints.first().ok_or("no endpoint")?;
        let (url, url_auth) = strip_userinfo(&endpoint.0).map_err(|e| e.to_string())?;
        let auth = config.auth.clone().or(url_auth.map(|(user, password)| Auth {
            user: Some(user),
            password: Some(password),
            api_key: None,
        }));
        let index = crate::template::Template::parse(&config.index, &config.time_field)
            .map_err(|e| e.to_string())?
            .wildcard(str::to_string);
        let field = if config.mode == Mode::DataStream {
            "@timestamp".to_string()
        } else {
            config.time_field.clone()
        };
        let client = reqwest::Client::new();
        let mut counts = HourCounts::new();
        let mut hour = t.from;
        while hour < t.to {
            let range =
                json!({"range": {&field: {"gte": hour.to_rfc3339(), "lt": (hour + Duration::hours(1)).to_rfc3339()}}});
            let (path, body) = match &t.by {
                None => ("_count", json!({"query": range})),
                Some(by) => (
                    "_search",
                    json!({"size": 0, "query": range, "aggs": {"k": {"terms": {"field": by, "size": 10000, "missing": NO_KEY}}}}),
                ),
            };
            let request = client
                .post(format!(
                    "{}/{index}/{path}?ignore_unavailable=true&allow_no_indices=true",
                    url.trim_end_matches('/')
                ))
                .header("Content-Type", "application/json")
                .body(body.to_string());
            let request = match &auth {
                Some(Auth { api_key: Some(k), .. }) => {
                    request.header("Authorization", format!("ApiKey {}", k.expose()))
                }
                Some(Auth {
                    user: Some(u),
                    password,
                    ..
                }) => request.basic_auth(u, password.as_ref().map(Secret::expose)),
                _ => request,
            };
            let response = request
                .send()
                .await
                .map_err(|e| format!("{url}: {}", e.without_url()))?;
            let status = response.status();
            let bytes = response.bytes().await.map_err(|e| format!("{url}: {e}"))?;
            let answer: Json = serde_json::from_slice(&bytes).map_err(|e| format!("{url}: not JSON: {e}"))?;
            if !status.is_success() {
                return Err(format!("{url}/{index}/{path} answered {status}: {answer}"));
            }
            match &t.by {
                None => {
                    let n = answer["count"]
                        .as_u64()
                        .ok_or_else(|| format!("no count in {answer}"))?;
                    if n > 0 {
                        counts.insert((hour, String::new()), n);
                    }
                }
                Some(_) => {
                    for b in answer["aggregations"]["k"]["buckets"].as_array().into_iter().flatten() {
                        let key = match &b["key"] {
                            Json::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        counts.insert((hour, key), b["doc_count"].as_u64().unwrap_or(0));
                    }
                }
            }
            hour += Duration::hours(1);
        }
        Ok(counts)
    })
}
