//! A line diff of two texts (longest common subsequence), for `pipe test`'s report:
//! common lines indented, `-` for lines only in the first, `+` only in the second.

/// Lines beyond which the texts are shown whole instead of diffed.
const MAX_LINES: usize = 2000;

/// The diff of `expected` and `actual`.
pub fn lines(expected: &str, actual: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    if a.len() > MAX_LINES || b.len() > MAX_LINES {
        return format!("expected:\n{expected}\nactual:\n{actual}");
    }
    // lcs[i][j]: the longest common subsequence of a[i..] and b[j..].
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = String::new();
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push_str(&format!("  {}\n", a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push_str(&format!("- {}\n", a[i]));
            i += 1;
        } else {
            out.push_str(&format!("+ {}\n", b[j]));
            j += 1;
        }
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
