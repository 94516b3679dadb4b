//! Joda-Time / java.time patterns (`dd/MMM/yyyy:HH:mm:ss Z`, `YYYY.MM.dd`) to the
//! strftime formats of pipe templates and VRL's `parse_timestamp` /
//! `format_timestamp`.

/// What the format is for: parsing accepts one or two digits for a field either
/// way, formatting needs the unpadded specifiers for one-letter fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Parse,
    Format,
}

/// The strftime format for `pattern`, or why there is none.
pub fn to_strftime(pattern: &str, mode: Mode) -> Result<String, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            // Quoted text; `''` is a quote.
            if chars.get(i + 1) == Some(&'\'') {
                out.push('\'');
                i += 2;
                continue;
            }
            let mut j = i + 1;
            while j < chars.len() && chars[j] != '\'' {
                literal(&mut out, chars[j]);
                j += 1;
            }
            i = j + 1;
            continue;
        }
        if !c.is_ascii_alphabetic() {
            literal(&mut out, c);
            i += 1;
            continue;
        }
        let mut n = 1;
        while chars.get(i + n) == Some(&c) {
            n += 1;
        }
        let one = n == 1 && mode == Mode::Format;
        let spec = match (c, n) {
            ('y' | 'Y' | 'u', 2) => "%y",
            ('y' | 'Y' | 'u', _) => "%Y",
            ('x', _) => "%G",
            ('M', 1 | 2) if one => "%-m",
            ('M', 1 | 2) => "%m",
            ('M', 3) => "%b",
            ('M', _) => "%B",
            ('d', _) if one => "%-d",
            ('d', _) => "%d",
            ('D', _) => "%j",
            ('H', _) if one => "%-H",
            ('H', _) => "%H",
            ('k', _) => "%H",
            ('h', _) if one => "%-I",
            ('h', _) => "%I",
            ('K', _) => "%I",
            ('m', _) if one => "%-M",
            ('m', _) => "%M",
            ('s', _) if one => "%-S",
            ('s', _) => "%S",
            ('S', 3) => "%3f",
            ('S', 6) => "%6f",
            ('S', 9) => "%9f",
            ('S', _) if mode == Mode::Parse => "%f",
            ('a', _) => "%p",
            ('E', 1..=3) => "%a",
            ('E', _) => "%A",
            ('e', _) => "%u",
            ('w', _) => "%V",
            ('Z', 1) => "%z",
            ('Z', 2) | ('X', _) => "%:z",
            ('z', _) if mode == Mode::Format => "%Z",
            _ => {
                return Err(format!(
                    "the date pattern letter `{}` in `{pattern}` has no strftime equivalent",
                    chars[i..i + n].iter().collect::<String>()
                ));
            }
        };
        out.push_str(spec);
        i += n;
    }
    Ok(out)
}

/// True when the pattern has a year (else the date filter supplies this year).
pub fn has_year(pattern: &str) -> bool {
    let mut quoted = false;
    for c in pattern.chars() {
        match c {
            '\'' => quoted = !quoted,
            'y' | 'Y' | 'u' | 'x' if !quoted => return true,
            _ => {}
        }
    }
    false
}

/// True when the pattern has a UTC offset.
pub fn has_offset(pattern: &str) -> bool {
    let mut quoted = false;
    for c in pattern.chars() {
        match c {
            '\'' => quoted = !quoted,
            'Z' | 'X' if !quoted => return true,
            _ => {}
        }
    }
    false
}

fn literal(out: &mut String, c: char) {
    if c == '%' {
        out.push_str("%%");
    } else {
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_patterns() {
        assert_eq!(
            to_strftime("dd/MMM/yyyy:HH:mm:ss Z", Mode::Parse).unwrap(),
            "%d/%b/%Y:%H:%M:%S %z"
        );
        assert_eq!(to_strftime("YYYY.MM.dd", Mode::Format).unwrap(), "%Y.%m.%d");
        assert_eq!(to_strftime("MMM  d HH:mm:ss", Mode::Parse).unwrap(), "%b  %d %H:%M:%S");
        assert_eq!(
            to_strftime("yyyy-MM-dd'T'HH:mm:ss.SSSZZ", Mode::Parse).unwrap(),
            "%Y-%m-%dT%H:%M:%S.%3f%:z"
        );
        assert_eq!(
            to_strftime("dd/MMM/YYYY:H:m:s Z", Mode::Format).unwrap(),
            "%d/%b/%Y:%-H:%-M:%-S %z"
        );
        assert!(to_strftime("yyyy ZZZ", Mode::Parse).is_err());
        assert!(!has_year("MMM dd HH:mm:ss"));
        assert!(has_year("'at' yyyy"));
        assert!(has_offset("HH:mm Z"));
    }
}
