//! Faults that end a read early: continuation pages that are not JSON or lack `value`, next
//! links broken for good, delta pages with neither next nor delta link.

mod common;
use common::*;
use graph_emulator::FaultConfig;
use serde_json::{Value, json};

async fn with_users(n: usize) -> Client {
    let c = start().await;
    for i in 0..n {
        c.create_user(&format!("rf{i}")).await;
    }
    c
}

fn next_link(r: &Resp) -> String {
    r.json()["@odata.nextLink"]
        .as_str()
        .expect("next link")
        .to_string()
}

#[tokio::test]
async fn continuation_pages_that_are_not_json() {
    let c = with_users(3).await;
    c.emu
        .set_faults(FaultConfig {
            non_json_page_rate: 1.0,
            ..Default::default()
        })
        .unwrap();
    // The first page is whole: the fault is about reads that end part-way.
    let r = c.call("GET", "/users?$top=2", None).await;
    assert_eq!(r.json()["value"].as_array().unwrap().len(), 2);
    let r = c.raw("GET", &next_link(&r), None, &[]).await;
    assert_eq!(r.status, 200);
    assert!(r.body.is_none(), "not JSON: {}", r.text);
    assert!(r.text.starts_with('{'));
    assert!(
        r.header("content-type")
            .is_some_and(|t| t.starts_with("application/json"))
    );
    assert_eq!(c.emu.stats().faults.non_json_pages, 1);
}

#[tokio::test]
async fn continuation_pages_without_value_also_inside_batch() {
    let c = with_users(3).await;
    c.emu
        .set_faults(FaultConfig {
            page_without_value_rate: 1.0,
            ..Default::default()
        })
        .unwrap();
    let r = c.call("GET", "/users?$top=2", None).await;
    let next = next_link(&r);
    let r = c.raw("GET", &next, None, &[]).await;
    assert_eq!(r.status, 200);
    assert!(r.json().get("value").is_none(), "{}", r.text);
    let relative = next
        .split_once("/v1.0")
        .map(|(_, rest)| rest.to_string())
        .unwrap();
    let r = c
        .call(
            "POST",
            "/$batch",
            Some(json!({"requests": [{"id": "1", "method": "GET", "url": relative}]})),
        )
        .await;
    let inner = &r.json()["responses"][0];
    assert_eq!(inner["status"], json!(200));
    assert!(inner["body"].get("value").is_none(), "{inner}");
    assert_eq!(c.emu.stats().faults.pages_without_value, 2);
}

#[tokio::test]
async fn broken_next_links_fail_every_time() {
    let c = with_users(3).await;
    c.emu
        .set_faults(FaultConfig {
            broken_next_link_rate: 1.0,
            ..Default::default()
        })
        .unwrap();
    let r = c.call("GET", "/users?$top=2", None).await;
    let next = next_link(&r);
    for _ in 0..3 {
        let r = c.raw("GET", &next, None, &[]).await;
        assert_eq!(r.status, 500, "{}", r.text);
        assert_eq!(r.error_code(), "generalException");
    }
    let f = c.emu.stats().faults;
    assert_eq!((f.broken_next_links, f.broken_link_requests), (1, 3));
    // Turning the fault off keeps what was handed out broken; new links work.
    c.emu.set_faults(FaultConfig::default()).unwrap();
    let r = c.call("GET", "/users?$top=2", None).await;
    let r = c.call("GET", &next_link(&r), None).await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn delta_pages_cut_short() {
    let c = with_users(2).await;
    c.emu
        .set_faults(FaultConfig {
            truncated_delta_rate: 1.0,
            ..Default::default()
        })
        .unwrap();
    let r = c
        .call("GET", "/users/delta?$select=displayName", None)
        .await;
    let page = r.json();
    assert!(page["value"].is_array());
    assert!(page.get("@odata.nextLink").is_none() && page.get("@odata.deltaLink").is_none());
    // Plain lists are not delta pages.
    let r = c.call("GET", "/users", None).await;
    assert!(r.json()["value"].is_array());
    assert_eq!(c.emu.stats().faults.truncated_delta_pages, 1);
}

#[tokio::test]
async fn read_fault_rates_are_validated() {
    let c = start().await;
    for bad in [
        json!({"nonJsonPageRate": 1.5}),
        json!({"pageWithoutValueRate": -0.1}),
        json!({"brokenNextLinkRate": 2}),
        json!({"truncatedDeltaRate": 1.01}),
    ] {
        let f: FaultConfig = serde_json::from_value(bad.clone()).unwrap();
        assert!(c.emu.set_faults(f).is_err(), "{bad}");
    }
    let r = c
        .http
        .post(format!("{}/_emulator/config", c.emu.authority_url()))
        .json(&json!({"faults": {"truncatedDeltaRate": 0.5}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["faults"]["truncatedDeltaRate"], json!(0.5));
}
