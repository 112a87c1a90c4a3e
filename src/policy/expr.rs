//! Templates and expressions over AD attributes, compiled once at load time so that a
//! typo surfaces in `validate`, not at 3 a.m. Built on minijinja, with domain filters.

use crate::model::{ObjectGuid, SourceObject};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use minijinja::value::{Object, Value};
use minijinja::{Environment, Error, ErrorKind, UndefinedBehavior};
use std::sync::Arc;
use unicode_normalization::UnicodeNormalization;

/// AD attributes that are multi-valued: a template sees them as lists.
const MULTI_VALUED: &[&str] = &[
    "member",
    "memberof",
    "objectclass",
    "proxyaddresses",
    "othertelephone",
    "othermobile",
    "otherhomephone",
    "url",
    "serviceprincipalname",
    "description_all",
];

/// AD attributes holding bytes: a template sees them as bytes (for `base64`, `guid`).
const BINARY: &[&str] = &[
    "objectguid",
    "objectsid",
    "ms-ds-consistencyguid",
    "msexchmailboxguid",
    "thumbnailphoto",
];

/// A compiled set of named templates and `when` expressions.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
}

/// A template or expression that failed to compile or evaluate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub message: String,
    /// 1-based line inside the template text, when minijinja knows it.
    pub line: Option<usize>,
}

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

fn template_error(e: &Error) -> TemplateError {
    let mut message = e.kind().to_string();
    if let Some(detail) = e.detail() {
        message = format!("{message}: {detail}");
    }
    TemplateError {
        message,
        line: e.line(),
    }
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

impl Templates {
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Lenient);
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_filter("base64", filter_base64);
        env.add_filter("guid", filter_guid);
        env.add_filter("dn_component", filter_dn_component);
        env.add_filter("normalize_diacritics", filter_normalize_diacritics);
        env.add_filter("strip_spaces", filter_strip_spaces);
        env.add_filter("upn_prefix", filter_upn_prefix);
        env.add_filter("upn_suffix", filter_upn_suffix);
        env.add_filter("smtp_primary", filter_smtp_primary);
        env.add_filter("account_enabled", filter_account_enabled);
        env.add_filter("mail_nickname", filter_mail_nickname);
        env.add_filter("startswith", |s: String, p: String| s.starts_with(&p));
        env.add_filter("endswith", |s: String, p: String| s.ends_with(&p));
        Self { env }
    }

    /// Compiles a `{{ ... }}` template under `name`, then renders it once against an
    /// object with no attributes so unknown filters and methods fail now, not later.
    pub fn add_template(&mut self, name: &str, source: &str) -> Result<(), TemplateError> {
        self.env
            .add_template_owned(name.to_string(), source.to_string())
            .map_err(|e| template_error(&e))?;
        self.dry_run(name)
    }

    fn dry_run(&self, name: &str) -> Result<(), TemplateError> {
        let t = self
            .env
            .get_template(name)
            .map_err(|e| template_error(&e))?;
        let empty = SourceObject {
            dn: crate::model::Dn::parse("").map_err(|e| TemplateError {
                message: e.to_string(),
                line: None,
            })?,
            guid: ObjectGuid([0; 16]),
            kind: crate::model::ObjectKind::Other,
            origin: 0,
            usn_changed: None,
            attrs: Default::default(),
        };
        match t.render(AdObjectContext::value(&empty)) {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::UnknownFilter
                        | ErrorKind::UnknownFunction
                        | ErrorKind::UnknownMethod
                        | ErrorKind::UnknownTest
                        | ErrorKind::SyntaxError
                ) =>
            {
                Err(template_error(&e))
            }
            Err(_) => Ok(()),
        }
    }

    /// Compiles a boolean expression (a `when` rule) under `name`.
    pub fn add_expression(&mut self, name: &str, expr: &str) -> Result<(), TemplateError> {
        // Checked as an expression first so errors speak of the expression, not a wrapper.
        self.env
            .compile_expression(expr)
            .map_err(|e| template_error(&e))?;
        self.env
            .add_template_owned(name.to_string(), format!("{{% if {expr} %}}1{{% endif %}}"))
            .map_err(|e| template_error(&e))?;
        self.dry_run(name)
    }

    /// Renders a template against an AD object; whitespace-only output is `None`.
    pub fn render(&self, name: &str, ctx: &Value) -> Result<Option<String>, TemplateError> {
        let t = self
            .env
            .get_template(name)
            .map_err(|e| template_error(&e))?;
        let out = t.render(ctx).map_err(|e| template_error(&e))?;
        let trimmed = out.trim();
        Ok(if trimmed.is_empty() {
            None
        } else {
            Some(trimmed.to_string())
        })
    }

    /// Evaluates a `when` expression added with [`Templates::add_expression`].
    pub fn eval_bool(&self, name: &str, ctx: &Value) -> Result<bool, TemplateError> {
        Ok(self.render(name, ctx)?.as_deref() == Some("1"))
    }

    /// AD attributes the named templates read (for the LDAP attribute list).
    pub fn attributes_used(&self, names: &[&str]) -> std::collections::BTreeSet<String> {
        names
            .iter()
            .filter_map(|n| self.env.get_template(n).ok())
            .flat_map(|t| t.undeclared_variables(false))
            .filter(|v| v != "dn" && v != "distinguishedName")
            .collect()
    }

    pub fn has(&self, name: &str) -> bool {
        self.env.get_template(name).is_ok()
    }
}

/// Exposes one AD object to templates: attribute names case-insensitive, multi-valued
/// attributes as lists, binary ones as bytes, and `dn` for the distinguished name.
#[derive(Debug)]
pub struct AdObjectContext(pub Arc<SourceObject>);

impl AdObjectContext {
    /// The template context for a shared object (no copy).
    pub fn shared(obj: &Arc<SourceObject>) -> Value {
        Value::from_object(AdObjectContext(Arc::clone(obj)))
    }

    /// The template context for an object not yet shared (copied once).
    pub fn value(obj: &SourceObject) -> Value {
        Value::from_object(AdObjectContext(Arc::new(obj.clone())))
    }
}

impl Object for AdObjectContext {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let name = key.as_str()?.to_ascii_lowercase();
        let obj = &self.0;
        if name == "dn" || name == "distinguishedname" {
            return Some(Value::from(obj.dn.as_str()));
        }
        let values = obj.attrs.get(&name);
        if values.is_empty() {
            // Missing attributes are empty, not undefined: `x or y` still falls back,
            // and `x.startswith(...)` does not fail on objects that lack `x`.
            return Some(if MULTI_VALUED.contains(&name.as_str()) {
                Value::from(Vec::<Value>::new())
            } else {
                Value::from("")
            });
        }
        if BINARY.contains(&name.as_str()) {
            return values.first().map(|v| Value::from_bytes(v.to_vec()));
        }
        let text = |v: &[u8]| Value::from(String::from_utf8_lossy(v).into_owned());
        if MULTI_VALUED.contains(&name.as_str()) {
            return Some(Value::from(values.iter().map(text).collect::<Vec<_>>()));
        }
        values.first().map(text)
    }
}

fn bytes_or_str(v: &Value) -> Vec<u8> {
    if let Some(b) = v.as_bytes() {
        b.to_vec()
    } else {
        v.as_str()
            .map(|s| s.as_bytes().to_vec())
            .unwrap_or_default()
    }
}

fn filter_base64(v: Value) -> String {
    STANDARD.encode(bytes_or_str(&v))
}

fn filter_guid(v: Value) -> Result<String, Error> {
    let bytes = bytes_or_str(&v);
    ObjectGuid::from_bytes(&bytes)
        .map(|g| g.to_string())
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))
}

/// `dn_component('ou')` → the first OU's value; `dn_component(1)` → the second RDN's value.
fn filter_dn_component(dn: String, which: Value) -> Result<String, Error> {
    let parsed = crate::model::Dn::parse(&dn)
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
    let found = if let Some(attr) = which.as_str() {
        let attr = attr.to_ascii_lowercase();
        parsed
            .rdns()
            .into_iter()
            .find(|(a, _)| *a == attr)
            .map(|(_, v)| v)
    } else if let Some(i) = which.as_usize() {
        parsed.rdns().into_iter().nth(i).map(|(_, v)| v)
    } else {
        None
    };
    Ok(found.unwrap_or_default())
}

/// Jürgen → Jurgen, Søren → Soren, Straße → Strasse: what mailNickname and UPN prefixes need.
pub fn normalize_diacritics(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.nfd() {
        if unicode_normalization::char::is_combining_mark(c) {
            continue;
        }
        match c {
            'ß' => out.push_str("ss"),
            'ø' => out.push('o'),
            'Ø' => out.push('O'),
            'æ' => out.push_str("ae"),
            'Æ' => out.push_str("AE"),
            'œ' => out.push_str("oe"),
            'Œ' => out.push_str("OE"),
            'ł' => out.push('l'),
            'Ł' => out.push('L'),
            'đ' => out.push('d'),
            'Đ' => out.push('D'),
            'þ' => out.push_str("th"),
            _ => out.push(c),
        }
    }
    out
}

fn filter_normalize_diacritics(s: String) -> String {
    normalize_diacritics(&s)
}

fn filter_strip_spaces(s: String) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

fn filter_upn_prefix(s: String) -> String {
    s.split('@').next().unwrap_or_default().to_string()
}

fn filter_upn_suffix(s: String) -> String {
    s.rsplit_once('@')
        .map(|(_, d)| d.to_string())
        .unwrap_or_default()
}

/// userAccountControl → `true` unless ACCOUNTDISABLE (bit 2) is set.
fn filter_account_enabled(v: Value) -> String {
    let uac = v
        .as_str()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .or_else(|| i64::try_from(v.clone()).ok())
        .unwrap_or(0);
    (uac & 2 == 0).to_string()
}

/// Characters Graph refuses in mailNickname ([`crate::graph_rules::mail_nickname_char`]),
/// removed after diacritics are folded.
pub fn mail_nickname(s: &str) -> String {
    normalize_diacritics(s)
        .chars()
        .filter(|c| crate::graph_rules::mail_nickname_char(*c))
        .collect()
}

fn filter_mail_nickname(s: String) -> String {
    mail_nickname(&s)
}

/// The primary SMTP address from proxyAddresses (`SMTP:` in capitals).
fn filter_smtp_primary(v: Value) -> String {
    if let Ok(iter) = v.try_iter() {
        for item in iter {
            if let Some(s) = item.as_str()
                && let Some(addr) = s.strip_prefix("SMTP:")
            {
                return addr.to_string();
            }
        }
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Dn;

    fn user() -> SourceObject {
        let guid = ObjectGuid::parse("9a7ed32a-0ab4-4d46-aa48-2d7d273334f6").unwrap();
        SourceObject::from_attrs(
            Dn::parse("CN=Jürgen Müller,OU=Sales,OU=Staff,DC=corp,DC=example,DC=com").unwrap(),
            [
                ("objectGUID".to_string(), vec![guid.0.to_vec()]),
                ("givenName".to_string(), vec![b"J\xc3\xbcrgen".to_vec()]),
                ("sn".to_string(), vec!["Müller".as_bytes().to_vec()]),
                ("sAMAccountName".to_string(), vec![b"JMueller".to_vec()]),
                (
                    "proxyAddresses".to_string(),
                    vec![
                        b"smtp:j@old.example.com".to_vec(),
                        b"SMTP:jm@corp.example.com".to_vec(),
                    ],
                ),
            ],
        )
        .unwrap()
    }

    fn render(src: &str) -> Option<String> {
        let mut t = Templates::new();
        t.add_template("t", src).unwrap();
        t.render("t", &AdObjectContext::value(&user())).unwrap()
    }

    #[test]
    fn renders_attributes_case_insensitively() {
        assert_eq!(
            render("{{ givenname ~ ' ' ~ SN }}").as_deref(),
            Some("Jürgen Müller")
        );
        assert_eq!(
            render("{{ sAMAccountName | lower }}").as_deref(),
            Some("jmueller")
        );
        assert_eq!(render("{{ department }}"), None);
        assert_eq!(
            render("{{ department or 'none' }}").as_deref(),
            Some("none")
        );
    }

    #[test]
    fn domain_filters() {
        assert_eq!(
            render("{{ objectGUID | base64 }}").as_deref(),
            Some("KtN+mrQKRk2qSC19JzM09g==")
        );
        assert_eq!(
            render("{{ objectGUID | guid }}").as_deref(),
            Some("9a7ed32a-0ab4-4d46-aa48-2d7d273334f6")
        );
        assert_eq!(
            render("{{ dn | dn_component('ou') }}").as_deref(),
            Some("Sales")
        );
        assert_eq!(
            render("{{ dn | dn_component(0) }}").as_deref(),
            Some("Jürgen Müller")
        );
        assert_eq!(
            render("{{ (givenName ~ sn) | normalize_diacritics | lower }}").as_deref(),
            Some("jurgenmuller")
        );
        assert_eq!(
            render("{{ 'a b  c' | strip_spaces }}").as_deref(),
            Some("abc")
        );
        assert_eq!(
            render("{{ proxyAddresses | smtp_primary }}").as_deref(),
            Some("jm@corp.example.com")
        );
        assert_eq!(render("{{ 'a@b.c' | upn_suffix }}").as_deref(), Some("b.c"));
        assert_eq!(
            normalize_diacritics("Straße Søren Zoë Ångström"),
            "Strasse Soren Zoe Angstrom"
        );
    }

    #[test]
    fn expressions() {
        let mut t = Templates::new();
        t.add_expression("w", "not sAMAccountName.startswith('svc_')")
            .unwrap();
        assert!(t.eval_bool("w", &AdObjectContext::value(&user())).unwrap());
        assert!(t.add_expression("bad", "sAMAccountName ==").is_err());
        assert!(t.add_template("bad2", "{{ x | nosuchfilter }}").is_err());
    }
}
