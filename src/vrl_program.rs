//! Compiling and running VRL programs against events, shared by every component that
//! takes VRL (remap, filter, route conditions).

use crate::event::Event;
use std::sync::Arc;
use vrl::compiler::runtime::{Runtime, Terminate};
use vrl::compiler::{Program, TargetValueRef, TimeZone};
use vrl::value::{Secrets, Value};

/// A compiled VRL program with its own runtime state.
pub struct VrlProgram {
    program: Arc<Program>,
    runtime: Runtime,
    timezone: TimeZone,
}

/// How a run ended when it did not succeed.
#[derive(Debug)]
pub enum RunError {
    /// The program called `abort`.
    Abort(String),
    /// A runtime error.
    Error(String),
}

impl VrlProgram {
    /// Compiles `source` with the full standard library; on failure the error is VRL's
    /// own diagnostic, rendered against the source.
    pub fn compile(source: &str) -> Result<Self, String> {
        let functions = vrl::stdlib::all();
        match vrl::compiler::compile(source, &functions) {
            Ok(result) => Ok(VrlProgram {
                program: Arc::new(result.program),
                runtime: Runtime::default(),
                timezone: TimeZone::default(),
            }),
            Err(diagnostics) => Err(vrl::diagnostic::Formatter::new(source, diagnostics).to_string()),
        }
    }

    /// Runs the program on `event`, modifying it in place, and returns its value.
    pub fn run(&mut self, event: &mut Event) -> Result<Value, RunError> {
        let mut secrets = Secrets::default();
        let mut target = TargetValueRef {
            value: &mut event.value,
            metadata: &mut event.metadata,
            secrets: &mut secrets,
        };
        let result = self.runtime.resolve(&mut target, &self.program, &self.timezone);
        self.runtime.clear();
        result.map_err(|e| match e {
            Terminate::Abort(e) => RunError::Abort(e.to_string()),
            other => RunError::Error(other.to_string()),
        })
    }
}

impl Clone for VrlProgram {
    fn clone(&self) -> Self {
        VrlProgram {
            program: self.program.clone(),
            runtime: Runtime::default(),
            timezone: self.timezone,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_and_reports_diagnostics() {
        let mut p = VrlProgram::compile(". = parse_json!(.message)\n.added = 1").unwrap();
        let mut e = Event::new(Value::Object(Default::default()));
        e.insert("message", r#"{"a":2}"#);
        p.run(&mut e).unwrap();
        assert_eq!(e.get("a"), Some(&Value::from(2)));
        assert_eq!(e.get("added"), Some(&Value::from(1)));

        let err = VrlProgram::compile(".x = no_such_fn(1)").err().unwrap();
        assert!(err.contains("no_such_fn"), "{err}");
    }
}
