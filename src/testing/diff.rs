//! The diff of expected and actual events in `pipe test`'s report: common lines
//! indented, `-` for lines only expected, `+` for lines only actual.

use crate::line_diff::{self, Line};

/// Lines beyond which the texts are shown whole instead of diffed.
const MAX_LINES: usize = 2000;

/// The diff of `expected` and `actual`.
pub fn lines(expected: &str, actual: &str) -> String {
    if expected.lines().count() > MAX_LINES || actual.lines().count() > MAX_LINES {
        return format!("expected:\n{expected}\nactual:\n{actual}");
    }
    let mut out = String::new();
    for line in line_diff::lines(expected, actual) {
        let (mark, text) = match line {
            Line::Same(t) => (' ', t),
            Line::Removed(_, t) => ('-', t),
            Line::Added(_, t) => ('+', t),
        };
        out.push_str(&format!("{mark} {text}\n"));
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn marks_what_changed() {
        let d = super::lines("a\nb\nc", "a\nx\nc\nd");
        assert_eq!(d, "  a\n- b\n+ x\n  c\n+ d");
    }
}
