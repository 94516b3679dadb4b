//! The `route` transform: each named VRL condition is an output `ID.NAME`; an event
//! goes to every route whose condition is true (a copy each), or to `ID._unmatched`.

use super::events::ConditionEvents;
use super::filter::check;
use crate::component::{BuildContext, BuildError, Built, Transform, TransformOutput, parse_options};
use crate::event::EventBatch;
use crate::metrics::ComponentMetrics;
use crate::vrl_program::VrlProgram;
use indexmap::IndexMap;
use serde::Deserialize;

/// Options of the `route` transform.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RouteConfig {
    /// Route name → VRL condition, at least one, e.g. `errors = '.level == "error"'`.
    /// Each route is an output `ID.NAME`; an event goes to every route whose condition
    /// is true (a copy each). Events matching none go to `ID._unmatched`.
    route: IndexMap<String, String>,
}

const UNMATCHED: &str = "_unmatched";

pub fn build(cx: &BuildContext, options: toml::Value) -> Result<Built, BuildError> {
    let config: RouteConfig = parse_options(options)?;
    if config.route.is_empty() {
        return Err(BuildError::key("route", "needs at least one named condition"));
    }
    let mut routes = Vec::new();
    for (name, condition) in &config.route {
        if name == UNMATCHED || name.contains(['.', '*']) {
            return Err(BuildError::key(
                name,
                "route names may not be `_unmatched` or contain `.` or `*`",
            ));
        }
        let program = VrlProgram::compile(condition)
            .map_err(|d| BuildError::key(name, format!("VRL condition does not compile:\n{d}")))?;
        routes.push(program);
    }
    let mut outputs: Vec<String> = config.route.keys().cloned().collect();
    outputs.push(UNMATCHED.into());
    Ok(Built::transform(
        Route {
            routes,
            events: ConditionEvents::new(&cx.metrics),
        },
        outputs,
    ))
}

#[derive(Clone)]
struct Route {
    routes: Vec<VrlProgram>,
    events: ConditionEvents,
}

impl Transform for Route {
    fn transform(&mut self, batch: EventBatch, out: &mut TransformOutput, _metrics: &ComponentMetrics) {
        let unmatched = self.routes.len();
        for mut event in batch {
            let matched: Vec<usize> = (0..self.routes.len())
                .filter(|&i| check(&mut self.routes[i], &mut event, &self.events))
                .collect();
            match matched.split_last() {
                None => out.named[unmatched].push(event),
                Some((&last, rest)) => {
                    for &i in rest {
                        out.named[i].push(event.duplicate());
                    }
                    out.named[last].push(event);
                }
            }
        }
    }

    fn clone_box(&self) -> Option<Box<dyn Transform>> {
        Some(Box::new(self.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use vrl::value::{ObjectMap, Value};

    #[test]
    fn routes_copies_and_unmatched() {
        let cx = BuildContext {
            id: "r".into(),
            data_dir: "/tmp".into(),
            ..Default::default()
        };
        let built = build(
            &cx,
            toml::from_str("[route]\nerr = '.level == \"error\"'\nall_err = 'starts_with(string!(.level), \"err\")'")
                .unwrap(),
        )
        .unwrap();
        assert_eq!(built.outputs, vec!["err", "all_err", "_unmatched"]);
        let crate::component::Body::Transform(mut t) = built.body else {
            panic!()
        };
        let mk = |level: &str| {
            let mut e = Event::new(Value::Object(ObjectMap::new()));
            e.insert("level", level);
            e
        };
        let mut out = TransformOutput::new(3);
        t.transform(
            vec![mk("error"), mk("info")],
            &mut out,
            &ComponentMetrics::unchecked("r", "transform"),
        );
        assert_eq!((out.named[0].len(), out.named[1].len(), out.named[2].len()), (1, 1, 1));
    }
}
