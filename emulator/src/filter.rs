//! OData `$filter` parsing and evaluation for the forms Graph's directory supports: `eq`, `ne`,
//! `ge`, `le`, `in (...)`, `startswith()`, `endswith()`, `not`, `and`, `or`, `eq null`.
//!
//! Which operators need advanced query parameters (`ConsistencyLevel: eventual` + `$count=true`)
//! is reported by [`Filter::advanced_operator`]; which properties can be filtered is decided by
//! the caller.

use serde_json::Value;

/// A parsed filter expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `a and b`
    And(Box<Filter>, Box<Filter>),
    /// `a or b`
    Or(Box<Filter>, Box<Filter>),
    /// `not a`
    Not(Box<Filter>),
    /// `prop op literal`
    Compare(String, CmpOp, Value),
    /// `prop in (...)`
    In(String, Vec<Value>),
    /// `startswith(prop, 'x')`
    StartsWith(String, String),
    /// `endswith(prop, 'x')`
    EndsWith(String, String),
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// eq
    Eq,
    /// ne
    Ne,
    /// ge
    Ge,
    /// le
    Le,
    /// gt
    Gt,
    /// lt
    Lt,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(f64),
    LParen,
    RParen,
    Comma,
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '(' => {
                out.push(Tok::LParen);
                i += 1
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1
            }
            '\'' => {
                let mut v = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err("unterminated string literal".into()),
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            v.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(ch) => {
                            v.push(*ch);
                            i += 1;
                        }
                    }
                }
                out.push(Tok::Str(v));
            }
            c if c.is_ascii_digit() || c == '-' => {
                let start = i;
                i += 1;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '.' || chars[i] == '-')
                {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                match text.parse::<f64>() {
                    Ok(n) => out.push(Tok::Num(n)),
                    Err(_) => out.push(Tok::Ident(text)),
                }
            }
            c if c.is_alphanumeric() || c == '_' || c == '$' || c == '@' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_alphanumeric()
                        || matches!(chars[i], '_' | '.' | '/' | '$' | '@'))
                {
                    i += 1;
                }
                out.push(Tok::Ident(chars[start..i].iter().collect()));
            }
            other => return Err(format!("unexpected character '{other}'")),
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(s)) if s.eq_ignore_ascii_case(kw))
    }
    fn expect(&mut self, t: Tok) -> Result<(), String> {
        match self.next() {
            Some(x) if x == t => Ok(()),
            other => Err(format!("expected {t:?}, found {other:?}")),
        }
    }
    fn or(&mut self) -> Result<Filter, String> {
        let mut left = self.and()?;
        while self.keyword("or") {
            self.pos += 1;
            let right = self.and()?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }
    fn and(&mut self) -> Result<Filter, String> {
        let mut left = self.unary()?;
        while self.keyword("and") {
            self.pos += 1;
            let right = self.unary()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }
    fn unary(&mut self) -> Result<Filter, String> {
        if self.keyword("not") {
            self.pos += 1;
            return Ok(Filter::Not(Box::new(self.unary()?)));
        }
        self.primary()
    }
    fn literal(&mut self) -> Result<Value, String> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(Value::String(s)),
            Some(Tok::Num(n)) => Ok(serde_json::Number::from_f64(n)
                .map(Value::Number)
                .unwrap_or(Value::Null)),
            Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("true") => Ok(Value::Bool(true)),
            Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("false") => Ok(Value::Bool(false)),
            Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("null") => Ok(Value::Null),
            Some(Tok::Ident(s)) if crate::conformance::is_guid(&s) => Ok(Value::String(s)),
            other => Err(format!("expected a literal, found {other:?}")),
        }
    }
    fn primary(&mut self) -> Result<Filter, String> {
        match self.next() {
            Some(Tok::LParen) => {
                let f = self.or()?;
                self.expect(Tok::RParen)?;
                Ok(f)
            }
            Some(Tok::Ident(name)) => {
                let lower = name.to_ascii_lowercase();
                if (lower == "startswith" || lower == "endswith")
                    && self.peek() == Some(&Tok::LParen)
                {
                    self.pos += 1;
                    let prop = match self.next() {
                        Some(Tok::Ident(p)) => p,
                        other => return Err(format!("expected a property, found {other:?}")),
                    };
                    self.expect(Tok::Comma)?;
                    let value = match self.literal()? {
                        Value::String(s) => s,
                        other => return Err(format!("{name} needs a string, found {other}")),
                    };
                    self.expect(Tok::RParen)?;
                    return Ok(if lower == "startswith" {
                        Filter::StartsWith(prop, value)
                    } else {
                        Filter::EndsWith(prop, value)
                    });
                }
                let op = match self.next() {
                    Some(Tok::Ident(op)) => op.to_ascii_lowercase(),
                    other => {
                        return Err(format!(
                            "expected an operator after '{name}', found {other:?}"
                        ));
                    }
                };
                if op == "in" {
                    self.expect(Tok::LParen)?;
                    let mut values = vec![self.literal()?];
                    while self.peek() == Some(&Tok::Comma) {
                        self.pos += 1;
                        values.push(self.literal()?);
                    }
                    self.expect(Tok::RParen)?;
                    return Ok(Filter::In(name, values));
                }
                let cmp = match op.as_str() {
                    "eq" => CmpOp::Eq,
                    "ne" => CmpOp::Ne,
                    "ge" => CmpOp::Ge,
                    "le" => CmpOp::Le,
                    "gt" => CmpOp::Gt,
                    "lt" => CmpOp::Lt,
                    other => return Err(format!("unknown operator '{other}'")),
                };
                Ok(Filter::Compare(name, cmp, self.literal()?))
            }
            other => Err(format!("unexpected {other:?}")),
        }
    }
}

impl Filter {
    /// Parses a `$filter` value.
    pub fn parse(s: &str) -> Result<Filter, String> {
        let mut p = Parser {
            toks: tokenize(s)?,
            pos: 0,
        };
        let f = p.or()?;
        if p.pos < p.toks.len() {
            return Err(format!("unexpected trailing input at token {}", p.pos));
        }
        Ok(f)
    }

    /// The first operator that needs advanced query parameters (`ne`, `not`, `endsWith`).
    pub fn advanced_operator(&self) -> Option<&'static str> {
        match self {
            Filter::And(a, b) | Filter::Or(a, b) => {
                a.advanced_operator().or_else(|| b.advanced_operator())
            }
            Filter::Not(_) => Some("not"),
            Filter::Compare(_, CmpOp::Ne, v) if !v.is_null() => Some("ne"),
            Filter::EndsWith(..) => Some("endsWith"),
            _ => None,
        }
    }

    /// Every property named in the expression.
    pub fn properties(&self) -> Vec<&str> {
        match self {
            Filter::And(a, b) | Filter::Or(a, b) => {
                let mut v = a.properties();
                v.extend(b.properties());
                v
            }
            Filter::Not(a) => a.properties(),
            Filter::Compare(p, _, _)
            | Filter::In(p, _)
            | Filter::StartsWith(p, _)
            | Filter::EndsWith(p, _) => vec![p.as_str()],
        }
    }

    /// Ids named by `id eq '...'` clauses joined with `or` (the only filter delta accepts).
    pub fn id_list(&self) -> Option<Vec<String>> {
        match self {
            Filter::Or(a, b) => {
                let mut v = a.id_list()?;
                v.extend(b.id_list()?);
                Some(v)
            }
            Filter::Compare(p, CmpOp::Eq, Value::String(s)) if p == "id" => Some(vec![s.clone()]),
            Filter::In(p, vals) if p == "id" => vals
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => None,
        }
    }

    /// Evaluates the expression; `get` returns a property's value.
    pub fn matches(&self, get: &dyn Fn(&str) -> Value) -> bool {
        match self {
            Filter::And(a, b) => a.matches(get) && b.matches(get),
            Filter::Or(a, b) => a.matches(get) || b.matches(get),
            Filter::Not(a) => !a.matches(get),
            Filter::Compare(p, op, lit) => compare(&get(p), *op, lit),
            Filter::In(p, lits) => {
                let v = get(p);
                lits.iter().any(|l| compare(&v, CmpOp::Eq, l))
            }
            Filter::StartsWith(p, s) => {
                str_of(&get(p)).is_some_and(|v| v.to_lowercase().starts_with(&s.to_lowercase()))
            }
            Filter::EndsWith(p, s) => {
                str_of(&get(p)).is_some_and(|v| v.to_lowercase().ends_with(&s.to_lowercase()))
            }
        }
    }
}

fn str_of(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

fn compare(v: &Value, op: CmpOp, lit: &Value) -> bool {
    use std::cmp::Ordering;
    let ord = match (v, lit) {
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        (Value::Array(items), _) if op == CmpOp::Eq => {
            return items.iter().any(|i| compare(i, CmpOp::Eq, lit));
        }
        (Value::Array(items), Value::Null) => return (op == CmpOp::Ne) != items.is_empty(),
        (Value::String(a), Value::String(b)) => Some(a.to_lowercase().cmp(&b.to_lowercase())),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        (Value::Number(a), Value::Number(b)) => a
            .as_f64()
            .zip(b.as_f64())
            .and_then(|(a, b)| a.partial_cmp(&b)),
        _ => None,
    };
    match (op, ord) {
        (CmpOp::Eq, o) => o == Some(Ordering::Equal),
        (CmpOp::Ne, o) => o != Some(Ordering::Equal),
        (CmpOp::Ge, Some(o)) => o != Ordering::Less,
        (CmpOp::Le, Some(o)) => o != Ordering::Greater,
        (CmpOp::Gt, Some(o)) => o == Ordering::Greater,
        (CmpOp::Lt, Some(o)) => o == Ordering::Less,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn get(v: &Value) -> impl Fn(&str) -> Value + '_ {
        move |p| v.get(p).cloned().unwrap_or(Value::Null)
    }

    #[test]
    fn parses_and_evaluates_common_forms() {
        let u = json!({"userPrincipalName": "Adele@Corp.Example.com", "displayName": "Adele Vance", "mail": null, "accountEnabled": true});
        let g = get(&u);
        assert!(
            Filter::parse("userPrincipalName eq 'adele@corp.example.com'")
                .unwrap()
                .matches(&g)
        );
        assert!(
            Filter::parse("startswith(displayName,'ade')")
                .unwrap()
                .matches(&g)
        );
        assert!(
            !Filter::parse("startsWith(displayName,'vance')")
                .unwrap()
                .matches(&g)
        );
        assert!(
            Filter::parse("mail eq null and accountEnabled eq true")
                .unwrap()
                .matches(&g)
        );
        assert!(
            Filter::parse("displayName in ('x', 'Adele Vance')")
                .unwrap()
                .matches(&g)
        );
        assert!(
            Filter::parse("displayName eq 'it''s' or (accountEnabled eq true)")
                .unwrap()
                .matches(&g)
        );
        assert!(
            !Filter::parse("not (accountEnabled eq true)")
                .unwrap()
                .matches(&g)
        );
    }

    #[test]
    fn reports_advanced_operators_and_errors() {
        assert_eq!(
            Filter::parse("endswith(mail,'@x.com')")
                .unwrap()
                .advanced_operator(),
            Some("endsWith")
        );
        assert_eq!(
            Filter::parse("mail ne 'a'").unwrap().advanced_operator(),
            Some("ne")
        );
        assert_eq!(
            Filter::parse("mail eq 'a'").unwrap().advanced_operator(),
            None
        );
        assert!(Filter::parse("mail eq").is_err());
        assert!(Filter::parse("mail xx 'a'").is_err());
        assert!(Filter::parse("mail eq 'a").is_err());
        let ids = Filter::parse("id eq 'a' or id eq 'b'")
            .unwrap()
            .id_list()
            .unwrap();
        assert_eq!(ids, vec!["a", "b"]);
    }
}
