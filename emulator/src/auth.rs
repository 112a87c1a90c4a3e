//! The Microsoft identity platform token endpoint (client credentials with a client secret or a
//! JWT client assertion signed RS256/PS256) and validation of the bearer tokens it issues.
//!
//! Issued access tokens are JWTs (HS256 with a per-instance key) whose `uti` claim is looked up
//! in a server-side table holding the exact expiry instant, so lifetimes shorter than a second
//! work in tests.

use crate::config::EmulatorConfig;
use crate::errors::GraphError;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha1::Digest as _;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// The only scope the emulator issues tokens for.
pub const GRAPH_DEFAULT_SCOPE: &str = "https://graph.microsoft.com/.default";
const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A refused token request: HTTP status and the AADSTS error body.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenError {
    /// 400 or 401.
    pub status: u16,
    /// OAuth error (`invalid_client`, `invalid_scope`, ...).
    pub error: &'static str,
    /// AADSTS number.
    pub code: u32,
    /// Description without the trace suffix.
    pub description: String,
}

impl TokenError {
    fn new(status: u16, error: &'static str, code: u32, description: impl Into<String>) -> Self {
        TokenError {
            status,
            error,
            code,
            description: description.into(),
        }
    }

    /// Body in the shape of samples/token-error-400.json.
    pub fn body(&self) -> Value {
        let trace = uuid::Uuid::new_v4().to_string();
        let correlation = uuid::Uuid::new_v4().to_string();
        let ts = chrono::Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string();
        json!({
            "error": self.error,
            "error_description": format!(
                "AADSTS{}: {}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: {ts}",
                self.code, self.description
            ),
            "error_codes": [self.code],
            "timestamp": ts,
            "trace_id": trace,
            "correlation_id": correlation,
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct AccessClaims {
    aud: String,
    iss: String,
    iat: i64,
    nbf: i64,
    exp: i64,
    appid: String,
    tid: String,
    roles: Vec<String>,
    uti: String,
}

#[derive(Debug, Deserialize)]
struct AssertionClaims {
    #[allow(dead_code)]
    aud: Value,
}

/// The application a valid access token was issued to, and the application permissions
/// (`roles`) it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The client (application) id.
    pub app_id: String,
    /// Application permissions granted when the token was issued.
    pub roles: Vec<String>,
}

/// Issues and validates access tokens.
#[derive(Debug, Clone)]
pub struct TokenIssuer {
    key: Vec<u8>,
    issued: HashMap<String, Instant>,
}

impl Default for TokenIssuer {
    fn default() -> Self {
        let key: [u8; 32] = rand::random();
        TokenIssuer {
            key: key.to_vec(),
            issued: HashMap::new(),
        }
    }
}

/// Form fields of a token request.
pub type Form = Vec<(String, String)>;

fn field<'a>(form: &'a Form, name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

impl TokenIssuer {
    /// Handles `POST /{tenant}/oauth2/v2.0/token`; `authority` is the emulator's base URL and
    /// `basic` the decoded HTTP Basic credentials if any.
    pub fn token(
        &mut self,
        cfg: &EmulatorConfig,
        authority: &str,
        tenant: &str,
        form: &Form,
        basic: Option<(String, String)>,
    ) -> Result<Value, TokenError> {
        let tenant_known = tenant.eq_ignore_ascii_case(&cfg.tenant_id)
            || cfg
                .domains
                .iter()
                .any(|d| d.is_verified && d.id.eq_ignore_ascii_case(tenant));
        if !tenant_known {
            return Err(TokenError::new(
                400,
                "invalid_request",
                90002,
                format!(
                    "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
                ),
            ));
        }
        match field(form, "grant_type") {
            Some("client_credentials") => {}
            Some(other) => {
                return Err(TokenError::new(
                    400,
                    "unsupported_grant_type",
                    70003,
                    format!("The app requested an unsupported grant type '{other}'."),
                ));
            }
            None => {
                return Err(TokenError::new(
                    400,
                    "invalid_request",
                    900144,
                    "The request body must contain the following parameter: 'grant_type'.",
                ));
            }
        }
        let (client_id, basic_secret) = match (&basic, field(form, "client_id")) {
            (Some((id, secret)), _) => (id.clone(), Some(secret.clone())),
            (None, Some(id)) => (id.to_string(), None),
            (None, None) => {
                return Err(TokenError::new(
                    400,
                    "invalid_request",
                    900144,
                    "The request body must contain the following parameter: 'client_id'.",
                ));
            }
        };
        let scope = field(form, "scope").unwrap_or_default();
        if scope.is_empty() {
            return Err(TokenError::new(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'scope'.",
            ));
        }
        if scope != GRAPH_DEFAULT_SCOPE {
            return Err(TokenError::new(
                400,
                "invalid_scope",
                70011,
                format!(
                    "The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
                ),
            ));
        }
        if let Some(extra) = cfg
            .additional_clients
            .iter()
            .find(|c| c.client_id.eq_ignore_ascii_case(&client_id))
        {
            let secret = basic_secret.or_else(|| field(form, "client_secret").map(str::to_string));
            if secret.as_deref() != Some(extra.client_secret.as_str()) {
                return Err(TokenError::new(
                    401,
                    "invalid_client",
                    7000215,
                    format!(
                        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                        extra.client_id
                    ),
                ));
            }
            return Ok(self.issue(cfg, &extra.client_id, &extra.permissions));
        }
        if !client_id.eq_ignore_ascii_case(&cfg.client_id) {
            return Err(TokenError::new(
                400,
                "unauthorized_client",
                700016,
                format!(
                    "Application with identifier '{client_id}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.",
                    cfg.tenant_display_name
                ),
            ));
        }
        let secret = basic_secret.or_else(|| field(form, "client_secret").map(str::to_string));
        let assertion = field(form, "client_assertion");
        match (secret, assertion) {
            (Some(s), _) => {
                if cfg.client_secret.as_deref() != Some(s.as_str()) {
                    return Err(TokenError::new(
                        401,
                        "invalid_client",
                        7000215,
                        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'.".replace("{client_id}", &cfg.client_id),
                    ));
                }
            }
            (None, Some(a)) => {
                if field(form, "client_assertion_type") != Some(CLIENT_ASSERTION_TYPE) {
                    return Err(TokenError::new(
                        400,
                        "invalid_request",
                        50027,
                        "Invalid client_assertion_type; expected urn:ietf:params:oauth:client-assertion-type:jwt-bearer.",
                    ));
                }
                verify_assertion(cfg, authority, tenant, a)?;
            }
            (None, None) => {
                return Err(TokenError::new(
                    401,
                    "invalid_client",
                    7000218,
                    "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
                ));
            }
        }
        Ok(self.issue(cfg, &cfg.client_id, &cfg.permissions))
    }

    fn issue(&mut self, cfg: &EmulatorConfig, client_id: &str, roles: &[String]) -> Value {
        let now = chrono::Utc::now().timestamp();
        let lifetime = cfg.token_lifetime_secs;
        let uti = uuid::Uuid::new_v4().simple().to_string();
        let claims = AccessClaims {
            aud: "https://graph.microsoft.com".into(),
            iss: format!("https://sts.windows.net/{}/", cfg.tenant_id),
            iat: now,
            nbf: now,
            exp: now + lifetime.ceil() as i64,
            appid: client_id.to_string(),
            tid: cfg.tenant_id.clone(),
            roles: roles.to_vec(),
            uti: uti.clone(),
        };
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&self.key),
        )
        .unwrap_or_default();
        let now_i = Instant::now();
        self.issued.retain(|_, exp| *exp > now_i);
        self.issued
            .insert(uti, now_i + Duration::from_secs_f64(lifetime));
        json!({
            "token_type": "Bearer",
            "expires_in": lifetime.floor() as u64,
            "access_token": token,
        })
    }

    /// Validates an `Authorization` header value and says who called; errors are Graph 401s.
    pub fn validate(&self, authorization: Option<&str>) -> Result<Caller, GraphError> {
        let Some(h) = authorization.filter(|h| !h.trim().is_empty()) else {
            return Err(GraphError::unauthorized("Access token is empty."));
        };
        let token = h
            .strip_prefix("Bearer ")
            .or_else(|| h.strip_prefix("bearer "))
            .ok_or_else(|| {
                GraphError::unauthorized(
                    "Access token validation failure. Invalid authorization scheme.",
                )
            })?
            .trim();
        if token.matches('.').count() != 2 {
            return Err(GraphError::unauthorized(
                "IDX14100: JWT is not well formed, there are no dots (.).",
            ));
        }
        let mut v = Validation::new(Algorithm::HS256);
        v.validate_exp = false;
        v.required_spec_claims = HashSet::new();
        v.set_audience(&["https://graph.microsoft.com"]);
        let data =
            jsonwebtoken::decode::<AccessClaims>(token, &DecodingKey::from_secret(&self.key), &v)
                .map_err(|_| {
                GraphError::unauthorized(
                    "Access token validation failure. Invalid audience or signature.",
                )
            })?;
        match self.issued.get(&data.claims.uti) {
            Some(exp) if *exp > Instant::now() => Ok(Caller {
                app_id: data.claims.appid,
                roles: data.claims.roles,
            }),
            Some(_) => Err(GraphError::unauthorized(
                "Lifetime validation failed, the token is expired.",
            )),
            None => Err(GraphError::unauthorized(
                "Lifetime validation failed, the token is expired.",
            )),
        }
    }
}

fn verify_assertion(
    cfg: &EmulatorConfig,
    authority: &str,
    tenant: &str,
    assertion: &str,
) -> Result<(), TokenError> {
    let invalid =
        |code: u32, msg: &str| TokenError::new(401, "invalid_client", code, msg.to_string());
    let Some(pem_text) = cfg.client_certificate_pem.as_deref() else {
        return Err(invalid(
            700027,
            "Client assertion failed signature validation. [Reason - The key was not found.]",
        ));
    };
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| {
        TokenError::new(
            400,
            "invalid_request",
            50027,
            "JWT token is invalid or malformed.",
        )
    })?;
    if !matches!(header.alg, Algorithm::RS256 | Algorithm::PS256) {
        return Err(invalid(
            5002738,
            "Invalid JWT token. 'alg' must be RS256 or PS256.",
        ));
    }
    let key = DecodingKey::from_rsa_pem(pem_text.as_bytes())
        .map_err(|_| invalid(700027, "The configured certificate could not be read."))?;
    if let Ok(p) = pem::parse(pem_text)
        && p.tag() == "CERTIFICATE"
    {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let sha1 = b64.encode(sha1::Sha1::digest(p.contents()));
        let sha256 = b64.encode(sha2::Sha256::digest(p.contents()));
        let strip = |s: &str| s.trim_end_matches('=').replace('+', "-").replace('/', "_");
        let t1 = header.x5t.as_deref().map(strip);
        let t256 = header.x5t_s256.as_deref().map(strip);
        if t1.is_none() && t256.is_none() {
            return Err(invalid(
                700027,
                "Client assertion contains an invalid signature. [Reason - The key was not found., Thumbprint of key used by client: '']",
            ));
        }
        if t1.is_some_and(|t| t != sha1) || t256.is_some_and(|t| t != sha256) {
            return Err(invalid(
                700027,
                "Client assertion contains an invalid signature. [Reason - The key was not found.]",
            ));
        }
    }
    let mut v = Validation::new(header.alg);
    v.leeway = 0;
    v.validate_nbf = true;
    v.required_spec_claims = ["exp", "aud", "iss", "sub"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let auds: Vec<String> = [authority, "https://login.microsoftonline.com"]
        .iter()
        .flat_map(|base| {
            let base = base.trim_end_matches('/');
            [cfg.tenant_id.as_str(), tenant]
                .into_iter()
                .flat_map(move |t| {
                    [
                        format!("{base}/{t}/oauth2/v2.0/token"),
                        format!("{base}/{t}/oauth2/token"),
                        format!("{base}/{t}/v2.0"),
                    ]
                })
        })
        .collect();
    v.set_audience(&auds);
    v.set_issuer(&[cfg.client_id.as_str()]);
    v.sub = Some(cfg.client_id.clone());
    use jsonwebtoken::errors::ErrorKind;
    match jsonwebtoken::decode::<AssertionClaims>(assertion, &key, &v) {
        Ok(_) => Ok(()),
        Err(e) => Err(match e.kind() {
            ErrorKind::InvalidSignature => {
                invalid(700027, "Client assertion failed signature validation.")
            }
            ErrorKind::ExpiredSignature | ErrorKind::ImmatureSignature => invalid(
                700024,
                "Client assertion is not within its valid time range.",
            ),
            ErrorKind::InvalidAudience => invalid(
                700212,
                "The audience claim of the client assertion is not the token endpoint of this tenant.",
            ),
            ErrorKind::InvalidIssuer | ErrorKind::InvalidSubject => invalid(
                700021,
                "Client assertion application identifier doesn't match 'client_id' parameter.",
            ),
            ErrorKind::MissingRequiredClaim(c) => invalid(
                50027,
                &format!("JWT token is invalid: the '{c}' claim is missing."),
            ),
            _ => TokenError::new(
                400,
                "invalid_request",
                50027,
                "JWT token is invalid or malformed.",
            ),
        }),
    }
}
