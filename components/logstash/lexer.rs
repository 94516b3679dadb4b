//! The scanner under the parser: a cursor over one file's characters that knows its
//! line and column, skips whitespace and `#` comments, and reads the grammar's
//! tokens (quoted strings of both kinds, numbers, names, bare words, `/regex/`,
//! field selectors) when the parser asks for one. Logstash's grammar decides what a
//! character means from where it stands (`[` opens an array in an option, a field
//! reference in a condition), so the parser drives and the scanner reads.

use super::ast::Pos;
use std::sync::Arc;

/// A syntax error, naming the file, line and column.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[error("{file}:{line}:{column}: {message}")]
pub struct ParseError {
    pub file: Arc<str>,
    pub line: u32,
    pub column: u32,
    pub message: String,
}

/// A position in the text with its line and column.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    index: usize,
    line: u32,
    column: u32,
}

/// The cursor.
pub struct Scanner {
    file: Arc<str>,
    chars: Vec<char>,
    at: Mark,
    /// Process `\n`, `\t`, `\"`, … in quoted strings (Logstash's
    /// `config.support_escapes`); off by default, as in Logstash, which keeps the
    /// backslashes.
    escapes: bool,
}

impl Scanner {
    pub fn new(file: &str, text: &str, escapes: bool) -> Self {
        Scanner {
            file: Arc::from(file),
            chars: text.chars().collect(),
            at: Mark {
                index: 0,
                line: 1,
                column: 1,
            },
            escapes,
        }
    }

    /// Where the cursor is.
    pub fn mark(&self) -> Mark {
        self.at
    }

    /// Moves back to `mark`.
    pub fn reset(&mut self, mark: Mark) {
        self.at = mark;
    }

    /// The position of `mark`.
    pub fn pos_at(&self, mark: Mark) -> Pos {
        Pos {
            file: self.file.clone(),
            line: mark.line,
            column: mark.column,
        }
    }

    /// The position of the cursor.
    pub fn pos(&self) -> Pos {
        self.pos_at(self.at)
    }

    /// The text between `from` and the cursor.
    pub fn text_since(&self, from: Mark) -> String {
        self.chars[from.index..self.at.index].iter().collect()
    }

    /// An error at the cursor.
    pub fn error(&self, message: impl Into<String>) -> ParseError {
        self.error_at(self.at, message)
    }

    /// An error at `mark`.
    pub fn error_at(&self, mark: Mark, message: impl Into<String>) -> ParseError {
        ParseError {
            file: self.file.clone(),
            line: mark.line,
            column: mark.column,
            message: message.into(),
        }
    }

    /// The character at the cursor.
    pub fn peek(&self) -> Option<char> {
        self.chars.get(self.at.index).copied()
    }

    /// The character `n` places after the cursor.
    pub fn peek_at(&self, n: usize) -> Option<char> {
        self.chars.get(self.at.index + n).copied()
    }

    /// True at the end of the text.
    pub fn at_end(&self) -> bool {
        self.at.index >= self.chars.len()
    }

    /// Takes one character.
    pub fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at.index += 1;
        if c == '\n' {
            self.at.line += 1;
            self.at.column = 1;
        } else {
            self.at.column += 1;
        }
        Some(c)
    }

    /// True when the text at the cursor starts with `s`.
    pub fn looking_at(&self, s: &str) -> bool {
        s.chars().enumerate().all(|(i, c)| self.peek_at(i) == Some(c))
    }

    /// True when the keyword `word` is at the cursor, not followed by a name
    /// character.
    pub fn looking_at_word(&self, word: &str) -> bool {
        self.looking_at(word) && !self.peek_at(word.chars().count()).is_some_and(is_name_char)
    }

    /// Takes `s` if the text starts with it.
    pub fn eat(&mut self, s: &str) -> bool {
        if self.looking_at(s) {
            for _ in s.chars() {
                self.bump();
            }
            true
        } else {
            false
        }
    }

    /// Takes `s` or fails saying what was expected `context`.
    pub fn expect(&mut self, s: &str, context: &str) -> Result<(), ParseError> {
        if self.eat(s) {
            Ok(())
        } else {
            Err(self.error(format!("expected `{s}` {context}, found {}", self.describe())))
        }
    }

    /// What is at the cursor, for messages.
    pub fn describe(&self) -> String {
        match self.peek() {
            None => "the end of the file".to_string(),
            Some('\n') => "the end of the line".to_string(),
            Some(c) => format!("`{c}`"),
        }
    }

    /// Skips whitespace and comments; true if it skipped anything.
    pub fn skip_space(&mut self) -> bool {
        let start = self.at.index;
        loop {
            match self.peek() {
                Some(c) if c.is_whitespace() => {
                    self.bump();
                }
                Some('#') => {
                    while self.peek().is_some_and(|c| c != '\n') {
                        self.bump();
                    }
                }
                _ => break,
            }
        }
        self.at.index > start
    }

    /// A name: `[A-Za-z0-9_-]+` (plugin and option names, hash keys).
    pub fn name(&mut self) -> Option<String> {
        let mut s = String::new();
        while let Some(c) = self.peek().filter(|c| is_name_char(*c)) {
            s.push(c);
            self.bump();
        }
        (!s.is_empty()).then_some(s)
    }

    /// A bare word: `[A-Za-z_][A-Za-z0-9_]*`.
    pub fn bareword(&mut self) -> Option<String> {
        if !self.peek().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') {
            return None;
        }
        let mut s = String::new();
        while let Some(c) = self.peek().filter(|c| c.is_ascii_alphanumeric() || *c == '_') {
            s.push(c);
            self.bump();
        }
        Some(s)
    }

    /// A number: `-?[0-9]+(\.[0-9]*)?`, as written.
    pub fn number(&mut self) -> Option<String> {
        let start = self.mark();
        let mut s = String::new();
        if self.peek() == Some('-') {
            s.push('-');
            self.bump();
        }
        if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.reset(start);
            return None;
        }
        while let Some(c) = self.peek().filter(char::is_ascii_digit) {
            s.push(c);
            self.bump();
        }
        if self.peek() == Some('.') && !self.peek_at(1).is_some_and(is_name_start) {
            s.push('.');
            self.bump();
            while let Some(c) = self.peek().filter(char::is_ascii_digit) {
                s.push(c);
                self.bump();
            }
        }
        // `5044abc` is no number.
        if self.peek().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') {
            self.reset(start);
            return None;
        }
        Some(s)
    }

    /// A quoted string at the cursor (`"…"` or `'…'`). As in Logstash's grammar a
    /// backslash before the quote character does not end the string; the backslash
    /// stays unless escapes are on.
    pub fn string(&mut self) -> Result<Option<String>, ParseError> {
        let quote = match self.peek() {
            Some(q @ ('"' | '\'')) => q,
            _ => return Ok(None),
        };
        let start = self.mark();
        self.bump();
        let mut raw = String::new();
        loop {
            match self.bump() {
                None => return Err(self.error_at(start, "this string is never closed")),
                Some('\\') if self.peek() == Some(quote) => {
                    self.bump();
                    raw.push('\\');
                    raw.push(quote);
                }
                Some(c) if c == quote => break,
                Some(c) => raw.push(c),
            }
        }
        Ok(Some(if self.escapes { unescape(&raw) } else { raw }))
    }

    /// A `/regex/` at the cursor, without its slashes (`\/` stands for `/`).
    pub fn regexp(&mut self) -> Result<Option<String>, ParseError> {
        if self.peek() != Some('/') {
            return Ok(None);
        }
        let start = self.mark();
        self.bump();
        let mut s = String::new();
        loop {
            match self.bump() {
                None | Some('\n') => {
                    return Err(self.error_at(start, "this regular expression is never closed with `/`"));
                }
                Some('\\') if self.peek() == Some('/') => {
                    self.bump();
                    s.push('/');
                }
                Some('/') => break,
                Some(c) => s.push(c),
            }
        }
        Ok(Some(s))
    }

    /// A field reference `[a][b]…` at the cursor: its segments.
    pub fn selector(&mut self) -> Result<Option<Vec<String>>, ParseError> {
        let start = self.mark();
        let mut segments = Vec::new();
        while self.peek() == Some('[') {
            let open = self.mark();
            self.bump();
            let mut s = String::new();
            while let Some(c) = self.peek().filter(|c| !matches!(c, '[' | ']' | ',' | '\n')) {
                s.push(c);
                self.bump();
            }
            if s.is_empty() || self.peek() != Some(']') {
                if segments.is_empty() {
                    self.reset(start);
                    return Ok(None);
                }
                return Err(self.error_at(open, "a field reference `[name]` is not closed with `]`"));
            }
            self.bump();
            segments.push(s);
        }
        Ok((!segments.is_empty()).then_some(segments))
    }
}

/// A character of a name.
pub fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

/// Logstash's `config.support_escapes`: `\n`, `\r`, `\t`, `\\`, `\"`, `\'`.
fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('0') => out.push('\0'),
            Some(c @ ('\\' | '"' | '\'')) => out.push(c),
            Some(c) => {
                out.push('\\');
                out.push(c);
            }
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_keep_backslashes_unless_escapes_are_on() {
        let mut s = Scanner::new("t", r#""a \"b\" \n" 'it\'s'"#, false);
        assert_eq!(s.string().unwrap().unwrap(), r#"a \"b\" \n"#);
        s.skip_space();
        assert_eq!(s.string().unwrap().unwrap(), r"it\'s");
        let mut s = Scanner::new("t", r#""a \"b\" \n" 'it\'s'"#, true);
        assert_eq!(s.string().unwrap().unwrap(), "a \"b\" \n");
        s.skip_space();
        assert_eq!(s.string().unwrap().unwrap(), "it's");
    }

    #[test]
    fn tracks_lines_and_columns_across_comments() {
        let mut s = Scanner::new("f.conf", "# a comment\n  \"x", false);
        s.skip_space();
        let e = s.string().unwrap_err();
        assert_eq!(e.to_string(), "f.conf:2:3: this string is never closed");
    }

    #[test]
    fn numbers_selectors_and_regexps() {
        let mut s = Scanner::new("t", "-12.5 [a][b c] /^5\\d\\/x/", false);
        assert_eq!(s.number().unwrap(), "-12.5");
        s.skip_space();
        assert_eq!(s.selector().unwrap().unwrap(), vec!["a", "b c"]);
        s.skip_space();
        assert_eq!(s.regexp().unwrap().unwrap(), "^5\\d/x");
    }
}
