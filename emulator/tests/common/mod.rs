//! Shared test helpers: an emulator with a token, and a client that checks every request and
//! response against the OpenAPI description unless told the request is deliberately invalid.
#![allow(dead_code)]

use graph_emulator::conformance::{check_request, check_response};
use graph_emulator::{Emulator, EmulatorConfig, ThrottleConfig};
use serde_json::{Value, json};

pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Option<Value>,
    pub text: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn json(&self) -> &Value {
        self.body.as_ref().expect("JSON body")
    }
    pub fn error_code(&self) -> &str {
        self.json()["error"]["code"].as_str().unwrap_or_default()
    }
    pub fn error_message(&self) -> &str {
        self.json()["error"]["message"].as_str().unwrap_or_default()
    }
}

pub struct Client {
    /// Shared, so a second app registration's client can talk to the same emulator.
    pub emu: std::sync::Arc<Emulator>,
    pub http: reqwest::Client,
    pub token: String,
}

/// Config used by most tests: throttling on but generous, time scaled.
pub fn test_config() -> EmulatorConfig {
    EmulatorConfig {
        throttling: ThrottleConfig {
            time_scale: 100.0,
            ..ThrottleConfig::default()
        },
        ..EmulatorConfig::default()
    }
}

pub async fn start() -> Client {
    start_with(test_config()).await
}

pub async fn start_with(cfg: EmulatorConfig) -> Client {
    let emu = Emulator::start(cfg.clone()).await.expect("start emulator");
    let http = reqwest::Client::new();
    let token = get_token(&http, &emu, &cfg).await;
    Client {
        emu: std::sync::Arc::new(emu),
        http,
        token,
    }
}

pub async fn get_token(http: &reqwest::Client, emu: &Emulator, cfg: &EmulatorConfig) -> String {
    let r = http
        .post(emu.token_url())
        .form(&[
            ("client_id", cfg.client_id.as_str()),
            ("scope", "https://graph.microsoft.com/.default"),
            (
                "client_secret",
                cfg.client_secret.as_deref().unwrap_or_default(),
            ),
            ("grant_type", "client_credentials"),
        ])
        .send()
        .await
        .expect("token request");
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("token json");
    v["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

impl Client {
    /// A request that must conform to the OpenAPI description, with a conforming response.
    pub async fn call(&self, method: &str, url: &str, body: Option<Value>) -> Resp {
        self.call_h(method, url, body, &[]).await
    }

    pub async fn call_h(
        &self,
        method: &str,
        url: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        if let Err(e) = check_request(method, url, body.as_ref()) {
            panic!("request {method} {url} does not conform:\n{e}");
        }
        let r = self.raw(method, url, body, headers).await;
        if let Err(e) = check_response(method, url, r.status, r.body.as_ref()) {
            panic!(
                "response to {method} {url} ({}) does not conform:\n{e}\n{}",
                r.status, r.text
            );
        }
        r
    }

    /// A request sent as is (for deliberately invalid requests); the response is still checked.
    pub async fn invalid(&self, method: &str, url: &str, body: Option<Value>) -> Resp {
        let r = self.raw(method, url, body, &[]).await;
        if r.status >= 400
            && let Err(e) = check_response(method, url, r.status, r.body.as_ref())
        {
            panic!(
                "error response to {method} {url} does not conform:\n{e}\n{}",
                r.text
            );
        }
        r
    }

    pub async fn raw(
        &self,
        method: &str,
        url: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let full = if url.starts_with("http") {
            url.to_string()
        } else {
            format!("{}{}", self.emu.base_url(), url)
        };
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut rb = self.http.request(m, &full).bearer_auth(&self.token);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.expect("send");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.expect("body");
        let body = serde_json::from_str(&text).ok();
        assert!(
            headers.get("request-id").is_some(),
            "every Graph response carries request-id"
        );
        Resp {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn create_user(&self, nick: &str) -> String {
        let r = self.call("POST", "/users", Some(user_body(nick))).await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.json()["id"].as_str().expect("id").to_string()
    }

    pub async fn create_group(&self, nick: &str) -> String {
        let r = self
            .call(
                "POST",
                "/groups",
                Some(json!({"displayName": format!("Group {nick}"), "mailEnabled": false, "mailNickname": nick, "securityEnabled": true})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.json()["id"].as_str().expect("id").to_string()
    }
}

pub fn user_body(nick: &str) -> Value {
    json!({
        "accountEnabled": true,
        "displayName": format!("User {nick}"),
        "mailNickname": nick,
        "userPrincipalName": format!("{nick}@corp.example.com"),
        "passwordProfile": {"forceChangePasswordNextSignIn": true, "password": "xWwvJ]6NMw+bWH-d"}
    })
}

pub fn sample(name: &str) -> Value {
    let path = format!("{}/tests/data/samples/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Sorted key names of a JSON object.
pub fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    k.sort();
    k
}
