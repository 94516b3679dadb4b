//! BigQuery's REST API, the parts the sink uses: `tables.get` and `tables.insert`,
//! `tabledata.insertAll`, and load jobs (`jobs.insert`, `jobs.get`). Every call
//! takes a fresh token from the shared Google credentials and says, through
//! [`ComponentError`], whose fault a failure is and whether to retry.

use super::schema::{JsonField, TableSchema};
use crate::components::object_store::google_auth::GoogleCredentials;
use crate::error::ComponentError;
use reqwest::StatusCode;
use serde_json::{Value as Json, json};
use std::sync::Arc;
use std::time::Duration;

/// A client of one project's REST API.
#[derive(Clone)]
pub struct Rest {
    client: reqwest::Client,
    /// `…/bigquery/v2/projects/P`.
    base: String,
    credentials: Arc<GoogleCredentials>,
}

/// One row `insertAll` refused: its index in the request and why. `retry` is true
/// for rows BigQuery stopped because another row was invalid (`stopped`), or
/// refused for now (`backendError`, `timeout`).
#[derive(Debug, Clone)]
pub struct InsertError {
    pub index: usize,
    pub reason: String,
    pub retry: bool,
}

/// Where a load job is.
#[derive(Debug, Clone, PartialEq)]
pub enum JobState {
    Running,
    Done,
    /// Done with an `errorResult`: its reason (`invalid`, `notFound`,
    /// `backendError`, …) and the messages.
    Failed {
        reason: String,
        message: String,
    },
}

impl JobState {
    /// True for a failure BigQuery may not repeat on another try (its side, not the
    /// data's or the configuration's).
    pub fn is_transient(&self) -> bool {
        matches!(self, JobState::Failed { reason, .. }
            if matches!(reason.as_str(), "backendError" | "internalError" | "rateLimitExceeded" | "timeout" | "jobInternalError"))
    }
}

impl Rest {
    pub fn new(base: String, credentials: Arc<GoogleCredentials>, timeout: Duration) -> Result<Rest, String> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Rest {
            client,
            base,
            credentials,
        })
    }

    async fn send(&self, request: reqwest::RequestBuilder, what: &str) -> Result<(StatusCode, Json), ComponentError> {
        let token = self.credentials.token().await.map_err(ComponentError::from)?;
        let request = match token {
            Some(t) => request.bearer_auth(t.bearer),
            None => request,
        };
        let response = request
            .send()
            .await
            .map_err(|e| ComponentError::external(format!("BigQuery {what}: {}", e.without_url())))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| ComponentError::external(format!("BigQuery {what}: reading the answer: {e}")))?;
        let json: Json = serde_json::from_slice(&body)
            .unwrap_or_else(|_| json!({"error": {"message": String::from_utf8_lossy(&body[..body.len().min(500)])}}));
        Ok((status, json))
    }

    /// POSTs `body` as JSON to `url`.
    async fn post_json(&self, url: &str, body: &Json, what: &str) -> Result<(StatusCode, Json), ComponentError> {
        let request = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        self.send(request, what).await
    }

    /// The error of a failed answer, classified by its status.
    fn failure(what: &str, status: StatusCode, json: &Json) -> ComponentError {
        let message = json["error"]["message"].as_str().unwrap_or("no message");
        let text = format!("BigQuery {what} answered {status}: {message}");
        match status.as_u16() {
            401 | 403 if json["error"]["errors"][0]["reason"] == "rateLimitExceeded" => ComponentError::external(text),
            400 | 401 | 403 | 404 => ComponentError::config(text),
            _ => ComponentError::external(text),
        }
    }

    /// True when `dataset` exists.
    pub async fn dataset_exists(&self, dataset: &str) -> Result<bool, ComponentError> {
        let url = format!("{}/datasets/{dataset}", self.base);
        let (status, json) = self.send(self.client.get(&url), "datasets.get").await?;
        match status {
            StatusCode::NOT_FOUND => Ok(false),
            s if s.is_success() => Ok(true),
            s => Err(Self::failure("datasets.get", s, &json)),
        }
    }

    /// The schema of `dataset.table`, or `None` when it does not exist.
    pub async fn get_table(&self, dataset: &str, table: &str) -> Result<Option<TableSchema>, ComponentError> {
        let url = format!("{}/datasets/{dataset}/tables/{}", self.base, encode(table));
        let (status, json) = self.send(self.client.get(&url), "tables.get").await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(Self::failure("tables.get", status, &json));
        }
        let fields: Vec<JsonField> = serde_json::from_value(json["schema"]["fields"].clone())
            .map_err(|e| ComponentError::external(format!("BigQuery tables.get: an unreadable schema: {e}")))?;
        TableSchema::from_json(&fields)
            .map(Some)
            .map_err(|e| ComponentError::config(format!("table {dataset}.{table}: {e}")))
    }

    /// Creates `dataset.table` with `schema`; an existing table is fine.
    pub async fn create_table(&self, dataset: &str, table: &str, schema: &TableSchema) -> Result<(), ComponentError> {
        let url = format!("{}/datasets/{dataset}/tables", self.base);
        let body = json!({
            "tableReference": {"datasetId": dataset, "tableId": table},
            "schema": {"fields": schema.to_json()},
        });
        let (status, json) = self.post_json(&url, &body, "tables.insert").await?;
        if status.is_success() || status == StatusCode::CONFLICT {
            return Ok(());
        }
        Err(Self::failure("tables.insert", status, &json))
    }

    /// `tabledata.insertAll`; returns the rows refused.
    pub async fn insert_all(
        &self,
        dataset: &str,
        table: &str,
        rows: Vec<Json>,
        skip_invalid_rows: bool,
        ignore_unknown_values: bool,
    ) -> Result<Vec<InsertError>, ComponentError> {
        let url = format!("{}/datasets/{dataset}/tables/{}/insertAll", self.base, encode(table));
        let body = json!({
            "kind": "bigquery#tableDataInsertAllRequest",
            "skipInvalidRows": skip_invalid_rows,
            "ignoreUnknownValues": ignore_unknown_values,
            "rows": rows,
        });
        let (status, json) = self.post_json(&url, &body, "insertAll").await?;
        if !status.is_success() {
            return Err(Self::failure("insertAll", status, &json));
        }
        let mut refused = Vec::new();
        for e in json["insertErrors"].as_array().into_iter().flatten() {
            let index = e["index"].as_u64().unwrap_or(0) as usize;
            let errors = e["errors"].as_array().cloned().unwrap_or_default();
            let retry = errors.iter().all(|x| {
                matches!(
                    x["reason"].as_str(),
                    Some("stopped" | "backendError" | "timeout" | "internalError")
                )
            });
            let reason = errors
                .iter()
                .filter(|x| x["reason"] != "stopped")
                .map(|x| {
                    format!(
                        "{}: {}",
                        x["reason"].as_str().unwrap_or("invalid"),
                        x["message"].as_str().unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            refused.push(InsertError { index, reason, retry });
        }
        Ok(refused)
    }

    /// Runs a standard-SQL query and returns its rows, each a list of cells (`None`
    /// for NULL). An answer carrying `errors` is an error, whatever its status.
    pub async fn query(&self, sql: &str) -> Result<Vec<Vec<Option<String>>>, ComponentError> {
        let url = format!("{}/queries", self.base);
        let body = json!({"query": sql, "useLegacySql": false, "timeoutMs": 60000, "maxResults": 100000});
        let (status, answer) = self.post_json(&url, &body, "jobs.query").await?;
        if !status.is_success() {
            return Err(Self::failure("jobs.query", status, &answer));
        }
        if let Some(e) = answer["errors"].as_array().and_then(|e| e.first()) {
            return Err(ComponentError::config(format!("BigQuery jobs.query: {}", e["message"])));
        }
        if answer["jobComplete"] == false {
            return Err(ComponentError::external(
                "BigQuery jobs.query did not complete within 60 s".to_string(),
            ));
        }
        let rows = answer["rows"].as_array().cloned().unwrap_or_default();
        Ok(rows
            .iter()
            .map(|r| {
                r["f"]
                    .as_array()
                    .map(|cells| {
                        cells
                            .iter()
                            .map(|c| match &c["v"] {
                                Json::Null => None,
                                Json::String(s) => Some(s.clone()),
                                other => Some(other.to_string()),
                            })
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .collect())
    }

    /// Inserts the load job `job_id`; an existing job of that id (409) is fine: the
    /// caller asks for its state.
    pub async fn insert_load_job(&self, job_id: &str, load: Json) -> Result<(), ComponentError> {
        let url = format!("{}/jobs", self.base);
        let project = self.base.rsplit('/').next().unwrap_or_default();
        let body = json!({
            "jobReference": {"projectId": project, "jobId": job_id},
            "configuration": {"load": load},
        });
        let (status, json) = self.post_json(&url, &body, "jobs.insert").await?;
        if status.is_success() || status == StatusCode::CONFLICT {
            return Ok(());
        }
        Err(Self::failure("jobs.insert", status, &json))
    }

    /// The state of job `job_id`, `None` when BigQuery does not know it.
    pub async fn job_state(&self, job_id: &str) -> Result<Option<JobState>, ComponentError> {
        let url = format!("{}/jobs/{job_id}", self.base);
        let (status, json) = self.send(self.client.get(&url), "jobs.get").await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(Self::failure("jobs.get", status, &json));
        }
        let s = &json["status"];
        if s["state"] != "DONE" {
            return Ok(Some(JobState::Running));
        }
        if s["errorResult"].is_null() {
            return Ok(Some(JobState::Done));
        }
        let reason = s["errorResult"]["reason"].as_str().unwrap_or("unknown").to_string();
        let mut message = s["errorResult"]["message"].as_str().unwrap_or("failed").to_string();
        for e in s["errors"].as_array().into_iter().flatten().take(5) {
            if let Some(m) = e["message"].as_str().filter(|m| !message.contains(m)) {
                message.push_str("; ");
                message.push_str(m);
            }
        }
        Ok(Some(JobState::Failed { reason, message }))
    }
}

/// A table name as one URL path segment (a templated name may hold anything).
fn encode(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, percent_encoding::NON_ALPHANUMERIC).to_string()
}
