//! `${VAR}` and `${VAR:-default}` in topology files, replaced from the environment
//! before the TOML is parsed; `$$` stands for a literal `$`. Comments are left
//! alone. A variable that is unset and has no default is an error naming its line.
//!
//! A value lands as the TOML it stands in: inside a `"…"` (or `"""…"""`) string its
//! `"`, `\` and control characters are escaped, so a password holding them reaches
//! the component intact and cannot end the string early; inside a `'…'` literal
//! string, which has no escapes, a value holding `'` (or a line break) is an error;
//! outside strings (`port = ${PORT}`) the value must be one TOML value (a number, a
//! boolean, a date, an array), so a variable can never add keys or tables.

/// Why a variable cannot be replaced.
#[derive(Debug, PartialEq)]
pub struct MissingVar {
    /// The variable's name.
    pub name: String,
    /// The 1-based line it appears on.
    pub line: usize,
    /// What is wrong with it; `None` when it is unset and has no default.
    pub problem: Option<&'static str>,
}

/// Where in the TOML text a character is.
#[derive(Clone, Copy, PartialEq)]
enum At {
    Bare,
    Comment,
    Basic,
    MultiBasic,
    Literal,
    MultiLiteral,
}

/// Replaces variables in `text` using `lookup`.
pub fn interpolate(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, Vec<MissingVar>> {
    let mut out = String::with_capacity(text.len());
    let mut missing = Vec::new();
    let mut at = At::Bare;
    let mut line = 1;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        let starts = |p: &str| rest.starts_with(p);
        let mut step = c.len_utf8();
        match (at, c) {
            (_, '\n') => {
                line += 1;
                if at == At::Comment {
                    at = At::Bare;
                }
            }
            (At::Comment, _) => {}
            (_, '$') if starts("$$") => {
                out.push('$');
                rest = &rest[2..];
                continue;
            }
            (_, '$') if starts("${") && rest.find(['}', '\n']).is_some_and(|i| rest[i..].starts_with('}')) => {
                let end = rest.find('}').unwrap_or(rest.len());
                let expr = &rest[2..end];
                let (name, default) = match expr.split_once(":-") {
                    Some((n, d)) => (n, Some(d)),
                    None => (expr, None),
                };
                let var = |problem| MissingVar {
                    name: name.to_string(),
                    line,
                    problem,
                };
                match (lookup(name).filter(|v| !v.is_empty() || default.is_none()), default) {
                    // A default is written in the file, already as the TOML of its place.
                    (None, Some(d)) => out.push_str(d),
                    (None, None) => missing.push(var(None)),
                    (Some(v), _) => match at {
                        At::Basic | At::MultiBasic => push_escaped(&mut out, &v),
                        At::Literal if v.contains(['\'', '\n', '\r']) => missing.push(var(Some(
                            "its value holds a `'` or a line break, which a '…' string cannot hold; use \"…\"",
                        ))),
                        At::MultiLiteral if v.contains("'''") => missing.push(var(Some(
                            "its value holds `'''`, which a '''…''' string cannot hold; use \"…\"",
                        ))),
                        At::Bare if !is_toml_value(&v) => missing.push(var(Some(
                            "outside a string its value must be one TOML value (a number, a boolean, a date, an array), so it cannot add keys or tables; quote the `${…}`",
                        ))),
                        _ => out.push_str(&v),
                    },
                }
                rest = &rest[end + 1..];
                continue;
            }
            (At::Bare, '#') => at = At::Comment,
            (At::Bare, '"') if starts("\"\"\"") => (at, step) = (At::MultiBasic, 3),
            (At::Bare, '"') => at = At::Basic,
            (At::Bare, '\'') if starts("'''") => (at, step) = (At::MultiLiteral, 3),
            (At::Bare, '\'') => at = At::Literal,
            (At::Basic | At::MultiBasic, '\\') => {
                // An escape: the next character belongs to it (a line break stays one).
                step += rest[1..]
                    .chars()
                    .next()
                    .filter(|&n| n != '\n')
                    .map_or(0, char::len_utf8);
            }
            (At::Basic, '"') | (At::Literal, '\'') => at = At::Bare,
            // A multi-line string ends at the last three of a run of up to five quotes.
            (At::MultiBasic, '"') if starts("\"\"\"") => (at, step) = (At::Bare, run(rest, '"')),
            (At::MultiLiteral, '\'') if starts("'''") => (at, step) = (At::Bare, run(rest, '\'')),
            _ => {}
        }
        out.push_str(&rest[..step]);
        rest = &rest[step..];
    }
    if missing.is_empty() { Ok(out) } else { Err(missing) }
}

/// How many `quote` characters `text` starts with, at most five.
fn run(text: &str, quote: char) -> usize {
    text.chars().take(5).take_while(|&c| c == quote).count()
}

/// True when `value` is one TOML value on its own: what may stand outside a string.
fn is_toml_value(value: &str) -> bool {
    if value.contains(['\n', '\r']) {
        return false;
    }
    match toml::from_str::<toml::Table>(&format!("v = {value}")) {
        Ok(t) => t.len() == 1 && t.get("v").is_some_and(|v| !v.is_table()),
        Err(_) => false,
    }
}

/// Appends `value` escaped for a TOML basic string.
fn push_escaped(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
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
                line: 2,
                problem: None,
            }]
        );
    }

    #[test]
    fn values_land_as_the_toml_of_their_place() {
        let lookup = |name: &str| match name {
            "PW" => Some("a\"b\\c'd\n".to_string()),
            "PORT" => Some("9092".to_string()),
            "BAD" => Some("1\n[sinks.x]".to_string()),
            _ => None,
        };
        let t = "p = \"${PW}\"\nm = \"\"\"x ${PW}\"\"\"\nq = \"\\\" ${PW}\"\nport = ${PORT}\n# \"${NOPE}\n";
        let text = interpolate(t, lookup).unwrap();
        let table: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(table["p"].as_str(), Some("a\"b\\c'd\n"));
        assert_eq!(table["m"].as_str(), Some("x a\"b\\c'd\n"));
        assert_eq!(table["q"].as_str(), Some("\" a\"b\\c'd\n"));
        assert_eq!(table["port"].as_integer(), Some(9092));
        let err = interpolate("l = '${PW}'\nb = ${BAD}\n", lookup).unwrap_err();
        assert_eq!(err.len(), 2);
        assert_eq!((err[0].line, err[1].line), (1, 2));
        assert!(err.iter().all(|e| e.problem.is_some()));
        // A value outside strings is one TOML value or nothing.
        let bare = |v: &'static str| move |_: &str| Some(v.to_string());
        assert!(interpolate("t = { port = ${P} }\n", bare("1, path = \"/x\"")).is_err());
        assert!(interpolate("${K} = 1\n", bare("sinks.x.type")).is_err());
        assert!(interpolate("a = ${V}\nb = 2\n", bare("\"\"\"")).is_err());
        assert_eq!(interpolate("p = ${P}\n", bare("9092")).unwrap(), "p = 9092\n");
        assert_eq!(
            interpolate("p = ${P}\n", bare("[\"a\", \"b\"]")).unwrap(),
            "p = [\"a\", \"b\"]\n"
        );
        // A multi-line string may end with extra quotes: the next string is still one.
        let t = "a = \"\"\"x\"\"\"\"\nb = \"${PW}\"\n";
        let table: toml::Table = toml::from_str(&interpolate(t, lookup).unwrap()).unwrap();
        assert_eq!(table["a"].as_str(), Some("x\""));
        assert_eq!(table["b"].as_str(), Some("a\"b\\c'd\n"));
    }
}
