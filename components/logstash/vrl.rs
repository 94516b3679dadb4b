//! Writing VRL: paths, string and regex literals, and Logstash conditions as VRL
//! boolean expressions that cannot fail (so a `filter` condition or an `if` in a
//! `remap` program compiles and never errs at run time).

use super::ast::{CmpOp, Expr, Rvalue};

/// The VRL path of a Logstash field reference: `.a.b`, `."@timestamp"`, `.list[0]`.
pub fn path(segments: &[String]) -> String {
    let mut out = String::new();
    for s in segments {
        if !out.is_empty() && s.parse::<usize>().is_ok() {
            out.push_str(&format!("[{s}]"));
        } else if is_ident(s) {
            out.push('.');
            out.push_str(s);
        } else {
            out.push('.');
            out.push_str(&string(s));
        }
    }
    if out.is_empty() { ".".to_string() } else { out }
}

/// A path under a variable: `parsed.a`, `parsed."[a][b]"`.
pub fn var_path(var: &str, key: &str) -> String {
    if is_ident(key) {
        format!("{var}.{key}")
    } else {
        format!("{var}.{}", string(key))
    }
}

fn is_ident(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A VRL string literal holding `s` exactly (no template, no escape taken).
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let next = chars.get(i + 1).copied();
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '{' if next == Some('{') => out.push_str("\\{"),
            '}' if next == Some('}') => out.push_str("\\}"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A VRL regex literal; fails when Rust's regex engine does not take the pattern
/// (look-around, backreferences), which VRL would refuse to compile.
pub fn regex(pattern: &str) -> Result<String, String> {
    regex::Regex::new(pattern).map_err(|e| {
        format!(
            "the regular expression `{pattern}` is not valid for VRL: {}",
            e.to_string().lines().last().unwrap_or_default().trim()
        )
    })?;
    Ok(format!("r'{}'", pattern.replace('\'', "\\'")))
}

/// A VRL number literal for a Logstash number.
pub fn number(n: &str) -> String {
    if n.ends_with('.') {
        format!("{n}0")
    } else {
        n.to_string()
    }
}

/// True for a Logstash field reference written in VRL (what can be any type).
fn is_field(r: &Rvalue) -> bool {
    matches!(r, Rvalue::Field(_))
}

/// A condition as an infallible VRL boolean expression, or why it cannot be one.
pub fn condition(e: &Expr) -> Result<String, String> {
    Ok(match e {
        Expr::And(a, b) => format!("({} && {})", condition(a)?, condition(b)?),
        Expr::Or(a, b) => format!("({} || {})", condition(a)?, condition(b)?),
        Expr::Xor(a, b) => format!("({} != {})", condition(a)?, condition(b)?),
        Expr::Nand(a, b) => format!("!({} && {})", condition(a)?, condition(b)?),
        Expr::Not(a) => format!("!{}", wrap(&condition(a)?)),
        Expr::Truthy(r) => match r {
            Rvalue::Field(p) => {
                let p = path(p);
                format!("({p} != null && {p} != false)")
            }
            Rvalue::Method(name, _) => {
                return Err(format!("the method call `{name}(…)` has no meaning in Logstash or VRL"));
            }
            Rvalue::Regex(_) => return Err("a `/regex/` alone is no condition".into()),
            _ => "true".to_string(),
        },
        Expr::Compare(l, op, r) => {
            let (lv, rv) = (operand(l)?, operand(r)?);
            match op {
                CmpOp::Eq | CmpOp::Ne => format!("{lv} {} {rv}", op.symbol()),
                _ if is_field(l) || is_field(r) => format!("(({lv} {} {rv}) ?? false)", op.symbol()),
                _ => format!("({lv} {} {rv})", op.symbol()),
            }
        }
        Expr::Regex { left, pattern, negate } => {
            let re = regex(pattern)?;
            let m = match left {
                Rvalue::Field(_) => format!("(match({}, {re}) ?? false)", operand(left)?),
                Rvalue::Str(s) | Rvalue::Bare(s) => format!("match({}, {re})", string(s)),
                _ => return Err("only a field or a string can be matched against a regular expression".into()),
            };
            if *negate { format!("!{m}") } else { m }
        }
        Expr::In { item, list, negate } => {
            let i = operand(item)?;
            let test = match list {
                Rvalue::Array(_) => format!("includes({}, {i})", operand(list)?),
                Rvalue::Field(p) => {
                    let f = path(p);
                    let in_array = format!("includes(array({f}) ?? [], {i})");
                    if p.len() == 1 && p[0] == "tags" {
                        in_array
                    } else {
                        let sub = match item {
                            Rvalue::Str(s) | Rvalue::Bare(s) => format!("contains(string({f}) ?? \"\", {})", string(s)),
                            Rvalue::Field(_) => {
                                format!("(is_string({i}) && contains(string({f}) ?? \"\", string({i}) ?? \"\"))")
                            }
                            _ => "false".to_string(),
                        };
                        format!("({in_array} || {sub})")
                    }
                }
                Rvalue::Str(s) | Rvalue::Bare(s) => match item {
                    Rvalue::Field(_) => format!("(is_string({i}) && contains({}, string({i}) ?? \"\"))", string(s)),
                    Rvalue::Str(x) | Rvalue::Bare(x) => (s.contains(x.as_str())).to_string(),
                    _ => "false".to_string(),
                },
                _ => return Err("`in` needs a list, a field or a string on its right".into()),
            };
            if *negate { format!("!{}", wrap(&test)) } else { test }
        }
    })
}

fn wrap(s: &str) -> String {
    if s.starts_with('(') && s.ends_with(')') && balanced_outer(s) {
        s.to_string()
    } else {
        format!("({s})")
    }
}

/// True when the first `(` of `s` closes at its last character.
fn balanced_outer(s: &str) -> bool {
    let mut depth = 0;
    let mut in_str = false;
    let mut prev = ' ';
    for (i, c) in s.char_indices() {
        match c {
            '"' if prev != '\\' => in_str = !in_str,
            '(' if !in_str => depth += 1,
            ')' if !in_str => {
                depth -= 1;
                if depth == 0 && i != s.len() - 1 {
                    return false;
                }
            }
            _ => {}
        }
        prev = c;
    }
    true
}

/// An operand: a literal or a path.
fn operand(r: &Rvalue) -> Result<String, String> {
    Ok(match r {
        Rvalue::Str(s) | Rvalue::Bare(s) => string(s),
        Rvalue::Number(n) => number(n),
        Rvalue::Field(p) => path(p),
        Rvalue::Array(items) => format!(
            "[{}]",
            items.iter().map(operand).collect::<Result<Vec<_>, _>>()?.join(", ")
        ),
        Rvalue::Regex(re) => return Err(format!("the regular expression `/{re}/` cannot be compared")),
        Rvalue::Method(name, _) => {
            return Err(format!("the method call `{name}(…)` has no meaning in Logstash or VRL"));
        }
    })
}

/// Compiles `program` with pipe's VRL functions; the diagnostic when it fails.
pub fn check(program: &str) -> Result<(), String> {
    crate::vrl_program::VrlProgram::compile(program).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::logstash::ast::Statement;
    use crate::components::logstash::parser::parse;

    fn cond(text: &str) -> String {
        let s = parse("t", &format!("filter {{ if {text} {{ }} }}"), false).unwrap();
        let Statement::Branch(b) = &s[0].body[0] else { panic!() };
        condition(&b.arms[0].condition).unwrap()
    }

    #[test]
    fn conditions_compile_as_infallible_predicates() {
        for text in [
            r#"[type] == "apache""#,
            r#"[status] >= 500 and [status] < 600"#,
            r#"[@metadata][time] < "16:30""#,
            r#"[path] =~ "access" or [path] !~ /^\/var\/log\/.*\.gz$/"#,
            r#""_grokparsefailure" not in [tags]"#,
            r#"[foo] in [foobar] and [foo] in "foo" and "hello" in [greeting]"#,
            r#"[foo] in ["hello", "world", "foo"] and !("foo" in ["hello", "world"])"#,
            r#"[a] xor [b] nand ![c][d]"#,
            r#"[list][0] == 1.5"#,
        ] {
            let c = cond(text);
            check(&format!("if {c} {{ .matched = true }}")).unwrap_or_else(|e| panic!("{text} → {c}:\n{e}"));
        }
        assert_eq!(cond("[a][b]"), "(.a.b != null && .a.b != false)");
        assert_eq!(cond(r#""x" in [tags]"#), r#"includes(array(.tags) ?? [], "x")"#);
    }

    #[test]
    fn literals() {
        assert_eq!(path(&["@timestamp".into()]), ".\"@timestamp\"");
        assert_eq!(string("a\"{{b}}\\{x}"), r#""a\"\{{b\}}\\{x}""#);
        assert!(regex("(?<=a)b").is_err());
        assert_eq!(regex("it's").unwrap(), r"r'it\'s'");
    }
}
