//! Logstash inputs to pipe sources: `file`, `stdin`, `beats`, `kafka`, `http`.
//! Each source gets a small `remap` after it that gives its events the fields the
//! Logstash input gives them (`@timestamp`, `@version`, `path`, `type`, `tags`,
//! `add_field`, a `json` codec), so the filters see what they saw in Logstash.

use super::ast::{Plugin, Value};
use super::filters::{add_fields, add_tags};
use super::opts::{Cx, Opts, file_opt, text_opt};
use super::topology::{Component, Opt};
use super::vrl;
use crate::component::Kind;

/// A mapped input: its source and the VRL lines of its field adapter.
pub struct Input {
    pub source: Component,
    pub fields: Vec<String>,
}

/// The pipe source for one input plugin; `None` (with a TODO in `comments`) when
/// there is none.
pub fn map(p: &Plugin, cx: &mut Cx, comments: &mut Vec<String>) -> Option<Input> {
    let kind = match p.name.as_str() {
        "file" => "file",
        "stdin" => "stdin",
        "beats" => "beats",
        "kafka" => "kafka",
        "http" => "http",
        other => {
            comments.push(cx.todo(
                &p.pos,
                format!("the `{other}` input has no pipe source; it is left out"),
            ));
            return None;
        }
    };
    if kind == "beats" && crate::components::find(Kind::Source, "beats").is_none() {
        comments.push(cx.todo(
            &p.pos,
            "the `beats` input needs pipe's `beats` source, which this build lacks; it is left out",
        ));
        return None;
    }
    let o = Opts::new(p, "input");
    let id = cx.ids.take(&o.id().unwrap_or_else(|| p.name.clone()));
    let mut c = Component::new(Kind::Source, id, kind);
    let mut fields = Vec::new();
    let what = format!("the `{}` input", p.name);
    match kind {
        "file" => file(&o, &mut c, &mut fields, cx),
        "stdin" => stdin(&o, &mut c, &mut fields, cx),
        "beats" => beats(&o, &mut c, &mut fields, cx),
        "kafka" => kafka(&o, &mut c, &mut fields, cx),
        _ => http(&o, &mut c, &mut fields, cx),
    }
    decorate(&o, &mut fields, cx, &mut c.comments);
    let left = o.leftovers(cx, &what);
    c.comments.extend(left);
    Some(Input { source: c, fields })
}

/// `type`, `tags` and `add_field`, which every input has.
fn decorate(o: &Opts, fields: &mut Vec<String>, cx: &mut Cx, comments: &mut Vec<String>) {
    if let Some(t) = o.str("type") {
        fields.push(format!("if !exists(.type) {{ .type = {} }}", vrl::string(&t)));
    }
    if let Some(v) = o.get("add_field") {
        let mut lines = Vec::new();
        add_fields(&v, o.pos("add_field"), cx, &mut lines, comments);
        fields.extend(lines);
    }
    if let Some(v) = o.get("tags") {
        let mut lines = Vec::new();
        add_tags(&v, o.pos("tags"), cx, &mut lines, comments);
        fields.extend(lines);
    }
}

/// Logstash events have `@timestamp` (a timestamp) and `@version`.
fn timestamp_from_pipe(fields: &mut Vec<String>) {
    fields.push("if is_timestamp(.timestamp) && !exists(.\"@timestamp\") { .\"@timestamp\" = del(.timestamp) }".into());
    fields.push(
        "if is_string(.\"@timestamp\") { .\"@timestamp\" = parse_timestamp(.\"@timestamp\", \"%+\") ?? now() }".into(),
    );
    fields.push("if !exists(.\"@timestamp\") { .\"@timestamp\" = now() }".into());
    fields.push("if !exists(.\"@version\") { .\"@version\" = \"1\" }".into());
}

/// The codec of a line-based input (`file`, `stdin`): `plain`/`line` need nothing,
/// `json` parses each line, `multiline` (file only) becomes the source's option.
fn line_codec(o: &Opts, c: &mut Component, fields: &mut Vec<String>, cx: &mut Cx, multiline_ok: bool) {
    let Some(codec) = o.get("codec") else { return };
    let pos = o.pos("codec").clone();
    let (name, plugin) = match &codec {
        Value::Plugin(p) => (p.name.clone(), Some(p)),
        v => (v.as_str().unwrap_or_default().to_string(), None),
    };
    match name.as_str() {
        "plain" | "line" if plugin.is_none_or(|p| p.options.is_empty()) => {}
        "json" | "json_lines" if plugin.is_none_or(|p| p.options.is_empty()) => json_codec(fields),
        "multiline" if multiline_ok => {
            let Some(p) = plugin else { return };
            let mo = Opts::new(p, "codec");
            let pattern = mo.str("pattern").unwrap_or_default();
            let negate = mo.bool("negate").unwrap_or(false);
            let what = mo.str("what").unwrap_or_else(|| "previous".into());
            let mut table = Vec::new();
            if pattern.contains("%{") {
                c.comments.push(cx.todo(
                    mo.pos("pattern"),
                    format!("the multiline pattern `{pattern}` uses grok patterns; write it as a regular expression in `multiline`"),
                ));
            } else if let Err(e) = vrl::regex(&pattern) {
                c.comments.push(cx.todo(mo.pos("pattern"), e));
            } else if what == "previous" {
                let key = if negate {
                    "start_pattern"
                } else {
                    "continuation_pattern"
                };
                table.push((key.to_string(), Opt::Str(super::sprintf::escape_dollars(&pattern))));
            } else {
                c.comments.push(cx.todo(
                    mo.pos("what"),
                    "multiline `what => next` (a line joins the next one) has no pipe equivalent",
                ));
            }
            if let Some(ms) = mo.int("auto_flush_interval") {
                table.push(("timeout_ms".to_string(), Opt::Int(ms * 1000)));
            }
            let left = mo.leftovers(cx, "the `multiline` codec");
            c.comments.extend(left);
            if table.iter().any(|(k, _)| k.ends_with("_pattern")) {
                c.set("multiline", Opt::Table(table));
            }
        }
        other => {
            c.comments.push(cx.todo(
                &pos,
                format!("the `{other}` codec (as written here) has no pipe equivalent; lines are read as text"),
            ));
        }
    }
}

/// The `json` codec: the line's object becomes the event.
fn json_codec(fields: &mut Vec<String>) {
    fields.push("parsed, err = parse_json(.message)".into());
    fields.push("if err == null && is_object(parsed) {".into());
    fields.push("  del(.message)".into());
    fields.push("  . = merge(., object!(parsed))".into());
    fields.push("} else {".into());
    fields.push(format!(
        "  {}",
        super::filters::tags_line(&[vrl::string("_jsonparsefailure")])
    ));
    fields.push("}".into());
}

fn file(o: &Opts, c: &mut Component, fields: &mut Vec<String>, cx: &mut Cx) {
    let mut comments = Vec::new();
    let include: Vec<Opt> = o
        .list("path")
        .unwrap_or_default()
        .iter()
        .filter_map(|p| text_opt(p, o.pos("path"), cx, &mut comments, "`path`"))
        .collect();
    if include.is_empty() {
        comments.push(cx.todo(&o.plugin.pos, "the `file` input has no `path`; set `include`"));
        c.set("include", Opt::List(vec![Opt::Str("/var/log/CHANGE-ME.log".into())]));
    } else {
        c.set("include", Opt::List(include));
    }
    if let Some(ex) = o.list("exclude") {
        // Logstash matches `exclude` against the file name, pipe against the path.
        let ex: Vec<Opt> = ex
            .iter()
            .map(|e| {
                let e = if e.contains('/') || e.starts_with('*') {
                    e.clone()
                } else {
                    format!("*/{e}")
                };
                Opt::Str(super::sprintf::escape_dollars(&e))
            })
            .collect();
        c.set("exclude", Opt::List(ex));
    }
    // Logstash starts new files at their end unless told otherwise.
    let from = o.str("start_position").unwrap_or_else(|| "end".into());
    c.set(
        "read_from",
        Opt::Str(if from == "beginning" {
            "beginning".into()
        } else {
            "end".into()
        }),
    );
    if let Some(s) = o.str("sincedb_path") {
        let note = if s == "/dev/null" {
            "`sincedb_path => \"/dev/null\"` (read every file again at each start): pipe always keeps checkpoints in `data_dir/<id>/`; delete that directory to read again".to_string()
        } else {
            format!("`sincedb_path => \"{s}\"`: pipe keeps its checkpoints in `data_dir/<id>/checkpoints.json` instead")
        };
        comments.push(cx.todo(o.pos("sincedb_path"), note));
    }
    if let Some(secs) = o.int("sincedb_write_interval") {
        c.set("checkpoint_interval_ms", Opt::Int(secs * 1000));
    }
    if let Some(secs) = o.int("stat_interval") {
        c.set("poll_interval_ms", Opt::Int(secs * 1000));
    }
    if let Some(n) = o.int("discover_interval") {
        let stat = o.int("stat_interval").unwrap_or(1);
        c.set("glob_interval_ms", Opt::Int(n * stat * 1000));
    }
    if let Some(n) = o.int("max_open_files") {
        comments.push(cx.todo(
            o.pos("max_open_files"),
            format!("`max_open_files => {n}`: pipe follows every matching file"),
        ));
    }
    if o.int("ignore_older") == Some(0) {
        // 0 turned the option off in old Logstash versions.
        o.consume(&["ignore_older"]);
    }
    if let Some(d) = o.str("delimiter")
        && d == "\\n"
    {
        o.consume(&["delimiter"]);
    }
    line_codec(o, c, fields, cx, true);
    c.comments.extend(comments);
    fields.push(".path = del(.file)".into());
    fields.push("del(.offset)".into());
    timestamp_from_pipe(fields);
}

fn stdin(o: &Opts, c: &mut Component, fields: &mut Vec<String>, cx: &mut Cx) {
    line_codec(o, c, fields, cx, false);
    timestamp_from_pipe(fields);
}

fn beats(o: &Opts, c: &mut Component, fields: &mut Vec<String>, cx: &mut Cx) {
    let host = o.str("host").unwrap_or_else(|| "0.0.0.0".into());
    let port = o.str("port").unwrap_or_else(|| "5044".into());
    let mut comments = Vec::new();
    if let Some(Opt::Str(a)) = text_opt(
        &format!("{host}:{port}"),
        o.pos("port"),
        cx,
        &mut comments,
        "`host`/`port`",
    ) {
        c.set("address", Opt::Str(a));
    }
    let ssl = o.bool("ssl_enabled").or(o.bool("ssl")).unwrap_or(false);
    if ssl {
        let mut tls = Vec::new();
        for (from, to) in [("ssl_certificate", "crt_file"), ("ssl_key", "key_file")] {
            if let Some(raw) = o.str(from)
                && let Some(v) = file_opt(&raw, o.pos(from), cx, &mut comments, &format!("tls.{to}"))
            {
                tls.push((to.to_string(), v));
            }
        }
        if let Some(cas) = o.list("ssl_certificate_authorities") {
            let verify = o
                .str("ssl_client_authentication")
                .or(o.str("ssl_verify_mode"))
                .unwrap_or_default();
            if ["required", "force_peer", "peer", "optional"].contains(&verify.as_str()) && cas.len() == 1 {
                if let Some(v) = file_opt(
                    &cas[0],
                    o.pos("ssl_certificate_authorities"),
                    cx,
                    &mut comments,
                    "tls.client_ca_file",
                ) {
                    tls.push(("client_ca_file".to_string(), v));
                }
                if verify != "required" && verify != "force_peer" {
                    comments.push(cx.todo(
                        o.pos("ssl_certificate_authorities"),
                        format!(
                            "client certificates are `{verify}` in Logstash; pipe then requires one from every client"
                        ),
                    ));
                }
            } else {
                comments.push(cx.todo(
                    o.pos("ssl_certificate_authorities"),
                    "client certificate checking needs one CA file and `ssl_client_authentication => required`",
                ));
            }
            o.consume(&["ssl_client_authentication", "ssl_verify_mode"]);
        }
        if tls.len() >= 2 {
            c.set("tls", Opt::Table(tls));
        } else {
            comments.push(cx.todo(&o.plugin.pos, "TLS needs `ssl_certificate` and `ssl_key` (PEM files)"));
        }
    }
    if let Some(false) = o.bool("include_codec_tag") {
    } else {
        fields.push(super::filters::tags_line(&[vrl::string(
            "beats_input_codec_plain_applied",
        )]));
    }
    if let Some(codec) = o.get("codec") {
        let name = match &codec {
            Value::Plugin(p) => p.name.clone(),
            v => v.as_str().unwrap_or_default().to_string(),
        };
        if name != "plain" {
            comments.push(cx.todo(o.pos("codec"), format!("the `{name}` codec on the `beats` input has no pipe equivalent (with `multiline`, let Filebeat join the lines: `multiline.*` in filebeat.yml)")));
        }
    }
    c.comments.extend(comments);
    cx.metadata = true;
    timestamp_from_pipe(fields);
}

fn kafka(o: &Opts, c: &mut Component, fields: &mut Vec<String>, cx: &mut Cx) {
    let mut comments = Vec::new();
    let servers = o
        .text("bootstrap_servers", cx, &mut comments)
        .unwrap_or(Opt::Str("localhost:9092".into()));
    c.set("bootstrap_servers", servers);
    let group = o
        .text("group_id", cx, &mut comments)
        .unwrap_or(Opt::Str("logstash".into()));
    c.set("group_id", group);
    let topics: Vec<Opt> = match o.str("topics_pattern") {
        Some(p) => vec![Opt::Str(super::sprintf::escape_dollars(&format!(
            "^{}",
            p.trim_start_matches('^')
        )))],
        None => o
            .list("topics")
            .unwrap_or_else(|| vec!["logstash".into()])
            .iter()
            .filter_map(|t| text_opt(t, o.pos("topics"), cx, &mut comments, "`topics`"))
            .collect(),
    };
    c.set("topics", Opt::List(topics));
    // Kafka's own default, which Logstash keeps.
    let reset = o.str("auto_offset_reset").unwrap_or_else(|| "latest".into());
    match reset.as_str() {
        "earliest" | "latest" => c.set("auto_offset_reset", Opt::Str(reset)),
        other => comments.push(cx.todo(
            o.pos("auto_offset_reset"),
            format!("`auto_offset_reset => {other}` has no pipe equivalent"),
        )),
    }
    let decoding = match o.get("codec") {
        None => "text",
        Some(v) => match v {
            Value::Plugin(p) if !p.options.is_empty() => {
                comments.push(cx.todo(
                    o.pos("codec"),
                    format!("the options of the `{}` codec have no pipe equivalent", p.name),
                ));
                "text"
            }
            v => {
                let name = match &v {
                    Value::Plugin(p) => p.name.clone(),
                    v => v.as_str().unwrap_or_default().to_string(),
                };
                match name.as_str() {
                    "json" | "json_lines" => "json",
                    "plain" | "line" => "text",
                    other => {
                        comments.push(cx.todo(
                            o.pos("codec"),
                            format!("the `{other}` codec has no pipe equivalent; records are read as text"),
                        ));
                        "text"
                    }
                }
            }
        },
    };
    c.set("decoding", Opt::Str(decoding.into()));
    let decorate = o
        .get("decorate_events")
        .and_then(|v| v.as_str().map(|s| s != "false" && s != "none"))
        .unwrap_or(false);
    c.set("metadata_key", Opt::Str("@kafka".into()));
    if decorate {
        cx.metadata = true;
        fields.push(".\"@metadata\".kafka = del(.\"@kafka\")".into());
    } else {
        fields.push("del(.\"@kafka\")".into());
    }
    if let Some(ms) = o.int("session_timeout_ms") {
        c.set("session_timeout_ms", Opt::Int(ms));
    }
    if let Some(n) = o.int("max_poll_records") {
        c.set("max_batch_events", Opt::Int(n));
    }
    if let Some(ms) = o.int("auto_commit_interval_ms") {
        c.set("commit_interval_ms", Opt::Int(ms));
    }
    o.consume(&["enable_auto_commit", "consumer_threads"]);
    let mut props = Vec::new();
    if let Some(v) = o.text("client_id", cx, &mut comments) {
        props.push(("client.id".to_string(), v));
    }
    for (from, to) in [
        ("fetch_max_bytes", "fetch.max.bytes"),
        ("fetch_min_bytes", "fetch.min.bytes"),
        ("isolation_level", "isolation.level"),
        ("max_partition_fetch_bytes", "max.partition.fetch.bytes"),
    ] {
        if let Some(v) = o.text(from, cx, &mut comments) {
            props.push((to.to_string(), v));
        }
    }
    if !props.is_empty() {
        c.set("librdkafka_options", Opt::Table(props));
    }
    kafka_security(o, c, cx, &mut comments);
    c.comments.extend(comments);
    timestamp_from_pipe(fields);
}

/// `security_protocol`, `sasl_*`, `ssl_*` of the Kafka input and output.
pub fn kafka_security(o: &Opts, c: &mut Component, cx: &mut Cx, comments: &mut Vec<String>) {
    let protocol = o.str("security_protocol").unwrap_or_else(|| "PLAINTEXT".into());
    let tls_on = protocol == "SSL" || protocol == "SASL_SSL";
    let sasl_on = protocol.starts_with("SASL");
    if sasl_on {
        let mechanism = o.str("sasl_mechanism").unwrap_or_else(|| "GSSAPI".into());
        let mut sasl = Vec::new();
        match mechanism.as_str() {
            "PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512" => {
                sasl.push(("mechanism".to_string(), Opt::Str(mechanism.clone())))
            }
            other => comments.push(cx.todo(
                o.pos("sasl_mechanism"),
                format!("SASL mechanism `{other}` has no pipe equivalent (PLAIN, SCRAM-SHA-256/512)"),
            )),
        }
        let jaas = o.str("sasl_jaas_config").unwrap_or_default();
        let user = jaas_value(&jaas, "username");
        let pass = jaas_value(&jaas, "password");
        match (user, pass) {
            (Some(u), Some(p)) => {
                for (k, v) in [("username", u), ("password", p)] {
                    if let Some(opt) = text_opt(&v, o.pos("sasl_jaas_config"), cx, comments, "`sasl_jaas_config`") {
                        sasl.push((k.to_string(), opt));
                    }
                }
            }
            _ => comments.push(cx.todo(o.pos("sasl_jaas_config"), "set `sasl.username` and `sasl.password`: no `username='…' password='…'` was found in `sasl_jaas_config`")),
        }
        if sasl.len() == 3 {
            c.set("sasl", Opt::Table(sasl));
        }
    }
    if tls_on {
        let mut tls = Vec::new();
        if let Some(path) = o.str("ssl_truststore_location") {
            if path.ends_with(".pem") || path.ends_with(".crt") {
                if let Some(v) = file_opt(&path, o.pos("ssl_truststore_location"), cx, comments, "tls.ca_file") {
                    tls.push(("ca_file".to_string(), v));
                }
            } else {
                comments.push(cx.todo(
                    o.pos("ssl_truststore_location"),
                    format!(
                        "the truststore `{path}` must become a PEM file for `tls.ca_file` (keytool -exportcert -rfc)"
                    ),
                ));
            }
        }
        if o.str("ssl_keystore_location").is_some() {
            comments.push(cx.todo(
                o.pos("ssl_keystore_location"),
                "the keystore must become PEM files for `tls.crt_file` and `tls.key_file`",
            ));
        }
        o.consume(&[
            "ssl_truststore_password",
            "ssl_truststore_type",
            "ssl_keystore_password",
            "ssl_keystore_type",
            "ssl_key_password",
        ]);
        if o.str("ssl_endpoint_identification_algorithm")
            .is_some_and(|s| s.is_empty())
        {
            tls.push(("verify_hostname".to_string(), Opt::Bool(false)));
        }
        c.set("tls", Opt::Table(tls));
    }
}

/// `name='value'` (or `"value"`) in a JAAS config line.
fn jaas_value(jaas: &str, name: &str) -> Option<String> {
    let at = jaas.find(&format!("{name}="))?;
    let rest = &jaas[at + name.len() + 1..];
    let quote = rest.chars().next()?;
    if quote != '\'' && quote != '"' {
        return None;
    }
    let end = rest[1..].find(quote)?;
    Some(rest[1..1 + end].to_string())
}

fn http(o: &Opts, c: &mut Component, fields: &mut Vec<String>, cx: &mut Cx) {
    let host = o.str("host").unwrap_or_else(|| "0.0.0.0".into());
    let port = o.str("port").unwrap_or_else(|| "8080".into());
    let mut comments = Vec::new();
    if let Some(Opt::Str(a)) = text_opt(
        &format!("{host}:{port}"),
        o.pos("port"),
        cx,
        &mut comments,
        "`host`/`port`",
    ) {
        c.set("address", Opt::Str(a));
    }
    if let (Some(user), Some(pass)) = (o.str("user"), o.str("password")) {
        if let Some(p) = text_opt(&pass, o.pos("password"), cx, &mut comments, "`password`") {
            c.set(
                "auth",
                Opt::Table(vec![("basic".to_string(), Opt::Table(vec![(user, p)]))]),
            );
        }
    }
    let ssl = o.bool("ssl_enabled").or(o.bool("ssl")).unwrap_or(false);
    if ssl {
        let mut tls = Vec::new();
        for (from, to) in [("ssl_certificate", "crt_file"), ("ssl_key", "key_file")] {
            if let Some(raw) = o.str(from)
                && let Some(v) = file_opt(&raw, o.pos(from), cx, &mut comments, &format!("tls.{to}"))
            {
                tls.push((to.to_string(), v));
            }
        }
        if tls.len() == 2 {
            c.set("tls", Opt::Table(tls));
        } else {
            comments.push(cx.todo(&o.plugin.pos, "HTTPS needs `ssl_certificate` and `ssl_key` (PEM files)"));
        }
    }
    match o.get("codec") {
        None => {}
        Some(v) => {
            let name = match &v {
                Value::Plugin(p) => p.name.clone(),
                v => v.as_str().unwrap_or_default().to_string(),
            };
            match name.as_str() {
                "json" => c.set("decoding", Opt::Str("json".into())),
                "json_lines" => c.set("decoding", Opt::Str("ndjson".into())),
                "plain" | "line" => c.set("decoding", Opt::Str("text".into())),
                other => comments.push(cx.todo(
                    o.pos("codec"),
                    format!("the `{other}` codec has no pipe equivalent; bodies are decoded by their Content-Type"),
                )),
            }
        }
    }
    // Logstash puts the request path under `[headers][request_path]`.
    c.set("path_key", Opt::Str("@request_path".into()));
    fields.push("if exists(.\"@request_path\") { .headers.request_path = del(.\"@request_path\") }".into());
    c.comments.extend(comments);
    timestamp_from_pipe(fields);
}
