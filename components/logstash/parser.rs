//! Logstash's config grammar (its `lscl` treetop grammar) to the syntax tree:
//! sections, plugins with their options, values (strings of both quote kinds,
//! numbers, bare words, arrays, hashes with or without commas, plugins as values),
//! comments, and `if / else if / else` with their expressions (`==`, `!=`, `<`, `>`,
//! `<=`, `>=`, `=~`, `!~`, `in`, `not in`, `!`, `and`, `or`, `xor`, `nand`,
//! parentheses, field references, a field alone for truthiness). Errors name the
//! file, line and column.

use super::ast::{Arm, Attr, Branch, CmpOp, Expr, Plugin, Rvalue, Section, SectionKind, Statement, Value};
use super::lexer::{ParseError, Scanner};

/// Parses one file's text; `file` names it in positions and errors.
pub fn parse(file: &str, text: &str, escapes: bool) -> Result<Vec<Section>, ParseError> {
    let mut p = Parser {
        s: Scanner::new(file, text, escapes),
    };
    p.config()
}

struct Parser {
    s: Scanner,
}

type R<T> = Result<T, ParseError>;

impl Parser {
    fn config(&mut self) -> R<Vec<Section>> {
        let mut sections = Vec::new();
        loop {
            self.s.skip_space();
            if self.s.at_end() {
                return Ok(sections);
            }
            let mark = self.s.mark();
            let kind = match self.s.name().as_deref() {
                Some("input") => SectionKind::Input,
                Some("filter") => SectionKind::Filter,
                Some("output") => SectionKind::Output,
                Some(other) => {
                    return Err(self.s.error_at(
                        mark,
                        format!("expected a section `input`, `filter` or `output`, found `{other}`"),
                    ));
                }
                None => {
                    return Err(self.s.error(format!(
                        "expected a section `input`, `filter` or `output`, found {}",
                        self.s.describe()
                    )));
                }
            };
            self.s.skip_space();
            self.s.expect("{", &format!("after `{}`", kind.name()))?;
            let body = self.block(&format!("`{}` section", kind.name()))?;
            sections.push(Section {
                kind,
                body,
                pos: self.s.pos_at(mark),
            });
        }
    }

    /// Plugins and branches up to and including the closing `}`.
    fn block(&mut self, what: &str) -> R<Vec<Statement>> {
        let mut body = Vec::new();
        loop {
            self.s.skip_space();
            if self.s.eat("}") {
                return Ok(body);
            }
            if self.s.at_end() {
                return Err(self.s.error(format!("the {what} is never closed with `}}`")));
            }
            if self.s.looking_at_word("if") {
                body.push(Statement::Branch(self.branch()?));
            } else {
                body.push(Statement::Plugin(self.plugin()?));
            }
        }
    }

    fn plugin(&mut self) -> R<Plugin> {
        let mark = self.s.mark();
        let name = match self.s.string()? {
            Some(s) => s,
            None => self.s.name().ok_or_else(|| {
                self.s
                    .error(format!("expected a plugin name or `}}`, found {}", self.s.describe()))
            })?,
        };
        self.s.skip_space();
        self.s.expect("{", &format!("after the plugin name `{name}`"))?;
        let mut options = Vec::new();
        loop {
            self.s.skip_space();
            if self.s.eat("}") {
                break;
            }
            if self.s.at_end() {
                return Err(self
                    .s
                    .error_at(mark, format!("the plugin `{name}` is never closed with `}}`")));
            }
            let at = self.s.mark();
            let key = match self.s.string()? {
                Some(s) => s,
                None => self.s.name().ok_or_else(|| {
                    self.s.error(format!(
                        "expected an option name or `}}` in plugin `{name}`, found {}",
                        self.s.describe()
                    ))
                })?,
            };
            self.s.skip_space();
            self.s.expect("=>", &format!("after the option name `{key}`"))?;
            self.s.skip_space();
            let value = self.value()?;
            options.push(Attr {
                name: key,
                value,
                pos: self.s.pos_at(at),
            });
        }
        Ok(Plugin {
            name,
            options,
            pos: self.s.pos_at(mark),
        })
    }

    fn value(&mut self) -> R<Value> {
        if let Some(s) = self.s.string()? {
            return Ok(Value::Str(s));
        }
        if let Some(n) = self.s.number() {
            return Ok(Value::Number(n));
        }
        match self.s.peek() {
            Some('[') => {
                self.s.bump();
                let mut items = Vec::new();
                loop {
                    self.s.skip_space();
                    if self.s.eat("]") {
                        return Ok(Value::Array(items));
                    }
                    if !items.is_empty() {
                        self.s.expect(",", "between array items")?;
                        self.s.skip_space();
                        if self.s.eat("]") {
                            return Ok(Value::Array(items));
                        }
                    }
                    items.push(self.value()?);
                }
            }
            Some('{') => {
                let open = self.s.mark();
                self.s.bump();
                let mut entries: Vec<(String, Value)> = Vec::new();
                loop {
                    self.s.skip_space();
                    if self.s.eat("}") {
                        return Ok(Value::Hash(entries));
                    }
                    if self.s.at_end() {
                        return Err(self.s.error_at(open, "this hash is never closed with `}`"));
                    }
                    if !entries.is_empty() && self.s.eat(",") {
                        continue;
                    }
                    let key = match self.s.string()? {
                        Some(s) => s,
                        None => match self.s.number() {
                            Some(n) => n,
                            None => self.s.name().ok_or_else(|| {
                                self.s
                                    .error(format!("expected a hash key or `}}`, found {}", self.s.describe()))
                            })?,
                        },
                    };
                    self.s.skip_space();
                    self.s.expect("=>", &format!("after the hash key `{key}`"))?;
                    self.s.skip_space();
                    let value = self.value()?;
                    entries.push((key, value));
                }
            }
            Some(c) if c.is_ascii_alphanumeric() || c == '_' => {
                // A bare word, or a plugin used as a value (`codec => json { … }`).
                let mark = self.s.mark();
                let word = self.s.name().unwrap_or_default();
                let after = self.s.mark();
                self.s.skip_space();
                if self.s.peek() == Some('{') {
                    self.s.reset(mark);
                    return Ok(Value::Plugin(self.plugin()?));
                }
                self.s.reset(after);
                Ok(Value::Bare(word))
            }
            _ => Err(self.s.error(format!(
                "expected a value (a string, number, bare word, array, hash or plugin), found {}",
                self.s.describe()
            ))),
        }
    }

    fn branch(&mut self) -> R<Branch> {
        let mut arms = vec![self.arm()?];
        let mut otherwise = None;
        loop {
            let before = self.s.mark();
            self.s.skip_space();
            if !self.s.looking_at_word("else") {
                self.s.reset(before);
                break;
            }
            self.s.eat("else");
            self.s.skip_space();
            if self.s.looking_at_word("if") {
                arms.push(self.arm()?);
            } else {
                self.s.expect("{", "after `else`")?;
                otherwise = Some(self.block("`else` block")?);
                break;
            }
        }
        Ok(Branch { arms, otherwise })
    }

    fn arm(&mut self) -> R<Arm> {
        let mark = self.s.mark();
        self.s.eat("if");
        self.s.skip_space();
        let start = self.s.mark();
        let condition = self.condition()?;
        let text = self.s.text_since(start).trim().to_string();
        self.s.skip_space();
        self.s.expect("{", "after the condition")?;
        let body = self.block("`if` block")?;
        Ok(Arm {
            condition,
            text,
            body,
            pos: self.s.pos_at(mark),
        })
    }

    /// `expression (op expression)*` with `and`/`nand` binding tighter than
    /// `or`/`xor`, all left-associative.
    fn condition(&mut self) -> R<Expr> {
        let mut left = self.conjunction()?;
        loop {
            let before = self.s.mark();
            self.s.skip_space();
            if self.s.looking_at_word("or") {
                self.s.eat("or");
                self.s.skip_space();
                left = Expr::Or(Box::new(left), Box::new(self.conjunction()?));
            } else if self.s.looking_at_word("xor") {
                self.s.eat("xor");
                self.s.skip_space();
                left = Expr::Xor(Box::new(left), Box::new(self.conjunction()?));
            } else {
                self.s.reset(before);
                return Ok(left);
            }
        }
    }

    fn conjunction(&mut self) -> R<Expr> {
        let mut left = self.expression()?;
        loop {
            let before = self.s.mark();
            self.s.skip_space();
            if self.s.looking_at_word("and") {
                self.s.eat("and");
                self.s.skip_space();
                left = Expr::And(Box::new(left), Box::new(self.expression()?));
            } else if self.s.looking_at_word("nand") {
                self.s.eat("nand");
                self.s.skip_space();
                left = Expr::Nand(Box::new(left), Box::new(self.expression()?));
            } else {
                self.s.reset(before);
                return Ok(left);
            }
        }
    }

    fn expression(&mut self) -> R<Expr> {
        if self.s.eat("(") {
            self.s.skip_space();
            let inner = self.condition()?;
            self.s.skip_space();
            self.s.expect(")", "to close the parenthesis")?;
            return Ok(inner);
        }
        if self.s.peek() == Some('!') && self.s.peek_at(1) != Some('=') && self.s.peek_at(1) != Some('~') {
            self.s.bump();
            self.s.skip_space();
            if self.s.eat("(") {
                self.s.skip_space();
                let inner = self.condition()?;
                self.s.skip_space();
                self.s.expect(")", "to close the parenthesis")?;
                return Ok(Expr::Not(Box::new(inner)));
            }
            return match self.s.selector()? {
                Some(path) => Ok(Expr::Not(Box::new(Expr::Truthy(Rvalue::Field(path))))),
                None => Err(self.s.error(format!(
                    "expected `(` or a field reference `[name]` after `!`, found {}",
                    self.s.describe()
                ))),
            };
        }
        let left = self.rvalue()?;
        let before = self.s.mark();
        self.s.skip_space();
        if self.s.looking_at_word("in") {
            self.s.eat("in");
            self.s.skip_space();
            let list = self.rvalue()?;
            return Ok(Expr::In {
                item: left,
                list,
                negate: false,
            });
        }
        if self.s.looking_at_word("not") {
            let not = self.s.mark();
            self.s.eat("not");
            self.s.skip_space();
            if self.s.looking_at_word("in") {
                self.s.eat("in");
                self.s.skip_space();
                let list = self.rvalue()?;
                return Ok(Expr::In {
                    item: left,
                    list,
                    negate: true,
                });
            }
            return Err(self.s.error_at(not, "expected `in` after `not`"));
        }
        for (op, negate) in [("=~", false), ("!~", true)] {
            if self.s.eat(op) {
                self.s.skip_space();
                let pattern = match self.s.regexp()? {
                    Some(re) => re,
                    None => self.s.string()?.ok_or_else(|| {
                        self.s.error(format!(
                            "expected a `/regex/` or a string after `{op}`, found {}",
                            self.s.describe()
                        ))
                    })?,
                };
                return Ok(Expr::Regex { left, pattern, negate });
            }
        }
        for (text, op) in [
            ("==", CmpOp::Eq),
            ("!=", CmpOp::Ne),
            ("<=", CmpOp::Le),
            (">=", CmpOp::Ge),
            ("<", CmpOp::Lt),
            (">", CmpOp::Gt),
        ] {
            if self.s.eat(text) {
                self.s.skip_space();
                let right = self.rvalue()?;
                return Ok(Expr::Compare(left, op, right));
            }
        }
        self.s.reset(before);
        Ok(Expr::Truthy(left))
    }

    fn rvalue(&mut self) -> R<Rvalue> {
        if let Some(s) = self.s.string()? {
            return Ok(Rvalue::Str(s));
        }
        if let Some(n) = self.s.number() {
            return Ok(Rvalue::Number(n));
        }
        if let Some(re) = self.s.regexp()? {
            return Ok(Rvalue::Regex(re));
        }
        if self.s.peek() == Some('[') {
            // `["a", "b"]` is a list; `[a][b]` a field reference.
            let mark = self.s.mark();
            self.s.bump();
            self.s.skip_space();
            let list = matches!(self.s.peek(), Some('"' | '\'' | ']') | Some('0'..='9'))
                || (self.s.peek() == Some('-') && self.s.peek_at(1).is_some_and(|c| c.is_ascii_digit()));
            self.s.reset(mark);
            if !list && let Some(path) = self.s.selector()? {
                return Ok(Rvalue::Field(path));
            }
            self.s.bump();
            let mut items = Vec::new();
            loop {
                self.s.skip_space();
                if self.s.eat("]") {
                    return Ok(Rvalue::Array(items));
                }
                if !items.is_empty() {
                    self.s.expect(",", "between list items")?;
                    self.s.skip_space();
                }
                items.push(self.rvalue()?);
            }
        }
        let mark = self.s.mark();
        if let Some(word) = self.s.bareword() {
            let after = self.s.mark();
            self.s.skip_space();
            if self.s.eat("(") {
                let mut args = Vec::new();
                loop {
                    self.s.skip_space();
                    if self.s.eat(")") {
                        return Ok(Rvalue::Method(word, args));
                    }
                    if !args.is_empty() {
                        self.s.expect(",", "between arguments")?;
                        self.s.skip_space();
                    }
                    args.push(self.rvalue()?);
                }
            }
            self.s.reset(after);
            if ["and", "or", "xor", "nand", "in", "not"].contains(&word.as_str()) {
                return Err(self.s.error_at(mark, format!("expected a value before `{word}`")));
            }
            return Ok(Rvalue::Bare(word));
        }
        Err(self.s.error(format!(
            "expected a value in the condition (a string, number, field reference `[name]`, list or `/regex/`), found {}",
            self.s.describe()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Vec<Section> {
        parse("t.conf", text, false).unwrap()
    }

    fn err(text: &str) -> String {
        parse("t.conf", text, false).unwrap_err().to_string()
    }

    #[test]
    fn plugins_options_and_every_value_kind() {
        let s = one(r#"# comment
input {
  file { path => ["/a", '/b'] start_position => beginning  # trailing comment
         codec => multiline { pattern => "^\s" what => previous } }
}
filter { mutate { add_field => { "a" => "b" c => 1, "d" => 2.5 } } }
output { stdout {} }"#);
        assert_eq!(s.len(), 3);
        let Statement::Plugin(file) = &s[0].body[0] else {
            panic!()
        };
        assert_eq!(file.name, "file");
        assert_eq!(file.pos.line, 3);
        assert_eq!(file.get("path").unwrap().as_list().unwrap(), vec!["/a", "/b"]);
        assert_eq!(file.get("start_position").unwrap().as_str(), Some("beginning"));
        let Some(Value::Plugin(codec)) = file.get("codec") else {
            panic!()
        };
        assert_eq!(codec.get("pattern").unwrap().as_str(), Some(r"^\s"));
        assert_eq!(codec.pos.line, 4);
        let Statement::Plugin(mutate) = &s[1].body[0] else {
            panic!()
        };
        let pairs = mutate.get("add_field").unwrap().as_pairs().unwrap();
        let keys: Vec<_> = pairs.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, vec!["a", "c", "d"]);
    }

    #[test]
    fn conditionals_with_every_operator() {
        let s = one(r#"filter {
  if [type] == "apache" and ([status] >= 500 or [status] < 100) {
    drop {}
  } else if [path] =~ /access\/x/ and [msg] !~ "^x" {
    drop {}
  } else if "a" in [tags] or [x] not in ["b", "c"] xor ![y] nand [a][b] {
    drop {}
  } else if !("x" in [tags]) and [n] != 1.5 and [m] <= -2 and [o] > 0 {
  } else {
    drop {}
  }
}"#);
        let Statement::Branch(b) = &s[0].body[0] else { panic!() };
        assert_eq!(b.arms.len(), 4);
        assert!(b.otherwise.is_some());
        assert_eq!(
            b.arms[0].text,
            r#"[type] == "apache" and ([status] >= 500 or [status] < 100)"#
        );
        let Expr::And(l, r) = &b.arms[0].condition else {
            panic!()
        };
        assert_eq!(
            **l,
            Expr::Compare(
                Rvalue::Field(vec!["type".into()]),
                CmpOp::Eq,
                Rvalue::Str("apache".into())
            )
        );
        assert!(matches!(**r, Expr::Or(_, _)));
        let Expr::And(l, _) = &b.arms[1].condition else {
            panic!()
        };
        assert_eq!(
            **l,
            Expr::Regex {
                left: Rvalue::Field(vec!["path".into()]),
                pattern: "access/x".into(),
                negate: false
            }
        );
        // or/xor bind looser than nand.
        let Expr::Xor(_, r) = &b.arms[2].condition else {
            panic!("{:?}", b.arms[2].condition)
        };
        assert!(matches!(**r, Expr::Nand(_, _)));
        assert!(matches!(&b.arms[3].condition, Expr::And(_, _)));
    }

    #[test]
    fn errors_name_line_and_column() {
        assert_eq!(
            err("input {\n  stdin {\n    codec => \n  }\n}"),
            "t.conf:4:3: expected a value (a string, number, bare word, array, hash or plugin), found `}`"
        );
        assert_eq!(
            err("inputs { }"),
            "t.conf:1:1: expected a section `input`, `filter` or `output`, found `inputs`"
        );
        assert_eq!(
            err("filter {\n  grok { match = 1 }\n}"),
            "t.conf:2:16: expected `=>` after the option name `match`, found `=`"
        );
        assert_eq!(
            err("filter {\n  if [a] == { }\n}"),
            "t.conf:2:13: expected a value in the condition (a string, number, field reference `[name]`, list or `/regex/`), found `{`"
        );
        assert_eq!(
            err("filter {\n  grok {\n"),
            "t.conf:2:3: the plugin `grok` is never closed with `}`"
        );
        assert_eq!(
            err("output { stdout { } "),
            "t.conf:1:21: the `output` section is never closed with `}`"
        );
    }

    #[test]
    fn bare_words_in_conditions_are_strings() {
        let s = one("output { if [type] == apache { stdout {} } }");
        let Statement::Branch(b) = &s[0].body[0] else { panic!() };
        assert_eq!(
            b.arms[0].condition,
            Expr::Compare(
                Rvalue::Field(vec!["type".into()]),
                CmpOp::Eq,
                Rvalue::Bare("apache".into())
            )
        );
    }
}
