//! The `federation:` section: per domain, the settings of Graph's `internalDomainFederation`
//! (how the domain's users sign in through an AD FS or other SAML / WS-Federation identity
//! provider), so that switching a domain to federated sign-in is a reviewed commit.
//!
//! Loading checks what Graph would refuse or what could not work: domain names (the
//! `*.onmicrosoft.com` domain cannot be federated), HTTPS endpoints, and signing
//! certificates that parse as X.509 (their expiry is checked at plan time, which knows the
//! clock). The compiled form holds the Graph properties as they will be sent.

use super::yaml_tree::{Step, path_string};
use crate::diagnostics::{Diagnostic, Location};
use base64::Engine;
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// `preferredAuthenticationProtocol` of Graph's `internalDomainFederation`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum AuthenticationProtocol {
    #[serde(rename = "wsFed")]
    WsFed,
    #[serde(rename = "saml")]
    Saml,
}

/// `federatedIdpMfaBehavior`: whether Entra accepts MFA done by the identity provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum FederatedIdpMfaBehavior {
    #[serde(rename = "acceptIfMfaDoneByFederatedIdp")]
    AcceptIfMfaDoneByFederatedIdp,
    #[serde(rename = "enforceMfaByFederatedIdp")]
    EnforceMfaByFederatedIdp,
    #[serde(rename = "rejectMfaByFederatedIdp")]
    RejectMfaByFederatedIdp,
}

/// `promptLoginBehavior`: how `prompt=login` requests reach the identity provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PromptLoginBehavior {
    #[serde(rename = "translateToFreshPasswordAuthentication")]
    TranslateToFreshPasswordAuthentication,
    #[serde(rename = "nativeSupport")]
    NativeSupport,
    #[serde(rename = "disabled")]
    Disabled,
}

/// One domain's federation settings, named as Graph names them. Properties left out are
/// not managed: ad2entra neither sets nor compares them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DomainFederation {
    /// Display name of the identity provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Issuer URI of the federation server (AD FS: `http://sts.example.com/adfs/services/trust`).
    pub issuer_uri: String,
    /// Where web clients sign in (AD FS: `https://sts.example.com/adfs/ls/`).
    pub passive_sign_in_uri: String,
    /// Endpoint of active (rich) clients (AD FS: `…/adfs/services/trust/2005/usernamemixed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_sign_in_uri: Option<String>,
    /// Where clients are sent when they sign out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_out_uri: Option<String>,
    /// Metadata exchange endpoint of rich clients (AD FS: `…/adfs/services/trust/mex`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_exchange_uri: Option<String>,
    /// The identity provider's token-signing certificate: base64 of its DER form (public).
    pub signing_certificate: String,
    /// The next token-signing certificate, for a rollover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_signing_certificate: Option<String>,
    /// `wsFed` or `saml`.
    pub preferred_authentication_protocol: AuthenticationProtocol,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub federated_idp_mfa_behavior: Option<FederatedIdpMfaBehavior>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_login_behavior: Option<PromptLoginBehavior>,
    /// Sign SAML authentication requests sent to the identity provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_signed_authentication_request_required: Option<bool>,
}

/// What a signing certificate says about itself, for the expiry warning and the
/// rollover check.
#[derive(Clone, Debug, PartialEq)]
pub struct CertificateInfo {
    /// `signingCertificate` or `nextSigningCertificate`.
    pub property: &'static str,
    pub subject: String,
    pub not_after: DateTime<Utc>,
    /// Where the certificate is written in the policy.
    pub location: Option<Location>,
}

/// One domain's federation, checked: the Graph properties to hold, ready to send.
#[derive(Clone, Debug, PartialEq)]
pub struct CompiledFederation {
    /// The domain name, lower case.
    pub domain: String,
    /// Graph property → value (certificates without whitespace). Only these are managed.
    pub properties: Map<String, Value>,
    pub certificates: Vec<CertificateInfo>,
    /// Where the domain is named in the policy.
    pub location: Option<Location>,
}

/// A parsed token-signing certificate.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedCertificate {
    /// The base64 as Graph stores it (no whitespace).
    pub base64: String,
    pub subject: String,
    pub not_after: DateTime<Utc>,
}

/// Parses a certificate given as base64 DER (whitespace, e.g. from a folded YAML string,
/// is ignored). The error says what is wrong, for a diagnostic.
pub fn parse_certificate(text: &str) -> Result<ParsedCertificate, String> {
    if text.contains("-----BEGIN") {
        return Err("is PEM; give only the base64 between the BEGIN and END lines".into());
    }
    let base64: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if base64.is_empty() {
        return Err("is empty".into());
    }
    let der = base64::engine::general_purpose::STANDARD
        .decode(&base64)
        .map_err(|e| format!("is not base64 ({e})"))?;
    let (rest, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| format!("is not an X.509 certificate ({e})"))?;
    if !rest.is_empty() {
        return Err(format!(
            "has {} bytes after the X.509 certificate",
            rest.len()
        ));
    }
    let not_after = DateTime::from_timestamp(cert.validity().not_after.timestamp(), 0)
        .ok_or_else(|| "has an expiry date out of range".to_string())?;
    Ok(ParsedCertificate {
        base64,
        subject: cert.subject().to_string(),
        not_after,
    })
}

/// An absolute `https://host/…` URL without spaces.
fn is_https_url(s: &str) -> bool {
    s.strip_prefix("https://").is_some_and(|rest| {
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        !host.is_empty() && !s.chars().any(char::is_whitespace)
    })
}

/// An absolute URI (`scheme:…`): AD FS issuers are `http://…/adfs/services/trust`,
/// SAML issuers may be URNs.
fn is_absolute_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        && !rest.is_empty()
        && !s.chars().any(char::is_whitespace)
}

/// Why `domain` cannot be federated, if it cannot: (code, message, hint).
fn domain_problem(domain: &str) -> Option<(&'static str, String, &'static str)> {
    let valid = !domain.is_empty()
        && domain.split('.').count() >= 2
        && domain
            .split('.')
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    if !valid {
        return Some((
            "invalid-domain",
            format!("`{domain}` is not a domain name"),
            "name a verified domain of the tenant, e.g. corp.example.com",
        ));
    }
    if domain.to_ascii_lowercase().ends_with(".onmicrosoft.com") {
        return Some((
            "federation-initial-domain",
            format!(
                "`{domain}` is a Microsoft-provided *.onmicrosoft.com domain, which cannot be federated"
            ),
            "federate a custom verified domain; keep *.onmicrosoft.com for cloud-only break-glass accounts",
        ));
    }
    if super::load::is_non_routable(domain) {
        return Some((
            "non-routable-domain",
            format!("`{domain}` is not routable and cannot be a verified Entra domain"),
            "name a verified domain of the tenant",
        ));
    }
    None
}

fn key(s: &str) -> Step {
    Step::Key(s.to_string())
}

/// Checks the `federation:` section and compiles it. `locate(path, key)` turns a path
/// into its policy position: of the value, or with `key` of the last key itself. Returns
/// the domains that are valid and every problem found.
pub fn compile(
    section: &BTreeMap<String, DomainFederation>,
    locate: &dyn Fn(&[Step], bool) -> Option<Location>,
) -> (Vec<CompiledFederation>, Vec<Diagnostic>) {
    let mut out = Vec::new();
    let mut diags = Vec::new();
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for (domain, f) in section {
        let base = vec![key("federation"), key(domain)];
        let at = |field: Option<&str>| {
            let mut p = base.clone();
            if let Some(f) = field {
                p.push(key(f));
            }
            p
        };
        let mut err = |field: Option<&str>, code: &str, msg: String, hint: &str| {
            let path = at(field);
            diags.push(
                Diagnostic::error(code, format!("{}: {msg}", path_string(&path)))
                    .at(locate(&path, field.is_none()))
                    .hint(hint),
            );
        };
        let mut ok = true;
        if let Some((code, msg, hint)) = domain_problem(domain) {
            err(None, code, msg, hint);
            ok = false;
        }
        let lower = domain.to_ascii_lowercase();
        if let Some(other) = seen.insert(lower.clone(), domain) {
            err(
                None,
                "invalid-domain",
                format!("`{domain}` is also named as `{other}`"),
                "name each domain once",
            );
            ok = false;
        }
        if !is_absolute_uri(&f.issuer_uri) {
            err(
                Some("issuerUri"),
                "invalid-federation-uri",
                format!("`{}` is not an absolute URI", f.issuer_uri),
                "the identity provider's issuer, e.g. http://sts.corp.example.com/adfs/services/trust",
            );
            ok = false;
        }
        let endpoints = [
            ("passiveSignInUri", Some(&f.passive_sign_in_uri)),
            ("activeSignInUri", f.active_sign_in_uri.as_ref()),
            ("signOutUri", f.sign_out_uri.as_ref()),
            ("metadataExchangeUri", f.metadata_exchange_uri.as_ref()),
        ];
        for (name, value) in endpoints {
            if let Some(v) = value
                && !is_https_url(v)
            {
                err(
                    Some(name),
                    "invalid-federation-uri",
                    format!("`{v}` is not an https:// URL"),
                    "Entra talks to the identity provider over HTTPS only",
                );
                ok = false;
            }
        }
        let mut certificates = Vec::new();
        let mut certs_b64 = Vec::new();
        for (name, value) in [
            ("signingCertificate", Some(&f.signing_certificate)),
            (
                "nextSigningCertificate",
                f.next_signing_certificate.as_ref(),
            ),
        ] {
            let Some(text) = value else { continue };
            match parse_certificate(text) {
                Ok(c) => {
                    certificates.push(CertificateInfo {
                        property: name,
                        subject: c.subject,
                        not_after: c.not_after,
                        location: locate(&at(Some(name)), false),
                    });
                    certs_b64.push((name, c.base64));
                }
                Err(why) => {
                    err(
                        Some(name),
                        "invalid-signing-certificate",
                        format!("the certificate {why}"),
                        "export the token-signing certificate as DER and give its base64 (AD FS: Get-AdfsCertificate -CertificateType Token-Signing)",
                    );
                    ok = false;
                }
            }
        }
        if !ok {
            continue;
        }
        let mut properties = Map::new();
        let mut put = |k: &str, v: Value| {
            properties.insert(k.to_string(), v);
        };
        if let Some(v) = &f.display_name {
            put("displayName", Value::String(v.clone()));
        }
        put("issuerUri", Value::String(f.issuer_uri.clone()));
        put(
            "passiveSignInUri",
            Value::String(f.passive_sign_in_uri.clone()),
        );
        for (k, v) in [
            ("activeSignInUri", &f.active_sign_in_uri),
            ("signOutUri", &f.sign_out_uri),
            ("metadataExchangeUri", &f.metadata_exchange_uri),
        ] {
            if let Some(v) = v {
                put(k, Value::String(v.clone()));
            }
        }
        for (k, b64) in certs_b64 {
            put(k, Value::String(b64));
        }
        put(
            "preferredAuthenticationProtocol",
            graph_value(&f.preferred_authentication_protocol),
        );
        if let Some(v) = &f.federated_idp_mfa_behavior {
            put("federatedIdpMfaBehavior", graph_value(v));
        }
        if let Some(v) = &f.prompt_login_behavior {
            put("promptLoginBehavior", graph_value(v));
        }
        if let Some(v) = f.is_signed_authentication_request_required {
            put("isSignedAuthenticationRequestRequired", Value::Bool(v));
        }
        out.push(CompiledFederation {
            domain: lower,
            properties,
            certificates,
            location: locate(&base, true),
        });
    }
    (out, diags)
}

/// An enum as the string Graph uses for it.
fn graph_value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::load::{PolicyFile, load};

    const CERT: &str = include_str!("../../tests/data/federation/signing-2027.b64");

    fn load_str(text: &str) -> Result<crate::policy::LoadedPolicy, Vec<Diagnostic>> {
        load(
            "policy.yaml",
            &[PolicyFile {
                name: "policy.yaml".into(),
                text: format!("apiVersion: ad2entra/v1\n{text}"),
            }],
        )
    }

    fn section(extra: &str, cert: &str) -> String {
        format!(
            "federation:\n  corp.example.com:\n    issuerUri: http://sts.corp.example.com/adfs/services/trust\n    passiveSignInUri: https://sts.corp.example.com/adfs/ls/\n    signingCertificate: {cert}\n    preferredAuthenticationProtocol: wsFed\n{extra}"
        )
    }

    fn errors(text: &str) -> Vec<(String, u64, u64)> {
        match load_str(text) {
            Ok(_) => vec![],
            Err(d) => d
                .into_iter()
                .filter(Diagnostic::is_error)
                .map(|d| {
                    let l = d.location.unwrap_or(Location {
                        file: String::new(),
                        line: 0,
                        column: 0,
                    });
                    (d.code, l.line, l.column)
                })
                .collect(),
        }
    }

    #[test]
    fn a_good_section_compiles_to_graph_properties() {
        let p = load_str(&section(
            "    federatedIdpMfaBehavior: rejectMfaByFederatedIdp\n    isSignedAuthenticationRequestRequired: false\n    displayName: Corp AD FS\n",
            CERT.trim(),
        ))
        .unwrap();
        assert_eq!(p.federation.len(), 1);
        let f = &p.federation[0];
        assert_eq!(f.domain, "corp.example.com");
        assert_eq!(
            serde_json::Value::Object(f.properties.clone()),
            serde_json::json!({
                "displayName": "Corp AD FS",
                "issuerUri": "http://sts.corp.example.com/adfs/services/trust",
                "passiveSignInUri": "https://sts.corp.example.com/adfs/ls/",
                "signingCertificate": CERT.trim(),
                "preferredAuthenticationProtocol": "wsFed",
                "federatedIdpMfaBehavior": "rejectMfaByFederatedIdp",
                "isSignedAuthenticationRequestRequired": false,
            })
        );
        let c = &f.certificates[0];
        assert_eq!(c.not_after.to_rfc3339(), "2027-01-01T00:00:00+00:00");
        assert!(c.subject.contains("ADFS Signing"), "{}", c.subject);
        assert_eq!(c.location.as_ref().map(|l| l.line), Some(6));
    }

    #[test]
    fn a_folded_certificate_loses_its_whitespace() {
        let (a, b) = CERT.trim().split_at(100);
        let p = load_str(&section("", &format!(">-\n      {a}\n      {b}"))).unwrap();
        assert_eq!(
            p.federation[0].properties["signingCertificate"],
            serde_json::json!(CERT.trim())
        );
    }

    #[test]
    fn a_bad_certificate_is_reported_at_its_position() {
        assert_eq!(
            errors(&section("", "bm90IGEgY2VydGlmaWNhdGU=")),
            vec![("invalid-signing-certificate".to_string(), 6, 25)]
        );
        assert_eq!(
            errors(&section("", "'not base64 !'"))[0].0,
            "invalid-signing-certificate"
        );
        let pem = format!("\"-----BEGIN CERTIFICATE-----{}\"", CERT.trim());
        let e = load_str(&section("", &pem)).unwrap_err();
        assert!(
            e.iter()
                .any(|d| d.code == "invalid-signing-certificate" && d.message.contains("PEM")),
            "{e:?}"
        );
        assert_eq!(
            errors(&section("    nextSigningCertificate: AAAA\n", CERT.trim())),
            vec![("invalid-signing-certificate".to_string(), 8, 29)]
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused_with_positions() {
        assert_eq!(
            errors(&section(
                "    passiveSignInUrl: https://x.example.com/\n",
                CERT.trim()
            )),
            vec![("unknown-field".to_string(), 8, 5)]
        );
        assert_eq!(
            errors(&section(
                "    federatedIdpMfaBehavior: sometimes\n",
                CERT.trim()
            )),
            vec![("invalid-value".to_string(), 8, 30)]
        );
        let missing = "federation:\n  corp.example.com:\n    issuerUri: urn:x\n";
        let codes: Vec<String> = errors(missing).into_iter().map(|e| e.0).collect();
        assert!(codes.iter().all(|c| c == "missing-field"), "{codes:?}");
        assert_eq!(codes.len(), 3, "{codes:?}");
    }

    #[test]
    fn endpoints_and_domains_are_checked() {
        let http = section("", CERT.trim()).replace(
            "https://sts.corp.example.com/adfs/ls/",
            "http://sts.corp.example.com/adfs/ls/",
        );
        assert_eq!(
            errors(&http),
            vec![("invalid-federation-uri".to_string(), 5, 23)]
        );
        let issuer = section("", CERT.trim()).replace(
            "http://sts.corp.example.com/adfs/services/trust",
            "sts corp",
        );
        assert_eq!(errors(&issuer)[0].0, "invalid-federation-uri");
        let urn = section("", CERT.trim()).replace(
            "http://sts.corp.example.com/adfs/services/trust",
            "urn:uri:MySamlp2IDP",
        );
        assert!(errors(&urn).is_empty());
        let initial =
            section("", CERT.trim()).replace("corp.example.com:", "corp.onmicrosoft.com:");
        assert_eq!(
            errors(&initial),
            vec![("federation-initial-domain".to_string(), 3, 3)]
        );
        let local = section("", CERT.trim()).replace("corp.example.com:", "corp.local:");
        assert_eq!(errors(&local)[0].0, "non-routable-domain");
    }

    #[test]
    fn certificates_parse_or_say_why() {
        let c = parse_certificate(CERT).unwrap();
        assert_eq!(c.base64, CERT.trim());
        assert!(parse_certificate("").unwrap_err().contains("empty"));
        assert!(parse_certificate("AAAA").unwrap_err().contains("X.509"));
    }
}
