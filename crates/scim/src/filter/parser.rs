//! The recursive-descent parser for filters and PATCH paths, with its nesting and size limits.
//!
//! Grammar (RFC 7644 §3.4.2.2, Figure 1; `or` < `and` < `not`):
//!
//! ```text
//! filter    = or EOF
//! or        = and *("or" and)                      ; left-associative
//! and       = unary *("and" unary)                 ; left-associative
//! unary     = "not" "(" or ")" / "(" or ")" / attrExp
//! attrExp   = attrPath "pr" / attrPath compareOp compValue
//!           / attrPath "[" or "]" ["." ATTRNAME ("pr" / compareOp compValue)]
//! patchPath = attrPath ["[" or "]" ["." ATTRNAME]] EOF
//! ```
//!
//! The `"." ATTRNAME` after `]` in a *filter* is a lenient extension (see the module doc).

use super::ast::{AttrPath, CompValue, CompareOp, Filter, PatchPath};
use super::lexer::{Lexer, Token, TokenKind, quote};
use super::{FilterError, MAX_DEPTH, MAX_FILTER_LEN, MAX_TERMS};

const ATTR_START: &str = "an attribute name, \"(\" or \"not\"";
const OPERATORS: &str = "a comparison operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr)";
const VALUE: &str = "a value (a string in double quotes, a number, true, false or null)";
const NAME_RULE: &str = "an attribute name (a letter, then letters, digits, \"-\" or \"_\")";

/// Parses a whole filter.
pub(crate) fn parse_filter(input: &str) -> Result<Filter, FilterError> {
    let mut parser = Parser::new(input, "filter")?;
    let filter = parser.or(None)?;
    parser.end("\"and\", \"or\" or the end of the filter")?;
    Ok(filter)
}

/// Parses a PATCH path.
pub(crate) fn parse_patch_path(input: &str) -> Result<PatchPath, FilterError> {
    let mut parser = Parser::new(input, "path")?;
    let token = parser.next()?;
    let path = match token.kind {
        TokenKind::Word => attr_path(&token)?,
        _ => return Err(expected("an attribute path", &token)),
    };
    if parser.peek()?.kind != TokenKind::LBracket {
        parser.end("\"[\" or the end of the path")?;
        return Ok(PatchPath::Attr(path));
    }
    let filter = parser.bracketed()?;
    let sub_attr = match parser.peek()?.kind {
        TokenKind::Dot => {
            parser.next()?;
            Some(parser.sub_attr_name()?)
        }
        _ => None,
    };
    parser.end("\".\" and a sub-attribute name, or the end of the path")?;
    Ok(PatchPath::ValuePath { path, filter, sub_attr })
}

/// The error `expected {what}, found {token} at column N`: every "wrong token" error goes here.
pub(crate) fn expected(what: &str, token: &Token<'_>) -> FilterError {
    FilterError::at(token.pos, format!("expected {what}, found {}", token.describe()))
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    peeked: Option<Token<'a>>,
    /// Open `(`, `not (` and `[` around the current point.
    depth: usize,
    /// Attribute expressions read so far.
    terms: usize,
}

impl<'a> Parser<'a> {
    fn new(input: &'a str, what: &str) -> Result<Self, FilterError> {
        if input.len() > MAX_FILTER_LEN {
            return Err(FilterError { position: 0, message: format!("{what} is longer than {MAX_FILTER_LEN} bytes") });
        }
        Ok(Self { lexer: Lexer::new(input), peeked: None, depth: 0, terms: 0 })
    }

    fn peek(&mut self) -> Result<&Token<'a>, FilterError> {
        let token = match self.peeked.take() {
            Some(token) => token,
            None => self.lexer.next_token()?,
        };
        Ok(self.peeked.insert(token))
    }

    fn next(&mut self) -> Result<Token<'a>, FilterError> {
        match self.peeked.take() {
            Some(token) => Ok(token),
            None => self.lexer.next_token(),
        }
    }

    /// Succeeds at the end of the input; a stray `)` gets its own message.
    fn end(&mut self, what: &str) -> Result<(), FilterError> {
        let token = self.next()?;
        match token.kind {
            TokenKind::Eof => Ok(()),
            TokenKind::RParen => Err(FilterError::at(token.pos, "unbalanced \")\"")),
            _ => Err(expected(what, &token)),
        }
    }

    /// One more level of nesting, opened at `pos`.
    fn enter(&mut self, pos: usize) -> Result<(), FilterError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(FilterError::at(
                pos,
                format!("filter nests deeper than {MAX_DEPTH} levels of parentheses and brackets"),
            ));
        }
        Ok(())
    }

    /// `or = and *("or" and)`. `bracket` is the position of the enclosing `[`, if any.
    fn or(&mut self, bracket: Option<usize>) -> Result<Filter, FilterError> {
        let mut left = self.and(bracket)?;
        while self.peek()?.is_keyword("or") {
            self.next()?;
            let right = self.and(bracket)?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    /// `and = unary *("and" unary)`.
    fn and(&mut self, bracket: Option<usize>) -> Result<Filter, FilterError> {
        let mut left = self.unary(bracket)?;
        while self.peek()?.is_keyword("and") {
            self.next()?;
            let right = self.unary(bracket)?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    /// `unary = "not" "(" or ")" / "(" or ")" / attrExp`. `not` is reserved here, so an
    /// attribute cannot be called `not`; `and`, `or` and the operators can (they are keywords
    /// only where an operator is expected).
    fn unary(&mut self, bracket: Option<usize>) -> Result<Filter, FilterError> {
        let token = self.next()?;
        match token.kind {
            TokenKind::Word if token.is_keyword("not") => {
                let open = self.next()?;
                if open.kind != TokenKind::LParen {
                    return Err(expected("\"(\" after \"not\"", &open));
                }
                let inner = self.group(open.pos, bracket)?;
                Ok(Filter::Not(Box::new(inner)))
            }
            TokenKind::LParen => self.group(token.pos, bracket),
            TokenKind::Word => self.attr_exp(&token, bracket),
            TokenKind::RParen if bracket.is_none() && self.depth == 0 => {
                Err(FilterError::at(token.pos, "unbalanced \")\""))
            }
            _ => Err(expected(ATTR_START, &token)),
        }
    }

    /// The inside of a `(` at `open` and its `)`.
    fn group(&mut self, open: usize, bracket: Option<usize>) -> Result<Filter, FilterError> {
        self.enter(open)?;
        let inner = self.or(bracket)?;
        let close = self.next()?;
        if close.kind != TokenKind::RParen {
            let what = format!("\")\" to close the \"(\" at column {}", open + 1);
            return Err(expected(&what, &close));
        }
        self.depth -= 1;
        Ok(inner)
    }

    /// `attrPath ("pr" / compareOp compValue / "[" or "]" ["." ATTRNAME …])`.
    fn attr_exp(&mut self, word: &Token<'a>, bracket: Option<usize>) -> Result<Filter, FilterError> {
        let path = attr_path(word)?;
        let next = self.peek()?;
        if next.kind != TokenKind::LBracket {
            return self.condition(path);
        }
        if let Some(outer) = bracket {
            return Err(FilterError::at(
                next.pos,
                format!("value filters cannot be nested (the enclosing \"[\" is at column {}), found \"[\"", outer + 1),
            ));
        }
        let filter = self.bracketed()?;
        if self.peek()?.kind != TokenKind::Dot {
            return Ok(Filter::ValuePath { path, filter: Box::new(filter) });
        }
        // Lenient extension: `emails[type eq "work"].value eq "x"` is read as
        // `emails[type eq "work" and value eq "x"]`, which is what it means.
        let dot = self.next()?;
        if path.sub_attr.is_some() {
            return Err(FilterError::at(
                dot.pos,
                format!("{} already names a sub-attribute, so \".\" cannot follow its \"]\"", quote(&path.to_string())),
            ));
        }
        // The canonical form of `emails[a or b].c pr` is `emails[(a or b) and c pr]`: one more
        // level of nesting than the input shows, which must fit too for the round trip to hold.
        if matches!(filter, Filter::Or(..)) && self.depth + 2 > MAX_DEPTH {
            return Err(FilterError::at(
                dot.pos,
                format!("filter nests deeper than {MAX_DEPTH} levels of parentheses and brackets"),
            ));
        }
        let sub = self.sub_attr_name()?;
        let condition = self.condition(AttrPath::new(sub))?;
        Ok(Filter::ValuePath { path, filter: Box::new(Filter::And(Box::new(filter), Box::new(condition))) })
    }

    /// `"[" or "]"`, the `[` being the next token.
    fn bracketed(&mut self) -> Result<Filter, FilterError> {
        let open = self.next()?;
        self.enter(open.pos)?;
        let filter = self.or(Some(open.pos))?;
        let close = self.next()?;
        if close.kind != TokenKind::RBracket {
            let what = format!("\"and\", \"or\" or \"]\" to close the \"[\" at column {}", open.pos + 1);
            return Err(expected(&what, &close));
        }
        self.depth -= 1;
        Ok(filter)
    }

    /// The ATTRNAME after `].`.
    fn sub_attr_name(&mut self) -> Result<String, FilterError> {
        let token = self.next()?;
        if token.kind == TokenKind::Word && is_attr_name(token.text) {
            return Ok(token.text.to_owned());
        }
        Err(expected("a sub-attribute name after \".\"", &token))
    }

    /// `"pr" / compareOp compValue` after `path`.
    fn condition(&mut self, path: AttrPath) -> Result<Filter, FilterError> {
        let token = self.next()?;
        let op = match token.kind {
            TokenKind::Word if token.is_keyword("pr") => None,
            TokenKind::Word => match CompareOp::from_keyword(token.text) {
                Some(op) => Some(op),
                None => return Err(expected(OPERATORS, &token)),
            },
            _ => return Err(expected(OPERATORS, &token)),
        };
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(FilterError::at(token.pos, format!("filter has more than {MAX_TERMS} attribute comparisons")));
        }
        let Some(op) = op else {
            let next = self.peek()?;
            if is_value_token(next) {
                return Err(FilterError::at(next.pos, format!("\"pr\" takes no value, found {}", next.describe())));
            }
            return Ok(Filter::Present(path));
        };
        let value = self.value()?;
        Ok(Filter::Compare { path, op, value })
    }

    /// `compValue = false / null / true / number / string`; the keywords ignore case.
    fn value(&mut self) -> Result<CompValue, FilterError> {
        let token = self.next()?;
        match token.kind {
            TokenKind::Str(s) => Ok(CompValue::Str(s)),
            TokenKind::Number(n) => Ok(CompValue::Number(n)),
            TokenKind::Word if token.is_keyword("true") => Ok(CompValue::Bool(true)),
            TokenKind::Word if token.is_keyword("false") => Ok(CompValue::Bool(false)),
            TokenKind::Word if token.is_keyword("null") => Ok(CompValue::Null),
            // Not echoed: an unquoted word here is most likely a value (a name, an address).
            TokenKind::Word => Err(FilterError::at(
                token.pos,
                format!("expected {VALUE}, found an unquoted word (strings go in double quotes)"),
            )),
            _ => Err(expected(VALUE, &token)),
        }
    }
}

fn is_value_token(token: &Token<'_>) -> bool {
    matches!(token.kind, TokenKind::Str(_) | TokenKind::Number(_))
        || ["true", "false", "null"].iter().any(|k| token.is_keyword(k))
}

/// `attrPath = [URI ":"] ATTRNAME *1subAttr`, from one word. The URN is everything before the
/// last colon (URNs contain dots, as in `2.0`, so the dot of a sub-attribute is only looked for
/// after it).
fn attr_path(word: &Token<'_>) -> Result<AttrPath, FilterError> {
    let text = word.text;
    // Words are ASCII, so byte offsets inside one are character offsets.
    let at = |offset: usize| word.pos + offset;
    let (urn, rest, rest_offset) = match text.rfind(':') {
        Some(colon) => (Some(&text[..colon]), &text[colon + 1..], colon + 1),
        None => (None, text, 0),
    };
    if let Some(urn) = urn.filter(|urn| !is_uri(urn)) {
        return Err(FilterError::at(
            word.pos,
            format!(
                "expected a schema URN such as urn:ietf:params:scim:schemas:core:2.0:User before the last \":\", found {}",
                quote(urn)
            ),
        ));
    }
    let (name, sub) = match rest.split_once('.') {
        Some((name, sub)) => (name, Some(sub)),
        None => (rest, None),
    };
    if !is_attr_name(name) {
        return Err(name_error(name, at(rest_offset)));
    }
    let Some(sub) = sub else {
        return Ok(AttrPath { urn: urn.map(str::to_owned), name: name.to_owned(), sub_attr: None });
    };
    let sub_offset = rest_offset + name.len() + 1;
    if let Some(dot) = sub.find('.') {
        return Err(FilterError::at(
            at(sub_offset + dot),
            format!("attribute path {} has more than one sub-attribute", quote(text)),
        ));
    }
    if !is_attr_name(sub) {
        return Err(name_error(sub, at(sub_offset)));
    }
    Ok(AttrPath { urn: urn.map(str::to_owned), name: name.to_owned(), sub_attr: Some(sub.to_owned()) })
}

fn name_error(found: &str, pos: usize) -> FilterError {
    let found = if found.is_empty() { "nothing".to_owned() } else { quote(found) };
    FilterError::at(pos, format!("expected {NAME_RULE}, found {found}"))
}

/// `ATTRNAME = ALPHA *(nameChar)`, `nameChar = "-" / "_" / DIGIT / ALPHA`, plus `$ref`
/// (RFC 7643 §2.1 names that one explicitly).
pub(crate) fn is_attr_name(s: &str) -> bool {
    if s.eq_ignore_ascii_case("$ref") {
        return true;
    }
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A URI as far as the word characters allow: `scheme ":" path`, scheme =
/// `ALPHA *(ALPHA / DIGIT / "+" / "-" / ".")` (RFC 3986 §3.1).
fn is_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !rest.contains('$')
}
