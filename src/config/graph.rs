//! Graph checks on built components: resolving `inputs` (ids, globs like `app_*`,
//! named outputs like `parse.dropped`), cycles among transforms, and two components
//! claiming one resource.

use super::Node;
use crate::component::{Kind, did_you_mean};
use std::collections::HashMap;

/// A problem with one node.
pub struct GraphError {
    /// Index of the node in the list.
    pub node: usize,
    /// The key to blame.
    pub key: Option<&'static str>,
    /// What is wrong.
    pub message: String,
}

/// Resolves every node's inputs in place and reports what is wrong.
pub fn check(nodes: &mut [Node]) -> Vec<GraphError> {
    let mut errors = Vec::new();
    // Every output that can be consumed, with the node that owns it.
    let mut outputs: Vec<(String, usize)> = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        // A sink has no default output, only named ones (e.g. `es.dropped`).
        if n.kind != Kind::Sink {
            outputs.push((n.id.clone(), i));
        }
        for o in &n.built.outputs {
            outputs.push((format!("{}.{o}", n.id), i));
        }
    }
    let mut resolved_all = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let mut resolved: Vec<String> = Vec::new();
        for input in &n.inputs {
            if input.contains(['*', '?', '[']) {
                let Ok(pattern) = glob::Pattern::new(input) else {
                    errors.push(GraphError {
                        node: i,
                        key: Some("inputs"),
                        message: format!("input `{input}` is not a valid glob"),
                    });
                    continue;
                };
                let matched: Vec<&String> = nodes
                    .iter()
                    .filter(|m| m.kind != Kind::Sink && m.id != n.id && pattern.matches(&m.id))
                    .map(|m| &m.id)
                    .collect();
                if matched.is_empty() {
                    errors.push(GraphError {
                        node: i,
                        key: Some("inputs"),
                        message: format!("input `{input}` matches no source or transform"),
                    });
                }
                resolved.extend(matched.into_iter().cloned());
            } else if outputs.iter().any(|(o, _)| o == input) {
                resolved.push(input.clone());
            } else {
                let message = match input.split_once('.') {
                    Some((id, name)) if nodes.iter().any(|m| m.id == id) => {
                        let owner = nodes
                            .iter()
                            .find(|m| m.id == id)
                            .map(|m| m.built.outputs.join(", "))
                            .unwrap_or_default();
                        let has = if owner.is_empty() {
                            "it has only its default output".to_string()
                        } else {
                            format!("it has: {owner}")
                        };
                        format!("input `{input}`: component `{id}` has no output `{name}` ({has})")
                    }
                    _ if nodes.iter().any(|m| m.id == *input && m.kind == Kind::Sink) => {
                        format!(
                            "input `{input}` is a sink; a sink feeds others only through a named output like `{input}.dropped`"
                        )
                    }
                    _ => {
                        let hint = did_you_mean(input, outputs.iter().map(|(o, _)| o.as_str()))
                            .map(|s| format!("; did you mean `{s}`?"))
                            .unwrap_or_default();
                        format!("input `{input}` names no source or transform{hint}")
                    }
                };
                errors.push(GraphError {
                    node: i,
                    key: Some("inputs"),
                    message,
                });
            }
        }
        resolved.sort();
        resolved.dedup();
        resolved_all.push(resolved);
    }
    for (n, r) in nodes.iter_mut().zip(resolved_all) {
        n.inputs = r;
    }
    if let Some(cycle) = find_cycle(nodes) {
        let path: Vec<&str> = cycle.iter().map(|&i| nodes[i].id.as_str()).collect();
        errors.push(GraphError {
            node: cycle[0],
            key: Some("inputs"),
            message: format!("cycle: {} -> {}", path.join(" -> "), path[0]),
        });
    }
    let mut claimed: HashMap<&crate::component::Resource, usize> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        for r in &n.built.resources {
            if let Some(&other) = claimed.get(r) {
                errors.push(GraphError {
                    node: i,
                    key: None,
                    message: format!("{r} is also claimed by component `{}`", nodes[other].id),
                });
            } else {
                claimed.insert(r, i);
            }
        }
    }
    errors
}

/// A cycle among nodes, as indexes in order, if any.
fn find_cycle(nodes: &[Node]) -> Option<Vec<usize>> {
    let index: HashMap<&str, usize> = nodes.iter().enumerate().map(|(i, n)| (n.id.as_str(), i)).collect();
    let upstream = |i: usize| -> Vec<usize> {
        nodes[i]
            .inputs
            .iter()
            .filter_map(|inp| index.get(inp.split('.').next().unwrap_or(inp)).copied())
            .collect()
    };
    // 0 = unvisited, 1 = on the stack, 2 = done.
    let mut state = vec![0u8; nodes.len()];
    fn visit(
        i: usize,
        state: &mut [u8],
        stack: &mut Vec<usize>,
        up: &dyn Fn(usize) -> Vec<usize>,
    ) -> Option<Vec<usize>> {
        state[i] = 1;
        stack.push(i);
        for j in up(i) {
            if state[j] == 1 {
                let start = stack.iter().position(|&s| s == j).unwrap_or(0);
                let mut cycle = stack[start..].to_vec();
                cycle.reverse();
                return Some(cycle);
            }
            if state[j] == 0
                && let Some(c) = visit(j, state, stack, up)
            {
                return Some(c);
            }
        }
        stack.pop();
        state[i] = 2;
        None
    }
    for i in 0..nodes.len() {
        if state[i] == 0
            && let Some(c) = visit(i, &mut state, &mut Vec::new(), &upstream)
        {
            return Some(c);
        }
    }
    None
}
