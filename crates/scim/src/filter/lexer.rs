//! The filter tokenizer: turns filter text into tokens that carry their position.
//!
//! Positions are 0-based *character* offsets (what a person counts), never byte offsets; every
//! slice taken here is at a char boundary because only ASCII characters delimit tokens.

use serde_json::Number;

use super::FilterError;

/// What a token is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TokenKind {
    /// An attribute path, operator or keyword: `[A-Za-z$][A-Za-z0-9_:.$-]*`. Keywords are
    /// contextual, so the parser decides what a word means.
    Word,
    /// A JSON string literal, unescaped.
    Str(String),
    /// A JSON number literal.
    Number(Number),
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `[`
    LBracket,
    /// `]`
    RBracket,
    /// `.` after `]` in `emails[type eq "work"].value`.
    Dot,
    /// The end of the input.
    Eof,
}

/// A token, its source text and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token<'a> {
    pub(crate) kind: TokenKind,
    /// The token's source text (empty at the end of input).
    pub(crate) text: &'a str,
    /// 0-based character offset of the token's first character.
    pub(crate) pos: usize,
}

impl Token<'_> {
    /// Whether this is the word `keyword`, ignoring case.
    pub(crate) fn is_keyword(&self, keyword: &str) -> bool {
        self.kind == TokenKind::Word && self.text.eq_ignore_ascii_case(keyword)
    }

    /// How an error message names this token. String and number literals are described, not
    /// quoted: they are attribute values, which may be personal data (see [`crate::ScimError`]).
    pub(crate) fn describe(&self) -> String {
        match self.kind {
            TokenKind::Word => quote(self.text),
            TokenKind::Str(_) => "a string".to_owned(),
            TokenKind::Number(_) => "a number".to_owned(),
            TokenKind::LParen => "\"(\"".to_owned(),
            TokenKind::RParen => "\")\"".to_owned(),
            TokenKind::LBracket => "\"[\"".to_owned(),
            TokenKind::RBracket => "\"]\"".to_owned(),
            TokenKind::Dot => "\".\"".to_owned(),
            TokenKind::Eof => "the end of the input".to_owned(),
        }
    }
}

/// The longest piece of input an error message repeats.
const QUOTE_MAX_CHARS: usize = 32;

/// `text` in double quotes for an error message: at most [`QUOTE_MAX_CHARS`] characters (then
/// `…`), control characters escaped so that a message stays on one line.
pub(crate) fn quote(text: &str) -> String {
    let mut out = String::from("\"");
    for (i, c) in text.chars().enumerate() {
        if i == QUOTE_MAX_CHARS {
            out.push('…');
            break;
        }
        out.extend(c.escape_debug());
    }
    out.push('"');
    out
}

/// Whether `c` may start a word.
fn starts_word(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '$'
}

/// Whether `c` may continue a word: name characters plus the `:` and `.` of URNs and sub-attributes.
fn continues_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ':' | '.' | '$')
}

/// Whitespace between tokens. Only ASCII: other Unicode spaces are rejected as unexpected
/// characters, so that what an admin cannot see cannot change what a filter means.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// A pull tokenizer: the parser asks for one token at a time, so the first error in reading
/// order is the one reported.
pub(crate) struct Lexer<'a> {
    src: &'a str,
    /// Byte offset of the next unread character.
    byte: usize,
    /// Character offset of the next unread character.
    pos: usize,
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(src: &'a str) -> Self {
        Self { src, byte: 0, pos: 0 }
    }

    fn peek_char(&self) -> Option<char> {
        self.src[self.byte..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek_char()?;
        self.byte += c.len_utf8();
        self.pos += 1;
        Some(c)
    }

    /// The next token, or the lexical error at this point of the input.
    pub(crate) fn next_token(&mut self) -> Result<Token<'a>, FilterError> {
        while self.peek_char().is_some_and(is_space) {
            self.bump();
        }
        let (start, pos) = (self.byte, self.pos);
        let Some(c) = self.bump() else {
            return Ok(Token { kind: TokenKind::Eof, text: "", pos });
        };
        let kind = match c {
            '(' => TokenKind::LParen,
            ')' => TokenKind::RParen,
            '[' => TokenKind::LBracket,
            ']' => TokenKind::RBracket,
            '.' => TokenKind::Dot,
            '"' => TokenKind::Str(self.string(pos)?),
            '-' | '0'..='9' => {
                self.eat_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-' | '_'));
                TokenKind::Number(number(&self.src[start..self.byte], pos)?)
            }
            c if starts_word(c) => {
                self.eat_while(continues_word);
                TokenKind::Word
            }
            c => return Err(FilterError::at(pos, format!("unexpected character {}", quote(&c.to_string())))),
        };
        Ok(Token { kind, text: &self.src[start..self.byte], pos })
    }

    fn eat_while(&mut self, keep: impl Fn(char) -> bool) {
        while self.peek_char().is_some_and(&keep) {
            self.bump();
        }
    }

    /// The rest of a string literal whose opening quote was at `open`.
    fn string(&mut self, open: usize) -> Result<String, FilterError> {
        let mut out = String::new();
        loop {
            let at = self.pos;
            match self.bump() {
                None => return Err(FilterError::at(open, "unterminated string starting")),
                Some('"') => return Ok(out),
                Some('\\') => out.push(self.escape(at, open)?),
                Some(c) if u32::from(c) < 0x20 => {
                    return Err(FilterError::at(
                        at,
                        format!("control character U+{:04X} in a string (escape it, e.g. \\t or \\n)", u32::from(c)),
                    ));
                }
                Some(c) => out.push(c),
            }
        }
    }

    /// The character an escape sequence stands for; its backslash was at `at`.
    fn escape(&mut self, at: usize, open: usize) -> Result<char, FilterError> {
        let c = match self.bump() {
            None => return Err(FilterError::at(open, "unterminated string starting")),
            Some('"') => '"',
            Some('\\') => '\\',
            Some('/') => '/',
            Some('b') => '\u{8}',
            Some('f') => '\u{c}',
            Some('n') => '\n',
            Some('r') => '\r',
            Some('t') => '\t',
            Some('u') => return self.unicode_escape(at),
            Some(c) => {
                let shown = format!("\\{c}");
                return Err(FilterError::at(
                    at,
                    format!(
                        "invalid escape {} in a string (valid: \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)",
                        quote(&shown)
                    ),
                ));
            }
        };
        Ok(c)
    }

    /// `\uXXXX`, with a UTF-16 surrogate pair taking two of them (JSON, RFC 8259 §7).
    fn unicode_escape(&mut self, at: usize) -> Result<char, FilterError> {
        let first = self.hex4(at)?;
        let code = match first {
            0xD800..=0xDBFF => {
                let low_at = self.pos;
                if self.bump() != Some('\\') || self.bump() != Some('u') {
                    return Err(FilterError::at(at, "unpaired UTF-16 surrogate in a \\u escape"));
                }
                let low = self.hex4(low_at)?;
                if !(0xDC00..=0xDFFF).contains(&low) {
                    return Err(FilterError::at(at, "unpaired UTF-16 surrogate in a \\u escape"));
                }
                0x10000 + ((first - 0xD800) << 10) + (low - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(FilterError::at(at, "unpaired UTF-16 surrogate in a \\u escape")),
            code => code,
        };
        char::from_u32(code).ok_or_else(|| FilterError::at(at, "invalid \\u escape"))
    }

    fn hex4(&mut self, at: usize) -> Result<u32, FilterError> {
        let mut code = 0;
        for _ in 0..4 {
            let digit = self.peek_char().and_then(|c| c.to_digit(16));
            let Some(digit) = digit else {
                return Err(FilterError::at(at, "invalid \\u escape (it takes four hexadecimal digits)"));
            };
            self.bump();
            code = code * 16 + digit;
        }
        Ok(code)
    }
}

/// Parses a JSON number (RFC 8259 §6). Integers become integers; anything with a fraction or
/// exponent becomes an `f64` through Rust's correctly rounded parser, so that printing a
/// number and parsing it back always gives the same number.
fn number(text: &str, pos: usize) -> Result<Number, FilterError> {
    let invalid = || FilterError::at(pos, "invalid number (expected a JSON number such as 42, -7, 1.5 or 2e3)");
    if !is_json_number(text) {
        return Err(invalid());
    }
    let out_of_range = || FilterError::at(pos, "number out of range");
    if !text.contains(['.', 'e', 'E']) {
        if let Some(digits) = text.strip_prefix('-') {
            // JSON's `-0` is a float, as serde_json reads it: the sign is kept.
            if digits.bytes().all(|b| b == b'0') {
                return Number::from_f64(-0.0).ok_or_else(out_of_range);
            }
            if let Ok(n) = text.parse::<i64>() {
                return Ok(Number::from(n));
            }
        } else if let Ok(n) = text.parse::<u64>() {
            return Ok(Number::from(n));
        }
    }
    let float: f64 = text.parse().map_err(|_| invalid())?;
    Number::from_f64(float).ok_or_else(out_of_range)
}

/// `-? (0 | [1-9][0-9]*) (\.[0-9]+)? ([eE][+-]?[0-9]+)?`
fn is_json_number(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            digits(&mut i);
        }
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<TokenKind> {
        let mut lexer = Lexer::new(src);
        let mut out = Vec::new();
        loop {
            let t = lexer.next_token().unwrap();
            if t.kind == TokenKind::Eof {
                return out;
            }
            out.push(t.kind);
        }
    }

    #[test]
    fn words_keep_urns_dots_and_dollar_ref_together() {
        let mut lexer = Lexer::new("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.$ref  pr");
        let t = lexer.next_token().unwrap();
        assert_eq!(
            (t.kind, t.text, t.pos),
            (TokenKind::Word, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.$ref", 0)
        );
        let t = lexer.next_token().unwrap();
        assert_eq!((t.text, t.pos), ("pr", 73));
    }

    #[test]
    fn positions_count_characters_not_bytes() {
        let mut lexer = Lexer::new("\"héllo wörld\" )");
        assert_eq!(lexer.next_token().unwrap().kind, TokenKind::Str("héllo wörld".into()));
        assert_eq!(lexer.next_token().unwrap().pos, 14);
    }

    #[test]
    fn string_escapes_decode_like_json() {
        assert_eq!(kinds(r#""a\"b\\c\/d\u00e9\ud83d\ude00\n""#), vec![TokenKind::Str("a\"b\\c/dé😀\n".into())]);
    }

    #[test]
    fn numbers_follow_the_json_grammar() {
        assert_eq!(
            kinds("42 -7 1.5 2e3 -0"),
            vec![
                TokenKind::Number(42.into()),
                TokenKind::Number((-7).into()),
                TokenKind::Number(Number::from_f64(1.5).unwrap()),
                TokenKind::Number(Number::from_f64(2000.0).unwrap()),
                TokenKind::Number(Number::from_f64(-0.0).unwrap()),
            ]
        );
        for bad in ["01", "1.", "1.2.3", "-", "1e", "1e+", "12abc", "--1"] {
            assert!(Lexer::new(bad).next_token().is_err(), "{bad} should not lex");
        }
        assert_eq!(Lexer::new("1e400").next_token().unwrap_err().message, "number out of range at column 1");
    }

    #[test]
    fn quoting_truncates_and_escapes() {
        assert_eq!(quote("a\"b\n"), r#""a\"b\n""#);
        assert_eq!(quote(&"x".repeat(100)), format!("\"{}…\"", "x".repeat(32)));
    }
}
