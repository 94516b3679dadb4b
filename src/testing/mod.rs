//! `pipe test FILE…`: runs the `[[tests]]` tables of a topology (in its files or in a
//! file beside them, given together). Each test gets freshly built components, puts
//! its inputs in at a source (whose decoding runs) or a transform, runs the
//! transforms (sinks are never built), and checks what came out of the outputs it
//! names: conditions in VRL that must hold for every event (or one, `match = "any"`),
//! a count, exact events, and outputs that must stay empty. Exit 0 when every test
//! passes, 1 with a readable report (and a diff of expected and actual events) when
//! one fails, 78 when the topology or a test is invalid.

mod diff;
pub mod harness;
pub mod spec;

pub use spec::TestSpec;

use crate::config::{self, EXIT_CONFIG, Overrides};
use crate::event::Event;
use crate::vrl_program::VrlProgram;
use spec::{Match, OutputSpec};
use std::fmt::Write as _;
use std::path::PathBuf;
use vrl::value::Value;

/// Events shown at most per failing output.
const SHOWN: usize = 10;

/// Runs the tests of the topology in `files`; writes the report to `out` and returns
/// the exit code.
pub fn run(files: &[PathBuf], overrides: &Overrides, out: &mut dyn std::io::Write) -> u8 {
    let scratch = std::env::temp_dir().join(format!("pipe-test-{}", std::process::id()));
    let overrides = Overrides {
        data_dir: Some(overrides.data_dir.clone().unwrap_or_else(|| scratch.clone())),
        without_sinks: true,
    };
    let code = run_in(files, &overrides, out);
    let _ = std::fs::remove_dir_all(&scratch);
    code
}

fn run_in(files: &[PathBuf], overrides: &Overrides, out: &mut dyn std::io::Write) -> u8 {
    let load = || config::load(files, overrides);
    let first = match load() {
        Ok(t) => t,
        Err(errors) => {
            eprintln!("{errors}");
            return EXIT_CONFIG;
        }
    };
    if first.tests.is_empty() {
        eprintln!("pipe test: no [[tests]] in {}", names(files));
        return EXIT_CONFIG;
    }
    let tests: Vec<TestSpec> = first.tests.iter().map(|(_, _, t)| t.clone()).collect();
    let mut fresh = Some(first);
    let mut failed = 0;
    for test in &tests {
        // Every test starts from newly built components: no state carries over.
        let topology = match fresh.take().map_or_else(load, Ok) {
            Ok(t) => t,
            Err(errors) => {
                eprintln!("{errors}");
                return EXIT_CONFIG;
            }
        };
        let collected = harness::run(test, topology.nodes);
        let problems = check(test, &collected);
        if problems.is_empty() {
            let _ = writeln!(out, "test {:?} ... ok", test.name);
        } else {
            failed += 1;
            let _ = writeln!(out, "test {:?} ... FAILED", test.name);
            for p in problems {
                for line in p.lines() {
                    let _ = writeln!(out, "    {line}");
                }
            }
        }
    }
    let _ = writeln!(
        out,
        "\n{} test{}: {} passed, {failed} failed",
        tests.len(),
        if tests.len() == 1 { "" } else { "s" },
        tests.len() - failed
    );
    u8::from(failed > 0)
}

fn names(files: &[PathBuf]) -> String {
    files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// What is wrong with `collected` against `test`'s expectations, one entry each.
fn check(test: &TestSpec, collected: &harness::Collected) -> Vec<String> {
    let empty = Vec::new();
    let mut problems = Vec::new();
    for o in &test.outputs {
        let events = collected.get(&o.extract_from).unwrap_or(&empty);
        problems.extend(check_output(o, events));
    }
    for name in &test.no_outputs_from {
        let events = collected.get(name).unwrap_or(&empty);
        if !events.is_empty() {
            problems.push(format!(
                "`{name}` must stay empty but carried {} event{}:\n{}",
                events.len(),
                if events.len() == 1 { "" } else { "s" },
                show(events)
            ));
        }
    }
    problems
}

fn check_output(o: &OutputSpec, events: &[Event]) -> Vec<String> {
    let from = &o.extract_from;
    let mut problems = Vec::new();
    if let Some(n) = o.count
        && events.len() != n
    {
        problems.push(format!(
            "`{from}`: expected {n} events, got {}:\n{}",
            events.len(),
            show(events)
        ));
    }
    if let Some(expected) = &o.events {
        let want: Vec<serde_json::Value> = expected
            .iter()
            .map(|t| harness::toml_json(&toml::Value::Table(t.clone())))
            .collect();
        let got: Vec<serde_json::Value> = events.iter().map(json).collect();
        if want != got {
            problems.push(format!(
                "`{from}`: the events differ (- expected, + actual):\n{}",
                diff::lines(&pretty(&want), &pretty(&got))
            ));
        }
    }
    if o.conditions.is_empty() {
        return problems;
    }
    if events.is_empty() {
        problems.push(format!("`{from}`: no event came out to check the conditions against"));
        return problems;
    }
    let mut programs: Vec<(String, VrlProgram)> = o
        .conditions
        .iter()
        .filter_map(|c| VrlProgram::compile(c).ok().map(|p| (c.clone(), p)))
        .collect();
    // For each event, the first condition it fails and why.
    let verdicts: Vec<Option<String>> = events
        .iter()
        .map(|e| {
            programs.iter_mut().find_map(|(source, p)| {
                let mut copy = e.duplicate();
                match p.run(&mut copy) {
                    Ok(Value::Boolean(true)) => None,
                    Ok(other) => Some(format!("`{source}` is {other}")),
                    Err(err) => Some(format!("`{source}` failed: {err:?}")),
                }
            })
        })
        .collect();
    match o.match_ {
        Match::All => {
            let failing: Vec<(usize, &String)> = verdicts
                .iter()
                .enumerate()
                .filter_map(|(i, v)| v.as_ref().map(|v| (i, v)))
                .collect();
            if !failing.is_empty() {
                let mut text = format!(
                    "`{from}`: {} of {} events fail the conditions:\n",
                    failing.len(),
                    events.len()
                );
                for (i, why) in failing.iter().take(SHOWN) {
                    let _ = writeln!(text, "  event {}: {why}\n    {}", i + 1, compact(&events[*i]));
                }
                problems.push(text.trim_end().to_string());
            }
        }
        Match::Any => {
            if verdicts.iter().all(Option::is_some) {
                problems.push(format!(
                    "`{from}`: none of {} events meets every condition ({}):\n{}",
                    events.len(),
                    o.conditions.join(", "),
                    show(events)
                ));
            }
        }
    }
    problems
}

fn json(e: &Event) -> serde_json::Value {
    serde_json::to_value(&e.value).unwrap_or(serde_json::Value::Null)
}

fn compact(e: &Event) -> String {
    json(e).to_string()
}

fn pretty(v: &[serde_json::Value]) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// Up to [`SHOWN`] events, one JSON line each.
fn show(events: &[Event]) -> String {
    let mut text: String = events
        .iter()
        .take(SHOWN)
        .map(|e| format!("  {}\n", compact(e)))
        .collect();
    if events.len() > SHOWN {
        let _ = writeln!(text, "  … and {} more", events.len() - SHOWN);
    }
    text.trim_end().to_string()
}
