//! The syntax tree of a Logstash pipeline config: sections of plugins and
//! conditionals, plugin options and their values, and the expressions of `if`.
//! Every node that a message can be about carries its [`Pos`].

use std::fmt;
use std::sync::Arc;

/// Where a node starts: the file (as given on the command line), 1-based line and
/// column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pos {
    pub file: Arc<str>,
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for Pos {
    /// `file:line`, the form TODO lines use.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// The three section kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionKind {
    Input,
    Filter,
    Output,
}

impl SectionKind {
    /// The keyword naming it.
    pub fn name(self) -> &'static str {
        match self {
            SectionKind::Input => "input",
            SectionKind::Filter => "filter",
            SectionKind::Output => "output",
        }
    }
}

/// `input { … }`, `filter { … }` or `output { … }`.
#[derive(Debug, Clone)]
pub struct Section {
    pub kind: SectionKind,
    pub body: Vec<Statement>,
    pub pos: Pos,
}

/// What a section or a branch holds.
#[derive(Debug, Clone)]
pub enum Statement {
    Plugin(Plugin),
    Branch(Branch),
}

/// `name { option => value … }`.
#[derive(Debug, Clone)]
pub struct Plugin {
    pub name: String,
    pub options: Vec<Attr>,
    pub pos: Pos,
}

/// `name => value`.
#[derive(Debug, Clone)]
pub struct Attr {
    pub name: String,
    pub value: Value,
    pub pos: Pos,
}

/// An option's value.
#[derive(Debug, Clone)]
pub enum Value {
    /// A quoted string, its escapes already processed (or kept, as Logstash does by
    /// default).
    Str(String),
    /// A number as written (`5044`, `-1`, `0.5`).
    Number(String),
    /// An unquoted word (`beginning`, `true`, `localhost`).
    Bare(String),
    Array(Vec<Value>),
    /// `{ key => value … }`, keys as written without their quotes.
    Hash(Vec<(String, Value)>),
    /// A plugin as a value: `codec => multiline { … }`.
    Plugin(Plugin),
}

/// `if … {} else if … {} else {}`.
#[derive(Debug, Clone)]
pub struct Branch {
    /// The `if` and each `else if`, in order.
    pub arms: Vec<Arm>,
    /// The `else` body, if any.
    pub otherwise: Option<Vec<Statement>>,
}

/// One condition and its body.
#[derive(Debug, Clone)]
pub struct Arm {
    pub condition: Expr,
    /// The condition as written, for comments.
    pub text: String,
    pub body: Vec<Statement>,
    pub pos: Pos,
}

/// A condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Xor(Box<Expr>, Box<Expr>),
    Nand(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Compare(Rvalue, CmpOp, Rvalue),
    /// `left =~ pattern` (or `!~` when `negate`).
    Regex {
        left: Rvalue,
        pattern: String,
        negate: bool,
    },
    /// `item in list` (or `not in` when `negate`).
    In {
        item: Rvalue,
        list: Rvalue,
        negate: bool,
    },
    /// A value alone: true unless missing, `null` or `false`.
    Truthy(Rvalue),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

impl CmpOp {
    /// The operator as Logstash and VRL both write it.
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Gt => ">",
            CmpOp::Le => "<=",
            CmpOp::Ge => ">=",
        }
    }
}

/// An operand of a condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Rvalue {
    Str(String),
    Number(String),
    /// `[a][b]`: the path's segments.
    Field(Vec<String>),
    Array(Vec<Rvalue>),
    /// `/re/`, without the slashes.
    Regex(String),
    /// `name(args…)`: parsed, never evaluated (Logstash does not either).
    Method(String, Vec<Rvalue>),
    /// An unquoted word where Logstash's grammar wants a string (`[type] == apache`
    /// in Elastic's own docs); taken as that string.
    Bare(String),
}

impl Value {
    /// The value as one string: a string, a number or a bare word.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::Number(s) | Value::Bare(s) => Some(s),
            Value::Array(items) if items.len() == 1 => items[0].as_str(),
            _ => None,
        }
    }

    /// The value as a list of strings: an array of them, or one string.
    pub fn as_list(&self) -> Option<Vec<&str>> {
        match self {
            Value::Array(items) => items.iter().map(Value::as_str).collect(),
            other => other.as_str().map(|s| vec![s]),
        }
    }

    /// The value as key/value pairs: a hash, or an array of alternating keys and
    /// values (Logstash's older `add_field => ["a", "b"]` form).
    pub fn as_pairs(&self) -> Option<Vec<(String, Value)>> {
        match self {
            Value::Hash(entries) => Some(entries.clone()),
            Value::Array(items) if items.len() % 2 == 0 => items
                .chunks(2)
                .map(|kv| kv[0].as_str().map(|k| (k.to_string(), kv[1].clone())))
                .collect(),
            _ => None,
        }
    }

    /// `true`/`false`, bare or quoted.
    pub fn as_bool(&self) -> Option<bool> {
        match self.as_str()? {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        }
    }

    /// A whole number, bare or quoted.
    pub fn as_int(&self) -> Option<i64> {
        self.as_str()?.trim().parse().ok()
    }

    /// A number, bare or quoted.
    pub fn as_float(&self) -> Option<f64> {
        self.as_str()?.trim().parse().ok()
    }
}

impl Plugin {
    /// The value of option `name` (the last one when repeated: Logstash merges
    /// repeated hash and array options, which [`Plugin::merged`] does).
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.options.iter().rev().find(|a| a.name == name).map(|a| &a.value)
    }

    /// Option `name` with repeats merged as Logstash does: hashes into one hash,
    /// arrays into one array.
    pub fn merged(&self, name: &str) -> Option<Value> {
        let mut found: Option<Value> = None;
        for a in self.options.iter().filter(|a| a.name == name) {
            found = Some(match (found, &a.value) {
                (None, v) => v.clone(),
                (Some(Value::Hash(mut h)), Value::Hash(more)) => {
                    h.extend(more.iter().cloned());
                    Value::Hash(h)
                }
                (Some(Value::Array(mut items)), Value::Array(more)) => {
                    items.extend(more.iter().cloned());
                    Value::Array(items)
                }
                (Some(Value::Array(mut items)), v) => {
                    items.push(v.clone());
                    Value::Array(items)
                }
                (Some(first), v) => Value::Array(vec![first, v.clone()]),
            });
        }
        found
    }

    /// Where option `name` is written, else where the plugin is.
    pub fn pos_of(&self, name: &str) -> &Pos {
        self.options
            .iter()
            .find(|a| a.name == name)
            .map_or(&self.pos, |a| &a.pos)
    }
}
