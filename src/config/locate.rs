//! Finds the line of a component's table or of one of its keys in a topology file, so
//! errors can say `topology.toml:12`. A plain scan of the text: headers like
//! `[sources.logs]` and `[sources.logs.multiline]`, then `key =` inside them.

/// The 1-based line of `key` inside the table `section` (e.g. `sources.logs`), or of
/// the table's header when the key is absent or not found.
pub fn find_line(text: &str, section: &str, key: Option<&str>) -> Option<usize> {
    let mut header_line = None;
    let mut inside = false;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with('[') {
            let name: String = line
                .trim_matches(|c| c == '[' || c == ']')
                .chars()
                .filter(|c| !c.is_whitespace() && *c != '"' && *c != '\'')
                .collect();
            inside = name == section || name.starts_with(&format!("{section}."));
            if name == section && header_line.is_none() {
                header_line = Some(n + 1);
                if key.is_none() {
                    return header_line;
                }
            }
            continue;
        }
        if inside
            && let Some(key) = key
            && has_key(line, key)
        {
            return Some(n + 1);
        }
    }
    header_line
}

fn has_key(line: &str, key: &str) -> bool {
    let mut search = line;
    while let Some(pos) = search.find(key) {
        let before_ok = pos == 0 || matches!(search.as_bytes()[pos - 1], b'{' | b',' | b' ' | b'\t' | b'"' | b'.');
        let after = search[pos + key.len()..].trim_start_matches(['"', ' ', '\t']);
        if before_ok && (after.starts_with('=') || after.starts_with('.')) {
            return true;
        }
        search = &search[pos + key.len()..];
    }
    false
}

/// The 1-based line holding byte `offset` of `text`.
pub fn line_of_offset(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "data_dir = \"x\"\n\n[sources.logs]\ntype = \"file\"\nincude = [\"a\"]\n\n[sources.logs.multiline]\nstart_pattern = \"^x\"\n\n[sinks.out]\ninputs = [\"logs\"]\n";

    #[test]
    fn finds_headers_and_keys() {
        assert_eq!(find_line(T, "sources.logs", None), Some(3));
        assert_eq!(find_line(T, "sources.logs", Some("incude")), Some(5));
        assert_eq!(find_line(T, "sources.logs", Some("start_pattern")), Some(8));
        assert_eq!(find_line(T, "sinks.out", Some("inputs")), Some(11));
        assert_eq!(find_line(T, "sinks.out", Some("nope")), Some(10));
        assert_eq!(find_line(T, "sinks.none", None), None);
        assert_eq!(line_of_offset(T, 15), 2);
    }
}
