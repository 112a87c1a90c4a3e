//! Token endpoint (secret and certificate assertions), token expiry, throttling with time scale,
//! and fault injection (errors, latency, replication lag, dropped connections).

mod common;
use base64::Engine;
use common::*;
use graph_emulator::{BucketConfig, EmulatorConfig, FaultConfig, ThrottleConfig};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sha2::Digest;
use std::time::{Duration, Instant};

fn data(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn cert_config() -> EmulatorConfig {
    EmulatorConfig {
        client_certificate_pem: Some(data("test-client-cert.pem")),
        ..test_config()
    }
}

fn assertion(
    cfg: &EmulatorConfig,
    aud: &str,
    alg: Algorithm,
    key_file: &str,
    exp_offset: i64,
    iss: &str,
) -> String {
    let der = pem::parse(data("test-client-cert.pem")).unwrap();
    let mut h = Header::new(alg);
    h.x5t_s256 = Some(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(der.contents())),
    );
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"aud": aud, "iss": iss, "sub": cfg.client_id, "jti": uuid::Uuid::new_v4().to_string(), "nbf": now - 5, "iat": now - 5, "exp": now + exp_offset});
    jsonwebtoken::encode(
        &h,
        &claims,
        &EncodingKey::from_rsa_pem(data(key_file).as_bytes()).unwrap(),
    )
    .unwrap()
}

async fn token_req(http: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = http.post(url).form(form).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn client_secret_and_token_errors() {
    let c = start().await;
    let cfg = c.emu.config();
    let http = &c.http;
    let url = c.emu.token_url();
    let (st, v) = token_req(
        http,
        &url,
        &[
            ("client_id", &cfg.client_id),
            ("scope", "https://graph.microsoft.com/.default"),
            ("client_secret", "emulator-secret"),
            ("grant_type", "client_credentials"),
        ],
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(keys(&v), keys(&sample("token-response-200.json")));
    assert_eq!(v["token_type"], json!("Bearer"));
    // Wrong scope: the sample's error.
    let (st, v) = token_req(
        http,
        &url,
        &[
            ("client_id", &cfg.client_id),
            ("scope", "https://foo.microsoft.com/.default"),
            ("client_secret", "emulator-secret"),
            ("grant_type", "client_credentials"),
        ],
    )
    .await;
    let s = sample("token-error-400.json");
    assert_eq!((st, &v["error"]), (400, &s["error"]));
    assert_eq!(keys(&v), keys(&s));
    assert!(v["error_description"].as_str().unwrap().starts_with(
        "AADSTS70011: The provided value for the input parameter 'scope' is not valid."
    ));
    // Wrong secret, unknown client, unknown tenant.
    let (st, v) = token_req(
        http,
        &url,
        &[
            ("client_id", &cfg.client_id),
            ("scope", "https://graph.microsoft.com/.default"),
            ("client_secret", "nope"),
            ("grant_type", "client_credentials"),
        ],
    )
    .await;
    assert_eq!((st, v["error"].as_str()), (401, Some("invalid_client")));
    let (st, v) = token_req(
        http,
        &url,
        &[
            ("client_id", "00000000-0000-0000-0000-000000000009"),
            ("scope", "https://graph.microsoft.com/.default"),
            ("client_secret", "emulator-secret"),
            ("grant_type", "client_credentials"),
        ],
    )
    .await;
    assert_eq!((st, v["error_codes"][0].as_u64()), (400, Some(700016)));
    let other = format!(
        "{}/other.example.com/oauth2/v2.0/token",
        c.emu.authority_url()
    );
    let (st, v) = token_req(
        http,
        &other,
        &[
            ("client_id", &cfg.client_id),
            ("scope", "https://graph.microsoft.com/.default"),
            ("client_secret", "emulator-secret"),
            ("grant_type", "client_credentials"),
        ],
    )
    .await;
    assert_eq!((st, v["error_codes"][0].as_u64()), (400, Some(90002)));
    // Tenant by verified domain and HTTP Basic credentials.
    let by_domain = format!(
        "{}/corp.example.com/oauth2/v2.0/token",
        c.emu.authority_url()
    );
    let r = http
        .post(&by_domain)
        .basic_auth(&cfg.client_id, Some("emulator-secret"))
        .form(&[
            ("scope", "https://graph.microsoft.com/.default"),
            ("grant_type", "client_credentials"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Graph without or with a forged token.
    let r = c
        .http
        .get(format!("{}/users", c.emu.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], json!("InvalidAuthenticationToken"));
    let r = c
        .http
        .get(format!("{}/users", c.emu.base_url()))
        .bearer_auth("eyJ0eXAiOiJKV1QifQ.eyJ4IjoxfQ.c2ln")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(c.emu.stats().unauthorized, 2);
}

#[tokio::test]
async fn issued_tokens_expire() {
    let mut cfg = test_config();
    // Long enough that a loaded machine still uses the token before it expires (0.3 s
    // failed under load: the first call came after the token's end).
    cfg.token_lifetime_secs = 3.0;
    let c = start_with(cfg).await;
    assert_eq!(c.call("GET", "/domains", None).await.status, 200);
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let r = c.call("GET", "/domains", None).await;
    assert_eq!(
        (r.status, r.error_code()),
        (401, "InvalidAuthenticationToken")
    );
    assert_eq!(
        r.error_message(),
        "Lifetime validation failed, the token is expired."
    );
}

#[tokio::test]
async fn certificate_assertions() {
    let cfg = cert_config();
    let emu = graph_emulator::Emulator::start(cfg.clone()).await.unwrap();
    let http = reqwest::Client::new();
    let url = emu.token_url();
    let aud = url.clone();
    let form = |a: &str| {
        vec![
            ("client_id".to_string(), cfg.client_id.clone()),
            (
                "scope".to_string(),
                "https://graph.microsoft.com/.default".to_string(),
            ),
            (
                "client_assertion_type".to_string(),
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_string(),
            ),
            ("client_assertion".to_string(), a.to_string()),
            ("grant_type".to_string(), "client_credentials".to_string()),
        ]
    };
    let send = |a: String| {
        let http = http.clone();
        let url = url.clone();
        let f = form(&a);
        async move {
            let r = http.post(&url).form(&f).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    for alg in [Algorithm::RS256, Algorithm::PS256] {
        let (st, v) = send(assertion(
            &cfg,
            &aud,
            alg,
            "test-client-key.pem",
            300,
            &cfg.client_id,
        ))
        .await;
        assert_eq!(st, 200, "{alg:?}: {v}");
    }
    // login.microsoftonline.com audience accepted too.
    let ms_aud = format!(
        "https://login.microsoftonline.com/{}/oauth2/v2.0/token",
        cfg.tenant_id
    );
    assert_eq!(
        send(assertion(
            &cfg,
            &ms_aud,
            Algorithm::RS256,
            "test-client-key.pem",
            300,
            &cfg.client_id
        ))
        .await
        .0,
        200
    );
    // Wrong key, expired, wrong audience, wrong issuer.
    let (st, v) = send(assertion(
        &cfg,
        &aud,
        Algorithm::RS256,
        "other-key.pem",
        300,
        &cfg.client_id,
    ))
    .await;
    assert_eq!((st, v["error_codes"][0].as_u64()), (401, Some(700027)));
    let (st, v) = send(assertion(
        &cfg,
        &aud,
        Algorithm::RS256,
        "test-client-key.pem",
        -10,
        &cfg.client_id,
    ))
    .await;
    assert_eq!((st, v["error_codes"][0].as_u64()), (401, Some(700024)));
    let (st, _) = send(assertion(
        &cfg,
        "https://example.com/token",
        Algorithm::RS256,
        "test-client-key.pem",
        300,
        &cfg.client_id,
    ))
    .await;
    assert_eq!(st, 401);
    let (st, v) = send(assertion(
        &cfg,
        &aud,
        Algorithm::RS256,
        "test-client-key.pem",
        300,
        "someone-else",
    ))
    .await;
    assert_eq!((st, v["error_codes"][0].as_u64()), (401, Some(700021)));
    let (st, _) = send("not.a.jwt".into()).await;
    assert_eq!(st, 400);
    emu.shutdown().await;
}

#[tokio::test]
async fn write_throttling_with_time_scale() {
    let mut cfg = test_config();
    cfg.throttling = ThrottleConfig {
        writes_per_150s: 3,
        time_scale: 1000.0,
        ..ThrottleConfig::default()
    };
    let c = start_with(cfg).await;
    for i in 0..3 {
        c.create_user(&format!("t{i}")).await;
    }
    let r = c.call("POST", "/users", Some(user_body("t3"))).await;
    assert_eq!(r.status, 429);
    let s = sample("throttled-429.json");
    assert_eq!(keys(r.json()), keys(&s));
    assert_eq!(keys(&r.json()["error"]), keys(&s["error"]));
    assert_eq!(
        keys(&r.json()["error"]["innerError"]),
        keys(&s["error"]["innerError"])
    );
    assert_eq!(r.error_code(), "TooManyRequests");
    let secs: f64 = r.header("retry-after").unwrap().parse().unwrap();
    let ms: u64 = r.header("retry-after-ms").unwrap().parse().unwrap();
    assert!(
        secs > 0.0 && secs < 1.0,
        "scaled Retry-After is fractional: {secs}"
    );
    assert!((1..=51).contains(&ms), "{ms}");
    assert!(
        r.header("x-ms-throttle-scope")
            .unwrap()
            .starts_with("Tenant_Application/Write/")
    );
    // Reads still pass (separate bucket); after Retry-After the write passes.
    assert_eq!(c.call("GET", "/domains", None).await.status, 200);
    tokio::time::sleep(Duration::from_millis(ms + 5)).await;
    assert_eq!(
        c.call("POST", "/users", Some(user_body("t3"))).await.status,
        201
    );
    // Inner batch requests are charged individually.
    let reqs: Vec<Value> = (0..3).map(|i| json!({"id": i.to_string(), "method": "POST", "url": "/users", "headers": {"Content-Type": "application/json"}, "body": user_body(&format!("bt{i}"))})).collect();
    let r = c
        .call("POST", "/$batch", Some(json!({"requests": reqs})))
        .await;
    assert_eq!(r.status, 200);
    let statuses: Vec<u64> = r.json()["responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["status"].as_u64().unwrap())
        .collect();
    assert!(statuses.contains(&429), "{statuses:?}");
    let throttled = r.json()["responses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["status"] == json!(429))
        .unwrap()
        .clone();
    assert!(throttled["headers"]["Retry-After"].is_string());
    assert!(c.emu.stats().throttled >= 2);
}

#[tokio::test]
async fn unscaled_retry_after_is_whole_seconds_and_ru_quota_applies() {
    let mut cfg = test_config();
    cfg.throttling = ThrottleConfig {
        resource_units_per_10s: Some(4),
        ..ThrottleConfig::default()
    };
    let c = start_with(cfg).await;
    assert_eq!(c.call("GET", "/users", None).await.status, 200); // 2 RU
    assert_eq!(c.call("GET", "/users", None).await.status, 200); // 2 RU
    let r = c.call("GET", "/users", None).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("5"));
    assert!(r.header("retry-after-ms").is_none());
    assert_eq!(
        r.header("x-ms-throttle-information"),
        Some("ResourceUnitLimitExceeded")
    );
    // Switch the scale at runtime through the control plane.
    let resp = c
        .http
        .post(format!("{}/_emulator/config", c.emu.authority_url()))
        .json(&json!({"timeScale": 1000.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(c.call("GET", "/users", None).await.status, 200);
}

/// A config whose app+tenant write bucket is `size` writes refilled over `window_secs`.
fn write_bucket(size: u32, window_secs: f64, time_scale: f64) -> EmulatorConfig {
    let mut cfg = test_config();
    cfg.throttling = ThrottleConfig {
        time_scale,
        app_write_bucket: Some(BucketConfig { size, window_secs }),
        ..ThrottleConfig::default()
    };
    cfg
}

#[tokio::test]
async fn write_bucket_size_and_window_are_set_apart() {
    // A tenth of the documented burst at the documented rate: 300 per 15 s, i.e. 20/s.
    // Unscaled, a write refused on an empty bucket waits 1/20 s, rounded up to 1 s.
    let c = start_with(write_bucket(3, 0.15, 1.0)).await;
    for i in 0..3 {
        c.create_user(&format!("w{i}")).await;
    }
    let r = c.call("POST", "/users", Some(user_body("w3"))).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("1"));
    // The same size over the documented window: 3 per 150 s, a write every 50 s.
    let c = start_with(write_bucket(3, 150.0, 1.0)).await;
    for i in 0..3 {
        c.create_user(&format!("w{i}")).await;
    }
    let r = c.call("POST", "/users", Some(user_body("w3"))).await;
    assert_eq!(r.status, 429);
    let secs: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((49..=50).contains(&secs), "{secs}");
    // An invalid bucket is refused by the control plane.
    let resp = c
        .http
        .post(format!("{}/_emulator/config", c.emu.authority_url()))
        .json(&json!({"throttling": {"appWriteBucket": {"size": 0, "windowSecs": 1.0}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn resource_unit_bucket_overrides_the_size_class() {
    let mut cfg = test_config();
    cfg.throttling = ThrottleConfig {
        time_scale: 1.0,
        resource_unit_bucket: Some(BucketConfig {
            size: 5,
            window_secs: 50.0,
        }),
        ..ThrottleConfig::default()
    };
    let c = start_with(cfg).await;
    assert_eq!(c.call("GET", "/users", None).await.status, 200); // 2 RU
    assert_eq!(c.call("GET", "/users", None).await.status, 200); // 2 RU
    let r = c.call("GET", "/users", None).await;
    assert_eq!(r.status, 429);
    assert_eq!(
        r.header("x-ms-throttle-information"),
        Some("ResourceUnitLimitExceeded")
    );
    // One unit left, one missing: 10 s per unit at 5 per 50 s.
    assert_eq!(r.header("retry-after"), Some("10"));
}

#[tokio::test]
async fn limit_percentage_is_sent_above_080_of_a_limit() {
    let c = start_with(write_bucket(10, 1500.0, 1.0)).await;
    let mut seen = Vec::new();
    for i in 0..10 {
        let r = c
            .call("POST", "/users", Some(user_body(&format!("p{i}"))))
            .await;
        assert_eq!(r.status, 201);
        assert_eq!(r.header("x-ms-resource-unit"), Some("1"));
        seen.push(
            r.header("x-ms-throttle-limit-percentage")
                .map(|v| v.parse::<f64>().unwrap()),
        );
    }
    assert!(seen[..8].iter().all(Option::is_none), "{seen:?}");
    assert_eq!(seen[8], Some(0.9));
    assert_eq!(seen[9], Some(1.0));
    // Inner responses of a batch carry it too.
    let c2 = start_with(write_bucket(5, 1500.0, 1.0)).await;
    let reqs: Vec<Value> = (0..5).map(|i| json!({"id": i.to_string(), "method": "POST", "url": "/users", "headers": {"Content-Type": "application/json"}, "body": user_body(&format!("bp{i}"))})).collect();
    let r = c2
        .call("POST", "/$batch", Some(json!({"requests": reqs})))
        .await;
    let last = r.json()["responses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == json!("4"))
        .unwrap()
        .clone();
    assert_eq!(
        last["headers"]["x-ms-throttle-limit-percentage"],
        json!("1.000")
    );
}

#[tokio::test]
async fn requests_before_a_retry_after_instant_are_counted_early() {
    // 2 writes per 20 s scaled ×10: a refused write waits 1 s (Retry-After-Ms 1000).
    let c = start_with(write_bucket(2, 20.0, 10.0)).await;
    c.create_user("e0").await;
    c.create_user("e1").await;
    let r = c.call("POST", "/users", Some(user_body("e2"))).await;
    assert_eq!(r.status, 429);
    let ms: u64 = r.header("retry-after-ms").unwrap().parse().unwrap();
    assert!((900..=1000).contains(&ms), "{ms}");
    assert_eq!(
        c.emu.stats().early_requests,
        0,
        "the 429 itself is not early"
    );
    // Any request of the app counts, reads too: the budget is the app's.
    assert_eq!(c.call("GET", "/domains", None).await.status, 200);
    assert_eq!(
        c.call("POST", "/users", Some(user_body("e2"))).await.status,
        429
    );
    let stats = c.emu.stats();
    assert_eq!(stats.early_requests, 2);
    // Exposed on the admin endpoint as well.
    let admin: Value = c
        .http
        .get(format!("{}/_emulator/stats", c.emu.authority_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(admin["earlyRequests"], json!(2));
    // The second 429 did not restart the count window early; after the instant, nothing
    // is early any more.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        c.call("POST", "/users", Some(user_body("e2"))).await.status,
        201
    );
    assert_eq!(c.emu.stats().early_requests, 2);
}

#[tokio::test]
async fn error_rate_latency_and_replication_lag() {
    let c = start().await;
    c.emu
        .set_faults(FaultConfig {
            error_rate: 1.0,
            rng_seed: Some(7),
            ..FaultConfig::default()
        })
        .unwrap();
    let r = c.call("GET", "/domains", None).await;
    assert!(r.status == 500 || r.status == 503, "{}", r.status);
    assert!(r.json()["error"]["innerError"]["request-id"].is_string());
    c.emu
        .set_faults(FaultConfig {
            latency_ms: 120,
            ..FaultConfig::default()
        })
        .unwrap();
    let t = Instant::now();
    c.call("GET", "/domains", None).await;
    assert!(t.elapsed() >= Duration::from_millis(120));
    c.emu
        .set_faults(FaultConfig {
            replication_lag_ms: 300,
            ..FaultConfig::default()
        })
        .unwrap();
    let id = c.create_user("lag").await;
    assert_eq!(
        c.call("GET", &format!("/users/{id}"), None).await.status,
        404
    );
    let r = c
        .call("GET", "/users?$filter=mailNickname eq 'lag'", None)
        .await;
    assert_eq!(r.json()["value"], json!([]));
    tokio::time::sleep(Duration::from_millis(320)).await;
    assert_eq!(
        c.call("GET", &format!("/users/{id}"), None).await.status,
        200
    );
    let s = c.emu.stats();
    assert_eq!(s.faults.errors, 1);
    assert!(s.faults.lagged_reads >= 2);
    assert_eq!(s.faults.delayed, 1);
}

#[tokio::test]
async fn dropped_connections_before_and_after_commit() {
    let c = start().await;
    c.emu
        .set_faults(FaultConfig {
            drop_rate: 1.0,
            ..FaultConfig::default()
        })
        .unwrap();
    let err = c
        .http
        .get(format!("{}/domains", c.emu.base_url()))
        .bearer_auth(&c.token)
        .send()
        .await;
    assert!(err.is_err(), "the client must see a connection error");
    c.emu
        .set_faults(FaultConfig {
            drop_after_commit_rate: 1.0,
            ..FaultConfig::default()
        })
        .unwrap();
    let err = c
        .http
        .post(format!("{}/users", c.emu.base_url()))
        .bearer_auth(&c.token)
        .json(&user_body("ghost"))
        .send()
        .await;
    assert!(err.is_err());
    c.emu.set_faults(FaultConfig::default()).unwrap();
    // The write happened although the client saw an error.
    let r = c
        .call(
            "GET",
            "/users?$filter=userPrincipalName eq 'ghost@corp.example.com'",
            None,
        )
        .await;
    assert_eq!(r.json()["value"].as_array().unwrap().len(), 1);
    let s = c.emu.stats();
    assert_eq!((s.faults.dropped, s.faults.dropped_after_commit), (1, 1));
    // Reads are not dropped after commit.
    c.emu
        .set_faults(FaultConfig {
            drop_after_commit_rate: 1.0,
            ..FaultConfig::default()
        })
        .unwrap();
    assert_eq!(c.call("GET", "/domains", None).await.status, 200);
}

#[tokio::test]
async fn control_plane_seed_state_stats_reset() {
    let c = start().await;
    let base = c.emu.authority_url();
    let seed = json!({"users": [{"userPrincipalName": "s1@corp.example.com", "displayName": "S1", "mailNickname": "s1"}], "groups": [{"displayName": "G", "mailNickname": "g", "securityEnabled": true, "mailEnabled": false, "members": ["s1@corp.example.com"]}]});
    let r = c
        .http
        .post(format!("{base}/_emulator/seed"))
        .json(&seed)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let bad = c
        .http
        .post(format!("{base}/_emulator/seed"))
        .json(&json!({"groups": [{"displayName": "X", "members": ["missing"]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let state: Value = c
        .http
        .get(format!("{base}/_emulator/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["users"].as_array().unwrap().len(), 1);
    assert_eq!(state["groups"][0]["members"].as_array().unwrap().len(), 1);
    c.call("GET", "/users", None).await;
    let stats: Value = c
        .http
        .get(format!("{base}/_emulator/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["requests"]["GET /users"], json!(1));
    let r = c
        .http
        .post(format!("{base}/_emulator/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(c.emu.state()["users"], json!([]));
    assert_eq!(c.emu.stats().total_requests, 0);
    // Tokens survive a reset.
    assert_eq!(c.call("GET", "/users", None).await.status, 200);
    let r = c
        .http
        .post(format!("{base}/_emulator/config"))
        .json(&json!({"faults": {"errorRate": 2.0}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}
