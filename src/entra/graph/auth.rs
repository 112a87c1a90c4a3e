//! OAuth 2.0 client-credentials tokens for Graph, following the Azure SDK environment
//! conventions (`AZURE_TENANT_ID`, `AZURE_CLIENT_ID` and one of `AZURE_CLIENT_SECRET`,
//! `AZURE_CLIENT_CERTIFICATE_PATH`, `AZURE_FEDERATED_TOKEN_FILE`).
//!
//! Tokens are cached and refreshed before they expire. Secrets are wrapped in [`Secret`]
//! so `Debug` output and logs never show them.

use super::error::GraphError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Default Microsoft Entra authority (public cloud).
pub const DEFAULT_AUTHORITY_HOST: &str = "https://login.microsoftonline.com";

pub use crate::secrets::Secret;

/// JWT signature algorithm for certificate assertions. Entra documents PS256 today and
/// accepted RS256 earlier; both carry `x5t#S256`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssertionAlg {
    Ps256,
    Rs256,
}

/// A certificate credential: the DER certificate (for its thumbprint) and the key.
pub struct CertificateCredential {
    cert_der: Vec<u8>,
    key: aws_lc_rs::rsa::KeyPair,
    alg: AssertionAlg,
}

impl fmt::Debug for CertificateCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateCredential")
            .field("x5t#S256", &self.thumbprint_s256())
            .field("key", &"***")
            .field("alg", &self.alg)
            .finish()
    }
}

impl CertificateCredential {
    /// Parses a PEM bundle holding a `CERTIFICATE` and an RSA private key (`PRIVATE KEY`
    /// PKCS#8 or `RSA PRIVATE KEY` PKCS#1), as `AZURE_CLIENT_CERTIFICATE_PATH` names.
    pub fn from_pem(pem_text: &[u8], alg: AssertionAlg) -> Result<Self, GraphError> {
        let blocks = pem::parse_many(pem_text)
            .map_err(|e| GraphError::Config(format!("certificate PEM: {e}")))?;
        let cert_der = blocks
            .iter()
            .find(|b| b.tag() == "CERTIFICATE")
            .map(|b| b.contents().to_vec())
            .ok_or_else(|| GraphError::Config("certificate PEM holds no CERTIFICATE".into()))?;
        let key = blocks
            .iter()
            .find_map(|b| match b.tag() {
                "PRIVATE KEY" => Some(aws_lc_rs::rsa::KeyPair::from_pkcs8(b.contents())),
                "RSA PRIVATE KEY" => Some(aws_lc_rs::rsa::KeyPair::from_der(b.contents())),
                _ => None,
            })
            .ok_or_else(|| GraphError::Config("certificate PEM holds no RSA private key".into()))?
            .map_err(|e| GraphError::Config(format!("certificate private key rejected: {e}")))?;
        Ok(Self { cert_der, key, alg })
    }

    /// base64url SHA-256 of the DER certificate: the `x5t#S256` header Entra matches
    /// against the uploaded certificate.
    pub fn thumbprint_s256(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(&self.cert_der))
    }

    /// A signed client assertion for `audience` (the token endpoint URL), valid 10 min.
    pub fn assertion(&self, client_id: &str, audience: &str) -> Result<Secret, GraphError> {
        let (alg_name, enc) = match self.alg {
            AssertionAlg::Ps256 => ("PS256", &aws_lc_rs::signature::RSA_PSS_SHA256),
            AssertionAlg::Rs256 => ("RS256", &aws_lc_rs::signature::RSA_PKCS1_SHA256),
        };
        let header = json!({"alg": alg_name, "typ": "JWT", "x5t#S256": self.thumbprint_s256()});
        let now = chrono::Utc::now().timestamp();
        let claims = json!({
            "aud": audience,
            "iss": client_id,
            "sub": client_id,
            "jti": uuid::Uuid::new_v4().to_string(),
            "nbf": now - 60,
            "iat": now,
            "exp": now + 600,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let mut sig = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign(enc, &rng, signing_input.as_bytes(), &mut sig)
            .map_err(|_| GraphError::Config("signing the client assertion failed".into()))?;
        Ok(Secret::new(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(sig)
        )))
    }
}

/// How the app proves who it is.
#[derive(Debug)]
pub enum Credential {
    /// `AZURE_CLIENT_SECRET`.
    ClientSecret(Secret),
    /// `AZURE_CLIENT_CERTIFICATE_PATH`: a signed JWT assertion per token request.
    Certificate(Box<CertificateCredential>),
    /// `AZURE_FEDERATED_TOKEN_FILE`: the file's JWT (re-read each time; Kubernetes
    /// rotates it) is the client assertion.
    FederatedTokenFile(PathBuf),
}

/// Who to ask for tokens and as whom.
#[derive(Debug)]
pub struct AuthConfig {
    pub tenant_id: String,
    pub client_id: String,
    pub credential: Credential,
    /// `AZURE_AUTHORITY_HOST`, default [`DEFAULT_AUTHORITY_HOST`].
    pub authority_host: String,
    /// The `.default` scope of the Graph resource.
    pub scope: String,
}

impl AuthConfig {
    /// Client-secret credentials for the built-in Graph emulator: the demo, tests, and
    /// trying a policy against a fake tenant all connect this way.
    pub fn for_emulator(
        emu: &graph_emulator::Emulator,
        cfg: &graph_emulator::EmulatorConfig,
    ) -> Self {
        Self {
            tenant_id: cfg.tenant_id.clone(),
            client_id: cfg.client_id.clone(),
            credential: Credential::ClientSecret(Secret::new(
                cfg.client_secret.clone().unwrap_or_default(),
            )),
            authority_host: emu.authority_url().trim_end_matches('/').to_string(),
            scope: super::default_scope(&emu.base_url()),
        }
    }

    /// Reads the Azure SDK environment variables (see the module docs). The secret
    /// wins over the certificate, which wins over the federated token file, as in the
    /// Azure SDK's `EnvironmentCredential`.
    pub fn from_env(scope: String) -> Result<Self, GraphError> {
        Self::from_lookup(scope, |k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    /// [`AuthConfig::from_env`] over any variable lookup (testable).
    pub fn from_lookup(
        scope: String,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, GraphError> {
        let need = |k: &str| get(k).ok_or_else(|| GraphError::Config(format!("{k} is not set")));
        let tenant_id = need("AZURE_TENANT_ID")?;
        let client_id = need("AZURE_CLIENT_ID")?;
        let credential = if let Some(s) = get("AZURE_CLIENT_SECRET") {
            Credential::ClientSecret(Secret::new(s))
        } else if let Some(p) = get("AZURE_CLIENT_CERTIFICATE_PATH") {
            let text = std::fs::read(&p)
                .map_err(|e| GraphError::Config(format!("reading certificate {p}: {e}")))?;
            Credential::Certificate(Box::new(CertificateCredential::from_pem(
                &text,
                AssertionAlg::Ps256,
            )?))
        } else if let Some(p) = get("AZURE_FEDERATED_TOKEN_FILE") {
            Credential::FederatedTokenFile(PathBuf::from(p))
        } else {
            return Err(GraphError::Config(
                "set one of AZURE_CLIENT_SECRET, AZURE_CLIENT_CERTIFICATE_PATH, AZURE_FEDERATED_TOKEN_FILE".into(),
            ));
        };
        let authority_host = get("AZURE_AUTHORITY_HOST")
            .unwrap_or_else(|| DEFAULT_AUTHORITY_HOST.to_string())
            .trim_end_matches('/')
            .to_string();
        Ok(Self {
            tenant_id,
            client_id,
            credential,
            authority_host,
            scope,
        })
    }

    /// `{authority}/{tenant}/oauth2/v2.0/token`.
    pub fn token_url(&self) -> String {
        format!(
            "{}/{}/oauth2/v2.0/token",
            self.authority_host.trim_end_matches('/'),
            self.tenant_id
        )
    }

    /// The form fields of one token request (pure; the assertion is freshly signed).
    pub fn token_form(&self) -> Result<Vec<(&'static str, Secret)>, GraphError> {
        let mut form = vec![
            ("grant_type", Secret::new("client_credentials")),
            ("client_id", Secret::new(self.client_id.clone())),
            ("scope", Secret::new(self.scope.clone())),
        ];
        const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
        match &self.credential {
            Credential::ClientSecret(s) => form.push(("client_secret", s.clone())),
            Credential::Certificate(c) => {
                form.push(("client_assertion_type", Secret::new(JWT_BEARER)));
                form.push((
                    "client_assertion",
                    c.assertion(&self.client_id, &self.token_url())?,
                ));
            }
            Credential::FederatedTokenFile(p) => {
                let jwt = std::fs::read_to_string(p).map_err(|e| {
                    GraphError::Config(format!("reading federated token {}: {e}", p.display()))
                })?;
                form.push(("client_assertion_type", Secret::new(JWT_BEARER)));
                form.push(("client_assertion", Secret::new(jwt.trim())));
            }
        }
        Ok(form)
    }
}

struct Cached {
    token: Secret,
    refresh_at: Instant,
}

/// Fetches and caches access tokens; one refresh at a time.
pub struct TokenProvider {
    http: reqwest::Client,
    config: AuthConfig,
    cache: Mutex<Option<Cached>>,
}

impl fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenProvider")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// When to refresh a token that lives `lifetime`: 5 minutes early, or at 80 % of short
/// lifetimes, so a request never leaves with a token about to expire.
pub fn refresh_after(lifetime: Duration) -> Duration {
    let early = Duration::from_secs(300);
    if lifetime > early * 2 {
        lifetime - early
    } else {
        lifetime.mul_f64(0.8)
    }
}

impl TokenProvider {
    /// A provider using `http` for the token endpoint.
    pub fn new(http: reqwest::Client, config: AuthConfig) -> Self {
        Self {
            http,
            config,
            cache: Mutex::new(None),
        }
    }

    /// The configuration (client id, tenant) this provider uses.
    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// Forgets the cached token (after a 401), so the next call fetches a new one.
    pub async fn invalidate(&self) {
        *self.cache.lock().await = None;
    }

    /// A valid access token, from the cache when it is not close to expiry.
    pub async fn token(&self) -> Result<Secret, GraphError> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref()
            && Instant::now() < c.refresh_at
        {
            return Ok(c.token.clone());
        }
        let mut last = None;
        for attempt in 0..4u32 {
            if attempt > 0 {
                tokio::time::sleep(super::http::backoff(attempt, Duration::from_millis(200))).await;
            }
            match self.fetch().await {
                Ok((token, lifetime)) => {
                    *cache = Some(Cached {
                        token: token.clone(),
                        refresh_at: Instant::now() + refresh_after(lifetime),
                    });
                    return Ok(token);
                }
                Err(e) if e.is_transient() => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| GraphError::Config("token retries exhausted".into())))
    }

    async fn fetch(&self) -> Result<(Secret, Duration), GraphError> {
        let url = self.config.token_url();
        let form: Vec<(&str, String)> = self
            .config
            .token_form()?
            .into_iter()
            .map(|(k, v)| (k, v.expose().to_string()))
            .collect();
        let resp = self
            .http
            .post(&url)
            .form(&form)
            .send()
            .await
            .map_err(|e| GraphError::Auth {
                client_id: self.config.client_id.clone(),
                tenant_id: self.config.tenant_id.clone(),
                status: 0,
                code: "transport".into(),
                description: super::http::describe_reqwest_error(&e),
            })?;
        let status = resp.status().as_u16();
        let body: serde_json::Value = resp.json().await.unwrap_or(serde_json::Value::Null);
        if status != 200 {
            let code = body
                .get("error")
                .and_then(|v| v.as_str())
                .unwrap_or("unknown")
                .to_string();
            // The first line of error_description holds the AADSTS code and text; the
            // rest is trace ids.
            let description = body
                .get("error_description")
                .and_then(|v| v.as_str())
                .and_then(|d| d.lines().next())
                .unwrap_or("")
                .to_string();
            return Err(GraphError::Auth {
                client_id: self.config.client_id.clone(),
                tenant_id: self.config.tenant_id.clone(),
                status,
                code,
                description,
            });
        }
        let token = body
            .get("access_token")
            .and_then(|v| v.as_str())
            .ok_or_else(|| GraphError::Auth {
                client_id: self.config.client_id.clone(),
                tenant_id: self.config.tenant_id.clone(),
                status,
                code: "invalid_response".into(),
                description: "token response without access_token".into(),
            })?;
        let expires_in = match body.get("expires_in") {
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            Some(serde_json::Value::String(s)) => s.parse().ok(),
            _ => None,
        }
        .unwrap_or(3599);
        Ok((Secret::new(token), Duration::from_secs(expires_in.max(1))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn secret_config_from_env_and_masked_debug() {
        let c = AuthConfig::from_lookup(
            "https://graph.microsoft.com/.default".into(),
            lookup(&[
                ("AZURE_TENANT_ID", "t1"),
                ("AZURE_CLIENT_ID", "c1"),
                ("AZURE_CLIENT_SECRET", "hunter2"),
                ("AZURE_AUTHORITY_HOST", "http://127.0.0.1:9/"),
            ]),
        )
        .unwrap();
        assert_eq!(c.token_url(), "http://127.0.0.1:9/t1/oauth2/v2.0/token");
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        let form = c.token_form().unwrap();
        assert!(
            form.iter()
                .any(|(k, v)| *k == "client_secret" && v.expose() == "hunter2")
        );
        assert!(!format!("{form:?}").contains("hunter2"));
    }

    #[test]
    fn missing_credential_is_config_error() {
        let e = AuthConfig::from_lookup(
            "s".into(),
            lookup(&[("AZURE_TENANT_ID", "t"), ("AZURE_CLIENT_ID", "c")]),
        )
        .unwrap_err();
        assert!(matches!(e, GraphError::Config(_)));
        assert!(!e.is_transient());
    }

    #[test]
    fn federated_token_file_is_the_assertion() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("token");
        std::fs::write(&p, "eyJhbGciOi.x.y\n").unwrap();
        let c = AuthConfig::from_lookup(
            "s".into(),
            lookup(&[
                ("AZURE_TENANT_ID", "t"),
                ("AZURE_CLIENT_ID", "c"),
                ("AZURE_FEDERATED_TOKEN_FILE", p.to_str().unwrap()),
            ]),
        )
        .unwrap();
        let form = c.token_form().unwrap();
        let a = form.iter().find(|(k, _)| *k == "client_assertion").unwrap();
        assert_eq!(a.1.expose(), "eyJhbGciOi.x.y");
    }

    #[test]
    fn refresh_happens_before_expiry() {
        assert_eq!(
            refresh_after(Duration::from_secs(3599)),
            Duration::from_secs(3299)
        );
        assert!(refresh_after(Duration::from_secs(10)) < Duration::from_secs(10));
    }

    #[test]
    fn certificate_assertion_is_signed_with_x5t_s256() {
        let pem = include_bytes!("../../../tests/data/test-client-cert.pem");
        for alg in [AssertionAlg::Ps256, AssertionAlg::Rs256] {
            let c = CertificateCredential::from_pem(pem, alg).unwrap();
            // openssl x509 -outform der | openssl dgst -sha256 -binary | base64url
            assert_eq!(
                c.thumbprint_s256(),
                "ONSXxvkV1udXYo-aqsvivi21MewzbEUGPvl2Xmv4qAI"
            );
            let jwt = c
                .assertion("client", "https://login/t/oauth2/v2.0/token")
                .unwrap();
            let parts: Vec<&str> = jwt.expose().split('.').collect();
            assert_eq!(parts.len(), 3);
            let header: serde_json::Value =
                serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
            assert_eq!(header["x5t#S256"], c.thumbprint_s256());
            let claims: serde_json::Value =
                serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
            assert_eq!(claims["iss"], "client");
            assert_eq!(claims["sub"], "client");
            assert_eq!(claims["aud"], "https://login/t/oauth2/v2.0/token");
            use aws_lc_rs::signature::KeyPair;
            let verify_alg: &dyn aws_lc_rs::signature::VerificationAlgorithm = match alg {
                AssertionAlg::Ps256 => &aws_lc_rs::signature::RSA_PSS_2048_8192_SHA256,
                AssertionAlg::Rs256 => &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
            };
            assert_eq!(
                header["alg"],
                if alg == AssertionAlg::Ps256 {
                    "PS256"
                } else {
                    "RS256"
                }
            );
            let pk = aws_lc_rs::signature::UnparsedPublicKey::new(
                verify_alg,
                c.key.public_key().as_ref().to_vec(),
            );
            let sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
            pk.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
                .expect("signature verifies");
            assert!(!format!("{c:?}").contains("PRIVATE"));
        }
    }
}
