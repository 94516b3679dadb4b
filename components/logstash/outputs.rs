//! Logstash outputs to pipe sinks: `elasticsearch`, `kafka`, `file`,
//! `google_bigquery` (`bigquery`), `google_cloud_storage` and `s3`
//! (`object_store` on `gs://` and `s3://`), `stdout` (`console`). Every sink reads
//! the event time from `@timestamp`, as Logstash's `%{+…}` does.

use super::ast::{Plugin, Value};
use super::inputs::kafka_security;
use super::opts::{Cx, Opts, file_opt, template_opt, text_opt};
use super::sprintf;
use super::topology::{Component, Opt};
use crate::component::Kind;

/// The pipe sink for one output plugin; `None` (with a TODO in `comments`) when
/// there is none.
pub fn map(p: &Plugin, cx: &mut Cx, comments: &mut Vec<String>) -> Option<Component> {
    let kind = match p.name.as_str() {
        "elasticsearch" => "elasticsearch",
        "kafka" => "kafka",
        "file" => "file",
        "google_bigquery" => "bigquery",
        "google_cloud_storage" | "s3" => "object_store",
        "stdout" => "console",
        other => {
            comments.push(cx.todo(&p.pos, format!("the `{other}` output has no pipe sink; it is left out")));
            return None;
        }
    };
    if crate::components::find(Kind::Sink, kind).is_none() {
        comments.push(cx.todo(
            &p.pos,
            format!(
                "the `{}` output needs pipe's `{kind}` sink, which this build lacks",
                p.name
            ),
        ));
        return None;
    }
    let o = Opts::new(p, "output");
    let id = cx.ids.take(&o.id().unwrap_or_else(|| p.name.clone()));
    let mut c = Component::new(Kind::Sink, id, kind);
    match p.name.as_str() {
        "elasticsearch" => elasticsearch(&o, &mut c, cx),
        "kafka" => kafka(&o, &mut c, cx),
        "file" => file(&o, &mut c, cx),
        "google_bigquery" => bigquery(&o, &mut c, cx),
        "google_cloud_storage" => gcs(&o, &mut c, cx),
        "s3" => s3(&o, &mut c, cx),
        _ => stdout(&o, &mut c, cx),
    }
    o.consume(&["workers"]);
    let left = o.leftovers(cx, &format!("the `{}` output", p.name));
    c.comments.extend(left);
    Some(c)
}

/// An output codec: `Some("json")` / `Some("text")` for pipe's encodings; a TODO
/// otherwise. `default` is the plugin's own default codec.
fn codec(o: &Opts, default: &str, cx: &mut Cx, comments: &mut Vec<String>) -> &'static str {
    let (name, plugin) = match o.get("codec") {
        None => (default.to_string(), None),
        Some(Value::Plugin(p)) => (p.name.clone(), Some(p)),
        Some(v) => (v.as_str().unwrap_or_default().to_string(), None),
    };
    let format = plugin
        .as_ref()
        .and_then(|p| p.get("format"))
        .and_then(|v| v.as_str())
        .map(str::to_string);
    match name.as_str() {
        "json" | "json_lines" => "json",
        "rubydebug" => {
            comments
                .push("Logstash's `rubydebug` codec prints a Ruby hash; the console writes the event as JSON.".into());
            "json"
        }
        "line" | "plain" if format.as_deref() == Some("%{message}") => "text",
        "line" | "plain" if format.is_none() => {
            comments.push(cx.todo(
                o.pos("codec"),
                format!(
                    "the `{name}` codec writes `@timestamp host message`; pipe's `text` encoding writes `message` only"
                ),
            ));
            "text"
        }
        other => {
            let f = format.map(|f| format!(" with `format => \"{f}\"`")).unwrap_or_default();
            comments.push(cx.todo(
                o.pos("codec"),
                format!("the `{other}` codec{f} has no pipe equivalent; events are written as JSON"),
            ));
            "json"
        }
    }
}

fn elasticsearch(o: &Opts, c: &mut Component, cx: &mut Cx) {
    let mut comments = Vec::new();
    let ssl = o.bool("ssl_enabled").or(o.bool("ssl")).unwrap_or(false);
    if o.get("cloud_id").is_some() {
        comments.push(cx.todo(
            o.pos("cloud_id"),
            "`cloud_id`: set `endpoints` to the deployment's Elasticsearch URL",
        ));
    }
    let hosts = o.list("hosts").unwrap_or_else(|| vec!["127.0.0.1".into()]);
    let mut endpoints: Vec<Opt> = Vec::new();
    for h in &hosts {
        let url = endpoint(h, ssl);
        if !url.contains("${") && url::Url::parse(&url).map_or(true, |u| u.host_str().is_none()) {
            comments.push(cx.todo(
                o.pos("hosts"),
                format!("`{h}` in `hosts` is no host name or URL; it is left out"),
            ));
            continue;
        }
        if let Some(v) = text_opt(&url, o.pos("hosts"), cx, &mut comments, "`hosts`") {
            endpoints.push(v);
        }
    }
    if endpoints.is_empty() {
        comments.push(cx.todo(
            o.pos("hosts"),
            "no Elasticsearch host is left: `http://127.0.0.1:9200` stands in; set `endpoints`",
        ));
        endpoints.push(Opt::Str("http://127.0.0.1:9200".into()));
    }
    c.set("endpoints", Opt::List(endpoints));
    let data_stream = o.str("data_stream").is_some_and(|d| d == "true");
    if data_stream {
        c.set("mode", Opt::Str("data_stream".into()));
        let t = o.str("data_stream_type").unwrap_or_else(|| "logs".into());
        let d = o.str("data_stream_dataset").unwrap_or_else(|| "generic".into());
        let n = o.str("data_stream_namespace").unwrap_or_else(|| "default".into());
        c.set("index", Opt::Str(sprintf::escape_dollars(&format!("{t}-{d}-{n}"))));
    } else {
        let index = o.str("index").unwrap_or_else(|| {
            comments.push("Logstash's default index (without data streams): `logstash-%{+yyyy.MM.dd}`.".into());
            "logstash-%{+yyyy.MM.dd}".into()
        });
        if let Some((t, _)) = template_opt(&index, o.pos("index"), cx, &mut comments, "`index`") {
            c.set("index", t);
        }
    }
    c.set("time_field", Opt::Str("@timestamp".into()));
    match o.str("action").as_deref() {
        None | Some("index") => {}
        Some("create") => c.set("action", Opt::Str("create".into())),
        Some(other) => comments.push(cx.todo(
            o.pos("action"),
            format!("`action => \"{other}\"`: pipe indexes (`index` or `create`) only"),
        )),
    }
    if let Some(id) = o.str("document_id") {
        match sprintf::only_field(&sprintf::parse(&id)) {
            Some(path) if path.iter().all(|s| !s.contains('.')) => c.set("id_field", Opt::Str(path.join("."))),
            _ => comments.push(cx.todo(o.pos("document_id"), format!("`document_id => \"{id}\"`: pipe takes the id from one field (`id_field`); compute it into a field in the filters"))),
        }
    }
    let mut auth = Vec::new();
    if let Some(u) = o.text("user", cx, &mut comments) {
        auth.push(("user".to_string(), u));
    }
    if let Some(p) = o.text("password", cx, &mut comments) {
        auth.push(("password".to_string(), p));
    }
    if let Some(key) = o.str("api_key") {
        if key.contains("${") {
            comments.push(cx.todo(
                o.pos("api_key"),
                "`api_key` from the environment: set `auth.api_key` to base64 of `id:key`",
            ));
        } else {
            use base64::Engine;
            let encoded = base64::engine::general_purpose::STANDARD.encode(key.as_bytes());
            auth.push(("api_key".to_string(), Opt::Str(encoded)));
        }
    }
    if !auth.is_empty() {
        c.set("auth", Opt::Table(auth));
    }
    let mut tls = Vec::new();
    for key in ["ssl_certificate_authorities", "cacert"] {
        if let Some(cas) = o.list(key) {
            if let Some(v) = cas
                .first()
                .and_then(|ca| file_opt(ca, o.pos(key), cx, &mut comments, "tls.ca_file"))
            {
                tls.push(("ca_file".to_string(), v));
            }
            if cas.len() > 1 {
                comments.push(cx.todo(
                    o.pos(key),
                    "pipe takes one CA file; put the certificates into one PEM file",
                ));
            }
        }
    }
    let no_verify = o.str("ssl_verification_mode").is_some_and(|m| m == "none")
        || o.bool("ssl_certificate_verification") == Some(false);
    if no_verify {
        tls.push(("verify_certificate".to_string(), Opt::Bool(false)));
    }
    if !tls.is_empty() {
        c.set("tls", Opt::Table(tls));
    }
    if let Some(true) = o.bool("http_compression") {
        c.set("compression", Opt::Str("gzip".into()));
    }
    if let Some(level) = o.int("compression_level") {
        c.set("compression", Opt::Str(if level > 0 { "gzip" } else { "none" }.into()));
    }
    if let Some(secs) = o.int("timeout") {
        c.set("request_timeout_secs", Opt::Int(secs));
    }
    for key in [
        "manage_template",
        "template",
        "template_name",
        "template_overwrite",
        "ilm_enabled",
        "ilm_rollover_alias",
        "ilm_pattern",
        "ilm_policy",
    ] {
        if let Some(v) = o.get(key) {
            if key == "manage_template" && v.as_bool() == Some(false) {
                continue;
            }
            comments.push(cx.todo(
                o.pos(key),
                format!("`{key}`: pipe manages no index templates or ILM; install them in Elasticsearch once"),
            ));
        }
    }
    if let Some(p) = o.str("pipeline") {
        comments.push(cx.todo(o.pos("pipeline"), format!("`pipeline => \"{p}\"`: pipe sends no ingest pipeline with its requests; set `index.default_pipeline` on the index, or do the work in the filters")));
    }
    o.consume(&[
        "ssl_enabled",
        "ssl",
        "protocol",
        "sniffing",
        "retry_initial_interval",
        "retry_max_interval",
        "validate_after_inactivity",
        "pool_max",
        "pool_max_per_route",
        "resurrect_delay",
        "ecs_compatibility",
        "data_stream_type",
        "data_stream_dataset",
        "data_stream_namespace",
        "data_stream_auto_routing",
        "data_stream_sync_fields",
        "document_type",
    ]);
    if let Some(v) = o.get("codec") {
        if v.as_str() != Some("plain") {
            comments.push(cx.todo(
                o.pos("codec"),
                "a codec on the `elasticsearch` output has no effect in pipe",
            ));
        }
    }
    if o.plugin.get("document_type").is_some() {
        comments.push("`document_type` is left out: Elasticsearch 7 and later have no mapping types.".into());
    }
    c.comments.extend(comments);
}

/// `host`, `host:port`, or a URL as an endpoint URL with scheme and port.
fn endpoint(h: &str, ssl: bool) -> String {
    let h = h.trim().trim_start_matches("//");
    if h.starts_with("http://") || h.starts_with("https://") {
        return h.to_string();
    }
    let scheme = if ssl { "https" } else { "http" };
    let (host, path) = match h.find('/') {
        Some(i) => (&h[..i], &h[i..]),
        None => (h, ""),
    };
    let has_port = host
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.chars().all(|c| c.is_ascii_digit()) && !p.is_empty())
        && !host.starts_with('[');
    let has_port = has_port || (host.starts_with('[') && host.contains("]:"));
    if has_port {
        format!("{scheme}://{host}{path}")
    } else {
        format!("{scheme}://{host}:9200{path}")
    }
}

fn kafka(o: &Opts, c: &mut Component, cx: &mut Cx) {
    let mut comments = Vec::new();
    let servers = o
        .text("bootstrap_servers", cx, &mut comments)
        .unwrap_or(Opt::Str("localhost:9092".into()));
    c.set("bootstrap_servers", servers);
    match o.str("topic_id") {
        Some(t) => {
            if let Some((t, _)) = template_opt(&t, o.pos("topic_id"), cx, &mut comments, "`topic_id`") {
                c.set("topic", t);
            }
        }
        None => {
            comments.push(cx.todo(&o.plugin.pos, "the `kafka` output has no `topic_id`; set `topic`"));
            c.set("topic", Opt::Str("CHANGE-ME".into()));
        }
    }
    if !c.has("topic") {
        c.set("topic", Opt::Str("CHANGE-ME".into()));
    }
    let compression = o.str("compression_type").unwrap_or_else(|| "none".into());
    match compression.as_str() {
        "none" | "gzip" | "snappy" | "lz4" | "zstd" => c.set("compression", Opt::Str(compression)),
        other => comments.push(cx.todo(
            o.pos("compression_type"),
            format!("compression `{other}` has no pipe equivalent"),
        )),
    }
    let enc = codec(o, "plain", cx, &mut comments);
    c.set("encoding", Opt::Str(enc.into()));
    match o.str("acks").as_deref() {
        None => comments.push("Logstash's default `acks => \"1\"` is not kept: pipe waits for every in-sync replica (`acks = \"all\"`, idempotent).".into()),
        Some("all" | "-1") => {}
        Some(a @ ("0" | "1")) => {
            c.set("acks", Opt::Str(a.into()));
            c.set("idempotent", Opt::Bool(false));
        }
        Some(other) => comments.push(cx.todo(o.pos("acks"), format!("`acks => {other}` has no pipe equivalent"))),
    }
    if let Some(k) = o.str("message_key") {
        match sprintf::only_field(&sprintf::parse(&k)) {
            Some(path) if path.iter().all(|s| !s.contains('.')) => c.set("key_field", Opt::Str(path.join("."))),
            _ => {
                if let Some((t, _)) = template_opt(&k, o.pos("message_key"), cx, &mut comments, "`message_key`") {
                    c.set("key", t);
                }
            }
        }
    }
    if let Some(ms) = o.int("linger_ms") {
        c.set("linger_ms", Opt::Int(ms));
    }
    if let Some(b) = o.int("batch_size") {
        c.set("batch_max_bytes", Opt::Int(b));
    }
    let mut props = Vec::new();
    if let Some(v) = o.text("client_id", cx, &mut comments) {
        props.push(("client.id".to_string(), v));
    }
    if let Some(n) = o.int("max_request_size") {
        props.push(("message.max.bytes".to_string(), Opt::Str(n.to_string())));
    }
    if let Some(n) = o.int("buffer_memory") {
        props.push((
            "queue.buffering.max.kbytes".to_string(),
            Opt::Str((n / 1024).max(1).to_string()),
        ));
    }
    if let Some(ms) = o.int("request_timeout_ms") {
        props.push(("request.timeout.ms".to_string(), Opt::Str(ms.to_string())));
    }
    if !props.is_empty() {
        c.set("librdkafka_options", Opt::Table(props));
    }
    o.consume(&["retries", "retry_backoff_ms", "key_serializer", "value_serializer"]);
    for key in ["key_serializer", "value_serializer"] {
        if let Some(s) = o.plugin.get(key).and_then(|v| v.as_str())
            && !s.ends_with("StringSerializer")
        {
            comments.push(cx.todo(o.pos(key), format!("`{key} => \"{s}\"`: pipe writes strings (UTF-8)")));
        }
    }
    kafka_security(o, c, cx, &mut comments);
    c.set("time_field", Opt::Str("@timestamp".into()));
    c.comments.extend(comments);
}

fn file(o: &Opts, c: &mut Component, cx: &mut Cx) {
    let mut comments = Vec::new();
    match o.str("path") {
        Some(p) => {
            if let Some((t, _)) = template_opt(&p, o.pos("path"), cx, &mut comments, "`path`") {
                c.set("path", t);
            }
        }
        None => comments.push(cx.todo(&o.plugin.pos, "the `file` output has no `path`")),
    }
    if !c.has("path") {
        c.set("path", Opt::Str("/var/log/pipe/CHANGE-ME.log".into()));
    }
    let enc = codec(o, "json_lines", cx, &mut comments);
    c.set("encoding", Opt::Str(enc.into()));
    if o.bool("gzip") == Some(true) {
        c.set("compression", Opt::Str("gzip".into()));
    }
    c.set("time_field", Opt::Str("@timestamp".into()));
    o.consume(&[
        "flush_interval",
        "create_if_deleted",
        "dir_mode",
        "file_mode",
        "filename_failure",
        "write_behavior",
        "stale_cleanup_interval",
    ]);
    if o.plugin.get("write_behavior").and_then(|v| v.as_str()) == Some("overwrite") {
        comments.push(cx.todo(o.pos("write_behavior"), "`write_behavior => overwrite`: pipe appends"));
    }
    c.comments.extend(comments);
}

fn stdout(o: &Opts, c: &mut Component, cx: &mut Cx) {
    let mut comments = Vec::new();
    let enc = codec(o, "rubydebug", cx, &mut comments);
    c.set("encoding", Opt::Str(enc.into()));
    c.comments.extend(comments);
}

fn bigquery(o: &Opts, c: &mut Component, cx: &mut Cx) {
    let mut comments = Vec::new();
    for (from, to) in [("project_id", "project"), ("dataset", "dataset")] {
        match o.text(from, cx, &mut comments) {
            Some(v) => c.set(to, v),
            None => {
                comments.push(cx.todo(&o.plugin.pos, format!("set `{to}` (Logstash's `{from}`)")));
                c.set(to, Opt::Str("CHANGE-ME".into()));
            }
        }
    }
    // Logstash names tables `<prefix><separator><Ruby strftime of date_pattern>`,
    // on the time of upload; pipe's template uses the event time.
    let prefix = o.str("table_prefix").unwrap_or_else(|| "logstash".into());
    let sep = o.str("table_separator").unwrap_or_else(|| "_".into());
    let pattern = o.str("date_pattern").unwrap_or_else(|| "%Y-%m-%dT%H:00".into());
    let table = bigquery_table(&format!("{prefix}{sep}{pattern}"));
    if table != format!("{prefix}{sep}{pattern}") {
        comments.push(format!(
            "Logstash names the table `{prefix}{sep}{pattern}`; BigQuery table names take letters, digits and `_` only, so pipe writes `{table}` (one time-partitioned table is BigQuery's advice)."
        ));
    }
    c.set("table", Opt::Str(sprintf::escape_dollars(&table)));
    if let Some(raw) = o.str("json_key_file")
        && let Some(v) = file_opt(&raw, o.pos("json_key_file"), cx, &mut comments, "credentials_path")
    {
        c.set("credentials_path", v);
    }
    if let Some(schema) = o.str("csv_schema") {
        let mut cols = Vec::new();
        for col in schema.split(',') {
            match col.split_once(':') {
                Some((n, t)) => cols.push((n.trim().to_string(), Opt::Str(t.trim().to_uppercase()))),
                None => comments.push(cx.todo(
                    o.pos("csv_schema"),
                    format!("`{col}` in `csv_schema` is not `name:TYPE`"),
                )),
            }
        }
        if !cols.is_empty() {
            c.set("schema", Opt::Table(cols));
        }
    }
    if o.get("json_schema").is_some() {
        comments.push(cx.todo(
            o.pos("json_schema"),
            "`json_schema`: write it as a BigQuery JSON schema file (`bq show --schema`) and set `schema_file`",
        ));
    }
    if let Some(b) = o.bool("ignore_unknown_values") {
        c.set("ignore_unknown_values", Opt::Bool(b));
    }
    if o.bool("skip_invalid_rows") == Some(true) {
        c.set("api", Opt::Str("insert_all".into()));
        c.set("skip_invalid_rows", Opt::Bool(true));
    }
    if let Some(n) = o.int("batch_size") {
        c.set("batch_max_events", Opt::Int(n));
    }
    if let Some(n) = o.int("batch_size_bytes") {
        c.set("batch_max_bytes", Opt::Int(n));
    }
    if let Some(s) = o.int("flush_interval_secs") {
        c.set("batch_timeout_ms", Opt::Int(s * 1000));
    }
    if let Some(dir) = o.str("error_directory") {
        comments.push(cx.todo(o.pos("error_directory"), format!("`error_directory => \"{dir}\"`: route `{}.dropped` into a `file` sink (each event carries `dropped.reason`)", c.id)));
    }
    o.consume(&[
        "deleter_interval_secs",
        "temp_directory",
        "temp_file_prefix",
        "uploader_interval_secs",
        "key_password",
        "service_account",
    ]);
    c.set("time_field", Opt::Str("@timestamp".into()));
    c.comments.extend(comments);
}

/// A Logstash table name with Ruby strftime as a pipe template whose renderings
/// are valid BigQuery table names (`-`, `:` and `T` separators become `_`).
fn bigquery_table(name: &str) -> String {
    let mut out = String::new();
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '%' {
            if let Some(spec) = chars.next() {
                out.push('%');
                out.push(spec);
            }
        } else if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c);
        } else {
            out.push('_');
        }
    }
    out
}

fn gcs(o: &Opts, c: &mut Component, cx: &mut Cx) {
    let mut comments = Vec::new();
    let bucket = o.str("bucket").unwrap_or_else(|| {
        comments.push(cx.todo(&o.plugin.pos, "the `google_cloud_storage` output has no `bucket`"));
        "CHANGE-ME".into()
    });
    if let Some(Opt::Str(url)) = text_opt(
        &format!("gs://{bucket}"),
        o.pos("bucket"),
        cx,
        &mut comments,
        "`bucket`",
    ) {
        c.set("url", Opt::Str(url));
    }
    let json = match (o.str("output_format").as_deref(), o.get("codec")) {
        (Some("json"), _) => true,
        (_, Some(_)) => codec(o, "line", cx, &mut comments) == "json",
        _ => false,
    };
    c.set("encoding", Opt::Str(if json { "ndjson" } else { "text" }.into()));
    let gzip = o.bool("gzip").unwrap_or(false) || o.bool("gzip_content_encoding").unwrap_or(false);
    c.set("compression", Opt::Str(if gzip { "gzip" } else { "none" }.into()));
    // Logstash writes `<prefix>_<host>_<date>.part<N>.log` at the bucket's root.
    let prefix = o.str("log_file_prefix").unwrap_or_else(|| "logstash_gcs".into());
    let pattern = o.str("date_pattern").unwrap_or_else(|| "%Y-%m-%dT%H:00".into());
    c.set(
        "filename",
        Opt::Str(sprintf::escape_dollars(&format!(
            "{prefix}_{pattern}.log{}",
            if gzip { ".gz" } else { "" }
        ))),
    );
    comments.push(format!(
        "Logstash wrote `{prefix}_<host>_{pattern}.part<N>.log` at the bucket's root; pipe writes into Hive partitions (`partition`, default `dt=%Y-%m-%d/hour=%-H`) and adds `-1`, `-2`, … before the extension instead of overwriting."
    ));
    if let Some(kb) = o.int("max_file_size_kbytes")
        && kb > 0
    {
        c.set("max_bytes", Opt::Int(kb * 1024));
    }
    if let Some(s) = o.int("uploader_interval_secs") {
        c.set("max_age_secs", Opt::Int(s.max(1)));
    }
    if let Some(v) = o.str("json_key_file") {
        comments.push(cx.todo(o.pos("json_key_file"), format!("`json_key_file => \"{v}\"`: set `GOOGLE_APPLICATION_CREDENTIALS={v}` for pipe (the `object_store` sink reads credentials from there)")));
    }
    o.consume(&[
        "temp_directory",
        "flush_interval_secs",
        "include_hostname",
        "include_uuid",
        "max_concurrent_uploads",
        "key_password",
        "service_account",
        "output_format",
        "gzip",
        "gzip_content_encoding",
    ]);
    c.set("time_field", Opt::Str("@timestamp".into()));
    c.comments.extend(comments);
}

fn s3(o: &Opts, c: &mut Component, cx: &mut Cx) {
    let mut comments = Vec::new();
    let bucket = o.str("bucket").unwrap_or_else(|| {
        comments.push(cx.todo(&o.plugin.pos, "the `s3` output has no `bucket`"));
        "CHANGE-ME".into()
    });
    if let Some(Opt::Str(url)) = text_opt(
        &format!("s3://{bucket}"),
        o.pos("bucket"),
        cx,
        &mut comments,
        "`bucket`",
    ) {
        c.set("url", Opt::Str(url));
    }
    if let Some(prefix) = o.str("prefix") {
        let prefix = prefix.trim_end_matches('/');
        if let Some((t, _)) = template_opt(prefix, o.pos("prefix"), cx, &mut comments, "`prefix`") {
            c.set("partition", t);
        }
    }
    if let Some(v) = o.text("region", cx, &mut comments) {
        c.set("region", v);
    }
    if let Some(v) = o.text("endpoint", cx, &mut comments) {
        c.set("endpoint", v);
    }
    let enc = codec(o, "line", cx, &mut comments);
    c.set(
        "encoding",
        Opt::Str(if enc == "json" { "ndjson" } else { "text" }.into()),
    );
    let gzip = o.str("encoding").as_deref() == Some("gzip");
    c.set("compression", Opt::Str(if gzip { "gzip" } else { "none" }.into()));
    if let Some(size) = o.int("size_file") {
        c.set("max_bytes", Opt::Int(size.max(1)));
    }
    let minutes = o.int("time_file").unwrap_or(15);
    c.set("max_age_secs", Opt::Int(minutes.max(1) * 60));
    if o.get("access_key_id").is_some() || o.get("secret_access_key").is_some() {
        comments.push(cx.todo(
            o.pos("access_key_id"),
            "S3 credentials: set `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` for pipe (not kept in the topology)",
        ));
        o.consume(&["secret_access_key", "session_token"]);
    }
    for key in [
        "canned_acl",
        "server_side_encryption",
        "server_side_encryption_algorithm",
        "ssekms_key_id",
        "storage_class",
        "role_arn",
    ] {
        if o.get(key).is_some() {
            comments.push(cx.todo(
                o.pos(key),
                format!("`{key}`: set it on the bucket (default encryption, lifecycle rules, policy); pipe sends none"),
            ));
        }
    }
    o.consume(&[
        "temporary_directory",
        "rotation_strategy",
        "upload_workers_count",
        "upload_queue_size",
        "restore",
        "validate_credentials_on_root_bucket",
        "additional_settings",
        "upload_multipart_threshold",
        "retry_count",
        "retry_delay",
        "tags",
    ]);
    c.set("time_field", Opt::Str("@timestamp".into()));
    c.comments.extend(comments);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_get_a_scheme_and_port() {
        assert_eq!(endpoint("localhost", false), "http://localhost:9200");
        assert_eq!(endpoint("localhost:9201", false), "http://localhost:9201");
        assert_eq!(endpoint("es.example.com:9200", true), "https://es.example.com:9200");
        assert_eq!(endpoint("https://es:9200/prefix", false), "https://es:9200/prefix");
        assert_eq!(endpoint("//127.0.0.1", false), "http://127.0.0.1:9200");
        assert_eq!(endpoint("IP Address 3", false), "http://IP Address 3:9200");
    }

    #[test]
    fn bigquery_table_names() {
        assert_eq!(bigquery_table("logstash_%Y-%m-%dT%H:00"), "logstash_%Y_%m_%dT%H_00");
    }
}
