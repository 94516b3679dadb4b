//! One conversion: parse every file, map inputs to sources (each with its field
//! adapter), the filter section to one `remap`, outputs to sinks (a `filter` in
//! front of each sink inside a conditional), and write the TOML. Whatever has no
//! equivalent becomes a TODO; the result always validates, so a topology whose
//! every input or output is unmappable still gets a placeholder `stdin` source or
//! `blackhole` sink.

use super::ast::{Plugin, Pos, SectionKind, Statement};
use super::filters::{self, Emit};
use super::inputs;
use super::lexer::ParseError;
use super::opts::Cx;
use super::outputs;
use super::parser;
use super::topology::{self, Component, Opt, Todo};
use super::vrl;
use crate::component::Kind;
use std::sync::Arc;

/// How to read the configs.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Process escapes in quoted strings, as Logstash's `config.support_escapes`.
    pub support_escapes: bool,
}

/// The result of a conversion.
#[derive(Debug, Clone)]
pub struct Conversion {
    /// The topology.
    pub toml: String,
    /// What could not be mapped, in order.
    pub todos: Vec<Todo>,
    /// Environment variables the topology reads.
    pub env: Vec<String>,
}

/// A condition on the path to an output.
#[derive(Clone)]
struct Cond {
    vrl: Result<String, String>,
    text: String,
    pos: Pos,
}

/// Converts the files (name, text) as one pipeline, in the order given (as
/// Logstash concatenates the files of `-f dir/`).
pub fn convert(files: &[(String, String)], options: &Options) -> Result<Conversion, ParseError> {
    let mut sections = Vec::new();
    for (name, text) in files {
        sections.extend(parser::parse(name, text, options.support_escapes)?);
    }
    let mut cx = Cx {
        metadata: files.iter().any(|(_, t)| t.contains("@metadata")),
        ..Cx::default()
    };
    let first_pos = sections.first().map(|s| s.pos.clone()).unwrap_or(Pos {
        file: Arc::from(files.first().map(|f| f.0.as_str()).unwrap_or("-")),
        line: 1,
        column: 1,
    });
    let mut components: Vec<Component> = Vec::new();

    // Inputs, each with its field adapter.
    let mut input_notes = Vec::new();
    let mut adapters = Vec::new();
    let add_input = |p: &Plugin,
                     cx: &mut Cx,
                     notes: &mut Vec<String>,
                     components: &mut Vec<Component>,
                     adapters: &mut Vec<String>| {
        if let Some(input) = inputs::map(p, cx, notes) {
            let id = cx.ids.take(&format!("{}_fields", input.source.id));
            let mut adapter = Component::new(Kind::Transform, id.clone(), "remap");
            adapter.inputs = vec![input.source.id.clone()];
            adapter
                .comments
                .push(format!("The fields Logstash's `{}` input gives its events.", p.name));
            let mut program = input.fields.join("\n");
            program.push('\n');
            adapter.set("source", Opt::Program(program));
            components.push(input.source);
            components.push(adapter);
            adapters.push(id);
        }
    };
    for s in sections.iter().filter(|s| s.kind == SectionKind::Input) {
        for stmt in &s.body {
            match stmt {
                Statement::Plugin(p) => add_input(p, &mut cx, &mut input_notes, &mut components, &mut adapters),
                Statement::Branch(b) => {
                    input_notes.push(cx.todo(
                        &b.arms[0].pos,
                        "a conditional in the `input` section (Logstash refuses it too); its inputs are left out",
                    ));
                }
            }
        }
    }
    if adapters.is_empty() {
        input_notes.push(cx.todo(
            &first_pos,
            "no input could be mapped: a `stdin` source stands in; replace it",
        ));
        let stdin = Plugin {
            name: "stdin".into(),
            options: Vec::new(),
            pos: first_pos.clone(),
        };
        let mut ignore = Vec::new();
        add_input(&stdin, &mut cx, &mut ignore, &mut components, &mut adapters);
    }
    if let Some(first) = components.first_mut() {
        let mut c = input_notes;
        c.append(&mut first.comments);
        first.comments = c;
    }

    // The filter section as one program.
    let mut upstream = adapters.clone();
    let filter_stmts: Vec<Statement> = sections
        .iter()
        .filter(|s| s.kind == SectionKind::Filter)
        .flat_map(|s| s.body.clone())
        .collect();
    if !filter_stmts.is_empty() {
        let mut e = Emit::default();
        filters::program(&filter_stmts, &mut cx, &mut e);
        let id = cx.ids.take("filters");
        let mut remap = Component::new(Kind::Transform, id.clone(), "remap");
        remap.inputs = adapters.clone();
        remap
            .comments
            .push("The filter section, in order. `abort` drops the event (`drop`).".into());
        remap.set("source", Opt::Program(e.text()));
        components.push(remap);
        upstream = vec![id];
    }

    // Outputs, with the conditions around them.
    let mut found = Vec::new();
    for s in sections.iter().filter(|s| s.kind == SectionKind::Output) {
        walk(&s.body, &mut Vec::new(), &mut found);
    }
    let mut output_notes = Vec::new();
    let mut sinks: Vec<Component> = Vec::new();
    let mut routing: Vec<Component> = Vec::new();
    let mut shared_strip: Option<String> = None;
    for (conds, plugin) in &found {
        let Some(mut sink) = outputs::map(plugin, &mut cx, &mut output_notes) else {
            continue;
        };
        let condition = if conds.is_empty() {
            None
        } else {
            let mut parts = Vec::new();
            for c in conds {
                match &c.vrl {
                    Ok(v) => parts.push(v.clone()),
                    Err(why) => {
                        sink.comments.push(cx.todo(
                            &c.pos,
                            format!("`{}`: {why}; no event reaches this sink until it is rewritten", c.text),
                        ));
                        parts.push("false".into());
                    }
                }
            }
            Some((
                parts.join(" && "),
                conds.iter().map(|c| c.text.clone()).collect::<Vec<_>>().join(" and "),
            ))
        };
        let reads_metadata = topology::render(&[], std::slice::from_ref(&sink)).contains("@metadata");
        let strip = cx.metadata && !reads_metadata;
        if cx.metadata && reads_metadata {
            sink.comments.push(cx.todo(&plugin.pos, "this sink's options read `@metadata`, so the field stays on its events and is written too (Logstash never writes it)"));
        }
        match (condition, strip) {
            (None, false) => sink.inputs = upstream.clone(),
            (None, true) => {
                let id = shared_strip.get_or_insert_with(|| {
                    let id = cx.ids.take("without_metadata");
                    let mut r = Component::new(Kind::Transform, id.clone(), "remap");
                    r.inputs = upstream.clone();
                    r.comments
                        .push("Logstash never writes `@metadata` to an output.".into());
                    r.set("source", Opt::Program("del(.\"@metadata\")\n".into()));
                    routing.push(r);
                    id
                });
                sink.inputs = vec![id.clone()];
            }
            (Some((cond, text)), false) => {
                let id = cx.ids.take(&format!("{}_if", sink.id));
                let mut f = Component::new(Kind::Transform, id.clone(), "filter");
                f.inputs = upstream.clone();
                f.comments.push(format!(
                    "Logstash: `if {text}` around `{}` ({}).",
                    plugin.name, plugin.pos
                ));
                f.set("condition", Opt::Str(super::sprintf::escape_dollars(&cond)));
                routing.push(f);
                sink.inputs = vec![id];
            }
            (Some((cond, text)), true) => {
                let id = cx.ids.take(&format!("{}_if", sink.id));
                let mut r = Component::new(Kind::Transform, id.clone(), "remap");
                r.inputs = upstream.clone();
                r.comments.push(format!(
                    "Logstash: `if {text}` around `{}` ({}); `abort` drops the others. Logstash never writes `@metadata`.",
                    plugin.name, plugin.pos
                ));
                r.set(
                    "source",
                    Opt::Program(format!("if !{} {{ abort }}\ndel(.\"@metadata\")\n", wrap(&cond))),
                );
                routing.push(r);
                sink.inputs = vec![id];
            }
        }
        sinks.push(sink);
    }
    if sinks.is_empty() {
        let pos = found.first().map(|(_, p)| p.pos.clone()).unwrap_or(first_pos.clone());
        output_notes.push(cx.todo(
            &pos,
            "no output could be mapped: a `blackhole` sink stands in, discarding every event; replace it",
        ));
        let id = cx.ids.take("blackhole");
        let mut b = Component::new(Kind::Sink, id, "blackhole");
        b.inputs = upstream.clone();
        sinks.push(b);
    }
    if let Some(first) = routing.first_mut().or(sinks.first_mut()) {
        let mut c = std::mem::take(&mut output_notes);
        c.append(&mut first.comments);
        first.comments = c;
    }
    components.extend(routing);
    components.extend(sinks);

    // Every program must compile, or `pipe validate` would fail: one that does not
    // (a converter bug) is kept as comments and the events pass unchanged.
    for c in &mut components {
        let id = c.id.clone();
        for (k, v) in &mut c.options {
            if let (Opt::Program(p), "source") = (&*v, k.as_str())
                && let Err(e) = vrl::check(p)
            {
                let first = e
                    .lines()
                    .find(|l| l.contains("error"))
                    .unwrap_or("it does not compile")
                    .trim()
                    .to_string();
                let t = cx.todo(&first_pos, format!("the program written for `{id}` does not compile ({first}); it is kept as comments, and events pass unchanged"));
                let mut kept = format!("# {t}\n");
                for line in p.lines() {
                    kept.push_str(&format!("# {line}\n"));
                }
                kept.push_str("null\n");
                *v = Opt::Program(kept);
            }
        }
    }
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    let mut header = vec![
        format!("Converted from Logstash by `pipe convert logstash {}`.", names.join(" ")),
        "Fields are Logstash's without ECS: `@timestamp` (a timestamp), `@version`, `message`, `host`, `path`, `type`, `tags`.".to_string(),
    ];
    if !cx.todos.is_empty() {
        header.push(format!(
            "{} TODO line{} below mark what has no pipe equivalent; they were also listed on standard error.",
            cx.todos.len(),
            if cx.todos.len() == 1 { "" } else { "s" }
        ));
    }
    let env: Vec<String> = cx.env.iter().cloned().collect();
    if !env.is_empty() {
        header.push(format!(
            "It reads the environment variables {} as the Logstash config did: set them before `pipe validate` and `pipe -t`.",
            env.iter().map(|e| format!("`{e}`")).collect::<Vec<_>>().join(", ")
        ));
    }
    Ok(Conversion {
        toml: topology::render(&header, &components),
        todos: cx.todos,
        env,
    })
}

fn wrap(s: &str) -> String {
    format!("({s})")
}

/// Every output plugin with the conditions that must hold for it to run.
fn walk<'a>(stmts: &'a [Statement], conds: &mut Vec<Cond>, out: &mut Vec<(Vec<Cond>, &'a Plugin)>) {
    for s in stmts {
        match s {
            Statement::Plugin(p) => out.push((conds.clone(), p)),
            Statement::Branch(b) => {
                let mut before: Vec<Cond> = Vec::new();
                for arm in &b.arms {
                    let this = Cond {
                        vrl: vrl::condition(&arm.condition),
                        text: arm.text.clone(),
                        pos: arm.pos.clone(),
                    };
                    let depth = conds.len();
                    conds.extend(before.iter().cloned());
                    conds.push(this.clone());
                    walk(&arm.body, conds, out);
                    conds.truncate(depth);
                    before.push(negate(&this));
                }
                if let Some(body) = &b.otherwise {
                    let depth = conds.len();
                    conds.extend(before.iter().cloned());
                    walk(body, conds, out);
                    conds.truncate(depth);
                }
            }
        }
    }
}

fn negate(c: &Cond) -> Cond {
    Cond {
        vrl: c.vrl.as_ref().map(|v| format!("!({v})")).map_err(Clone::clone),
        text: format!("!({})", c.text),
        pos: c.pos.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every config under tests/logstash converts into a topology that loads, and
    /// every program written compiles (no TODO says otherwise).
    #[test]
    fn shipped_configs_convert_into_valid_topologies() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/logstash");
        let mut n = 0;
        let mut names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
        names.sort();
        for path in names.into_iter().filter(|p| p.extension().is_some_and(|e| e == "conf")) {
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            let text = std::fs::read_to_string(&path).unwrap();
            let c = convert(&[(name.clone(), text)], &Options::default()).unwrap();
            for t in &c.todos {
                assert!(!t.message.contains("does not compile"), "{name}: {t}\n{}", c.toml);
            }
            let data = tempfile::tempdir().unwrap();
            let overrides = crate::config::Overrides {
                data_dir: Some(data.path().to_path_buf()),
                ..Default::default()
            };
            // SAFETY-free: tests set variables the env-vars example reads.
            let text = c.toml.replace("${ENV_TAG}", "tag2");
            if let Err(e) = crate::config::load_str(std::path::Path::new(&name), &text, &overrides) {
                panic!("{name} does not validate:\n{e}\n{}", c.toml);
            }
            n += 1;
        }
        assert!(n >= 10);
    }
}
