//! `${VAR}` and `${VAR:-default}` in topology files, replaced from the environment
//! before the TOML is parsed; `$$` stands for a literal `$`. Comment lines are left
//! alone. A variable that is unset and has no default is an error naming its line.

/// A variable that is unset and has no default.
#[derive(Debug, PartialEq)]
pub struct MissingVar {
    /// The variable's name.
    pub name: String,
    /// The 1-based line it appears on.
    pub line: usize,
}

/// Replaces variables in `text` using `lookup`.
pub fn interpolate(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, Vec<MissingVar>> {
    let mut out = String::with_capacity(text.len());
    let mut missing = Vec::new();
    for (n, line) in text.split_inclusive('\n').enumerate() {
        if line.trim_start().starts_with('#') {
            out.push_str(line);
            continue;
        }
        let mut rest = line;
        while let Some(pos) = rest.find('$') {
            out.push_str(&rest[..pos]);
            let after = &rest[pos + 1..];
            if let Some(tail) = after.strip_prefix('$') {
                out.push('$');
                rest = tail;
            } else if let Some(body) = after
                .strip_prefix('{')
                .and_then(|b| b.find('}').map(|end| (&b[..end], &b[end + 1..])))
            {
                let (expr, tail) = body;
                let (name, default) = match expr.split_once(":-") {
                    Some((n, d)) => (n, Some(d)),
                    None => (expr, None),
                };
                match (lookup(name).filter(|v| !v.is_empty() || default.is_none()), default) {
                    (Some(v), _) => out.push_str(&v),
                    (None, Some(d)) => out.push_str(d),
                    (None, None) => missing.push(MissingVar {
                        name: name.to_string(),
                        line: n + 1,
                    }),
                }
                rest = tail;
            } else {
                out.push('$');
                rest = after;
            }
        }
        out.push_str(rest);
    }
    if missing.is_empty() { Ok(out) } else { Err(missing) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("h1".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn replaces_defaults_and_escapes() {
        let t = "a = \"${HOST}\"\nb = \"${PORT:-9092}\"\nc = \"$$x ${EMPTY:-d}\"\n# ${NOPE}\n";
        assert_eq!(
            interpolate(t, env).unwrap(),
            "a = \"h1\"\nb = \"9092\"\nc = \"$x d\"\n# ${NOPE}\n"
        );
    }

    #[test]
    fn missing_names_its_line() {
        let err = interpolate("a = 1\nb = \"${NOPE}\"\n", env).unwrap_err();
        assert_eq!(
            err,
            vec![MissingVar {
                name: "NOPE".into(),
                line: 2
            }]
        );
    }
}
