//! Line diffs of two texts (longest common subsequence): each line kept, removed or
//! added, for `pipe test`'s report and the generated docs' golden check.

/// One line of a diff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line<'a> {
    /// In both texts.
    Same(&'a str),
    /// Only in the first; its 1-based line number there.
    Removed(usize, &'a str),
    /// Only in the second; the 1-based line number in the first it comes before.
    Added(usize, &'a str),
}

/// The diff of `old` and `new`, removals before additions where both fit.
pub fn lines<'a>(old: &'a str, new: &'a str) -> Vec<Line<'a>> {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
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
    let mut out = Vec::new();
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push(Line::Same(a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push(Line::Removed(i + 1, a[i]));
            i += 1;
        } else {
            out.push(Line::Added(i + 1, b[j]));
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_what_changed() {
        assert_eq!(
            lines("a\nb\nc", "a\nx\nc\nd"),
            [
                Line::Same("a"),
                Line::Removed(2, "b"),
                Line::Added(3, "x"),
                Line::Same("c"),
                Line::Added(4, "d")
            ]
        );
    }
}
