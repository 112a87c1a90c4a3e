//! $select/$filter/$top paging, advanced-query rules, delta rounds and $batch.

mod common;
use common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn default_select_filter_and_paging() {
    let c = start().await;
    for i in 0..7 {
        c.create_user(&format!("page{i}")).await;
    }
    let r = c.call("GET", "/users", None).await;
    let first = &r.json()["value"][0];
    assert_eq!(
        keys(first),
        keys(&sample("list-users-page.json")["value"][0])
    );
    // Paging with opaque skiptoken.
    let mut url = "/users?$top=3&$select=id,displayName".to_string();
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let r = c.call("GET", &url, None).await;
        pages += 1;
        for v in r.json()["value"].as_array().unwrap() {
            assert_eq!(keys(v), vec!["displayName", "id"]);
            seen.push(v["id"].as_str().unwrap().to_string());
        }
        match r.json()["@odata.nextLink"].as_str() {
            Some(n) => {
                assert!(n.contains("$skiptoken=") && n.contains("$top=3"));
                url = n.to_string();
            }
            None => break,
        }
    }
    assert_eq!((pages, seen.len()), (3, 7));
    seen.dedup();
    assert_eq!(seen.len(), 7);
    // Filters.
    let n = |r: &Resp| r.json()["value"].as_array().unwrap().len();
    assert_eq!(
        n(&c.call(
            "GET",
            "/users?$filter=userPrincipalName eq 'PAGE3@corp.example.com'",
            None
        )
        .await),
        1
    );
    assert_eq!(
        n(&c.call(
            "GET",
            "/users?$filter=startswith(displayName,'User page')",
            None
        )
        .await),
        7
    );
    assert_eq!(
        n(&c.call(
            "GET",
            "/users?$filter=mailNickname in ('page1','page2','nobody')",
            None
        )
        .await),
        2
    );
    assert_eq!(
        n(&c.call(
            "GET",
            "/users?$filter=onPremisesImmutableId eq 'none'",
            None
        )
        .await),
        0
    );
    let r = c.call("GET", "/users?$top=1000", None).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.error_message(),
        "Invalid page size specified: '1000'. Must be between 1 and 999 inclusive."
    );
    let r = c
        .call("GET", "/groups?$filter=createdDateTime eq null", None)
        .await;
    assert_eq!(
        (r.status, r.error_code()),
        (400, "Request_UnsupportedQuery")
    );
    assert_eq!(
        r.error_message(),
        "Unsupported or invalid query filter clause specified for property 'createdDateTime' of resource 'Group'."
    );
    let r = c.invalid("GET", "/users?$select=notAProperty", None).await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn advanced_query_rules_match_samples() {
    let c = start().await;
    c.create_user("adv").await;
    let r = c.call("GET", "/users/$count", None).await;
    assert_eq!(r.status, 400);
    let s = sample("error-count-without-consistencylevel.json");
    assert_eq!(
        (r.error_code(), r.error_message()),
        (
            s["error"]["code"].as_str().unwrap(),
            s["error"]["message"].as_str().unwrap()
        )
    );
    assert_eq!(keys(&r.json()["error"]), keys(&s["error"]));
    let r = c
        .call_h(
            "GET",
            "/users/$count",
            None,
            &[("ConsistencyLevel", "eventual")],
        )
        .await;
    assert_eq!((r.status, r.text.as_str()), (200, "1"));

    let r = c
        .call("GET", "/users?$search=\"displayName:adv\"", None)
        .await;
    let s = sample("error-search-without-consistencylevel.json");
    assert_eq!(
        (r.status, r.error_code(), r.error_message()),
        (
            400,
            s["error"]["code"].as_str().unwrap(),
            s["error"]["message"].as_str().unwrap()
        )
    );
    let r = c
        .call_h(
            "GET",
            "/users?$search=\"displayName:adv\"",
            None,
            &[("ConsistencyLevel", "eventual")],
        )
        .await;
    assert_eq!(r.json()["value"].as_array().unwrap().len(), 1);

    let r = c
        .call(
            "GET",
            "/users?$filter=endswith(mail,'@corp.example.com')",
            None,
        )
        .await;
    let s = sample("error-endswith-without-advanced-params.json");
    assert_eq!(
        (r.status, r.error_code(), r.error_message()),
        (
            400,
            s["error"]["code"].as_str().unwrap(),
            s["error"]["message"].as_str().unwrap()
        )
    );
    for f in ["mailNickname ne 'x'", "not(mailNickname eq 'x')"] {
        let r = c.call("GET", &format!("/users?$filter={f}"), None).await;
        assert_eq!(
            (r.status, r.error_code()),
            (400, "Request_UnsupportedQuery"),
            "{f}"
        );
    }
    // With ConsistencyLevel but without $count=true still refused.
    let r = c
        .call_h(
            "GET",
            "/users?$filter=mailNickname ne 'x'",
            None,
            &[("ConsistencyLevel", "eventual")],
        )
        .await;
    assert_eq!(r.status, 400);
    let r = c
        .call_h(
            "GET",
            "/users?$filter=mailNickname ne 'x'&$count=true",
            None,
            &[("ConsistencyLevel", "eventual")],
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["@odata.count"], json!(1));
    // $count=true without the header is ignored.
    let r = c.call("GET", "/users?$count=true", None).await;
    assert!(r.json().get("@odata.count").is_none());
    // The sample query of list-users-count-filter-orderby.json.
    c.create_user("a").await;
    let r = c
        .call_h("GET", "/users?$filter=startswith(displayName,'user a')&$orderby=displayName&$count=true&$top=1&$select=displayName,mail,mailNickname,userPrincipalName", None, &[("ConsistencyLevel", "eventual")])
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let s = sample("list-users-count-filter-orderby.json");
    let mut got = keys(r.json());
    got.retain(|k| k != "@odata.nextLink");
    assert_eq!(got, keys(&s));
    let mut item = keys(&r.json()["value"][0]);
    item.retain(|k| k != "id");
    assert_eq!(item, keys(&s["value"][0]));
    assert_eq!(r.json()["@odata.count"], json!(2));
    let r = c
        .call(
            "GET",
            "/users?$filter=startswith(displayName,'a')&$orderby=displayName",
            None,
        )
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn users_delta_rounds() {
    let mut cfg = test_config();
    cfg.delta_page_size = 2;
    let c = start_with(cfg).await;
    let a = c.create_user("d1").await;
    let b = c.create_user("d2").await;
    let gone = c.create_user("d3").await;
    // Initial round with $select, paged.
    let r = c
        .call(
            "GET",
            "/users/delta?$select=displayName,givenName,surname",
            None,
        )
        .await;
    let s = sample("users-delta-initial-page.json");
    assert_eq!(keys(r.json()), keys(&s));
    let next = r.json()["@odata.nextLink"].as_str().unwrap().to_string();
    assert_eq!(r.json()["value"].as_array().unwrap().len(), 2);
    assert_eq!(keys(&r.json()["value"][0]), keys(&s["value"][0]));
    let r = c.call("GET", &next, None).await;
    let s = sample("users-delta-final-page.json");
    assert_eq!(keys(r.json()), keys(&s));
    let delta_link = r.json()["@odata.deltaLink"].as_str().unwrap().to_string();
    // No changes.
    let r = c.call("GET", &delta_link, None).await;
    assert_eq!(r.json()["value"], json!([]));
    let delta_link = r.json()["@odata.deltaLink"].as_str().unwrap().to_string();
    // Changes: update, soft delete, purge, create.
    c.call(
        "PATCH",
        &format!("/users/{a}"),
        Some(json!({"givenName": "Dee"})),
    )
    .await;
    c.call("DELETE", &format!("/users/{b}"), None).await;
    c.call("DELETE", &format!("/users/{gone}"), None).await;
    c.call("DELETE", &format!("/directory/deletedItems/{gone}"), None)
        .await;
    let new = c.create_user("d4").await;
    let mut url = delta_link;
    let mut items: Vec<Value> = Vec::new();
    loop {
        let r = c.call("GET", &url, None).await;
        items.extend(r.json()["value"].as_array().unwrap().iter().cloned());
        if let Some(n) = r.json()["@odata.nextLink"].as_str() {
            url = n.to_string();
        } else {
            break;
        }
    }
    let find = |id: &str| {
        items
            .iter()
            .find(|v| v["id"] == json!(id))
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(find(&a)["givenName"], json!("Dee"));
    assert_eq!(find(&b)["@removed"], json!({"reason": "changed"}));
    assert_eq!(find(&gone)["@removed"], json!({"reason": "deleted"}));
    assert_eq!(
        keys(&find(&gone)),
        keys(&sample("users-delta-initial-page.json")["value"][2])
    );
    assert!(find(&new).is_object());
    // Unknown token → 410.
    let r = c.call("GET", "/users/delta?$deltatoken=bogus", None).await;
    assert_eq!((r.status, r.error_code()), (410, "syncStateNotFound"));
    assert!(
        r.header("location")
            .is_some_and(|l| l.contains("/users/delta"))
    );
    // latest → just a deltaLink.
    let r = c.call("GET", "/users/delta?$deltatoken=latest", None).await;
    assert_eq!(r.json()["value"], json!([]));
    assert!(r.json()["@odata.deltaLink"].is_string());
}

#[tokio::test]
async fn delta_tokens_expire() {
    let mut cfg = test_config();
    cfg.delta_token_lifetime_secs = 0.2;
    let c = start_with(cfg).await;
    c.create_user("exp").await;
    let r = c.call("GET", "/users/delta", None).await;
    let link = r.json()["@odata.deltaLink"].as_str().unwrap().to_string();
    assert_eq!(c.call("GET", &link, None).await.status, 200);
    let link = c.call("GET", &link, None).await.json()["@odata.deltaLink"]
        .as_str()
        .unwrap()
        .to_string();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(c.call("GET", &link, None).await.status, 410);
}

#[tokio::test]
async fn groups_delta_with_members() {
    let c = start().await;
    let u1 = c.create_user("gm1").await;
    let u2 = c.create_user("gm2").await;
    let g = c.create_group("gdelta").await;
    let g2 = c.create_group("gdelta2").await;
    let add = |u: &str| json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{u}")});
    c.call("POST", &format!("/groups/{g}/members/$ref"), Some(add(&u1)))
        .await;
    let r = c
        .call(
            "GET",
            "/groups/delta?$select=displayName,description,members",
            None,
        )
        .await;
    let s = sample("groups-delta-initial-page.json");
    let v = r.json()["value"].as_array().unwrap();
    let mine = v.iter().find(|x| x["id"] == json!(g)).unwrap();
    assert_eq!(keys(mine), keys(&s["value"][0]));
    assert_eq!(
        mine["members@delta"],
        json!([{"@odata.type": "#microsoft.graph.user", "id": u1}])
    );
    let link = r.json()["@odata.deltaLink"].as_str().unwrap().to_string();
    let r = c.call("GET", &link, None).await;
    assert_eq!(
        keys(r.json()),
        keys(&sample("groups-delta-no-changes.json"))
    );
    let link = r.json()["@odata.deltaLink"].as_str().unwrap().to_string();
    c.call("DELETE", &format!("/groups/{g}/members/{u1}/$ref"), None)
        .await;
    c.call("POST", &format!("/groups/{g}/members/$ref"), Some(add(&u2)))
        .await;
    c.call("DELETE", &format!("/groups/{g2}"), None).await;
    let r = c.call("GET", &link, None).await;
    let s = sample("groups-delta-changes-members-removed.json");
    let v = r.json()["value"].as_array().unwrap();
    let changed = v.iter().find(|x| x["id"] == json!(g)).unwrap();
    assert_eq!(keys(changed), keys(&s["value"][0]));
    let md = changed["members@delta"].as_array().unwrap();
    assert_eq!(md.len(), 2);
    assert_eq!(keys(&md[0]), keys(&s["value"][0]["members@delta"][0]));
    assert_eq!(md[0]["@removed"], json!({"reason": "deleted"}));
    assert_eq!(md[1]["id"], json!(u2));
    assert_eq!(
        v.iter().find(|x| x["id"] == json!(g2)).unwrap()["@removed"],
        json!({"reason": "deleted"})
    );
}

#[tokio::test]
async fn batch_depends_on_and_limits() {
    let c = start().await;
    let body = json!({"requests": [
        {"id": "1", "method": "POST", "url": "/users", "headers": {"Content-Type": "application/json"}, "body": user_body("b1")},
        {"id": "2", "method": "POST", "url": "/users", "dependsOn": ["1"], "headers": {"Content-Type": "application/json"}, "body": user_body("b1")},
        {"id": "3", "method": "GET", "url": "/users?$filter=mailNickname eq 'b1'&$select=id", "dependsOn": ["2"]},
        {"id": "4", "method": "GET", "url": "users?$select=id,displayName,userPrincipalName&$filter=mail eq null&$count=true", "headers": {"ConsistencyLevel": "eventual"}},
        {"id": "5", "method": "POST", "url": "/users/00000000-0000-0000-0000-000000000000/getPasswordSingleSignOnCredentials", "headers": {"Content-Type": "application/json"}, "body": {}},
        {"id": "6", "method": "POST", "url": "/domains"}
    ]});
    let r = c.invalid("POST", "/$batch", Some(body)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let resp = r.json()["responses"].as_array().unwrap();
    let by = |id: &str| resp.iter().find(|x| x["id"] == json!(id)).unwrap().clone();
    assert_eq!(by("1")["status"], json!(201));
    assert_eq!(by("2")["status"], json!(400));
    assert_eq!(by("3")["status"], json!(424));
    assert_eq!(by("4")["status"], json!(200));
    assert_eq!(by("4")["body"]["@odata.count"], json!(1));
    let s = sample("batch-response.json");
    assert_eq!(keys(&by("4")), keys(&s["responses"][4]));
    assert_eq!(keys(&by("4")["body"]), keys(&s["responses"][4]["body"]));
    assert_eq!(
        keys(&by("2")["body"]["error"]),
        vec!["code", "details", "innerError", "message"]
    );
    assert_eq!(by("5")["status"], json!(400));
    assert_eq!(by("6")["status"], json!(405));
    assert_eq!(
        by("6")["body"]["error"]["message"],
        s["responses"][3]["body"]["error"]["message"]
    );
    assert_eq!(c.emu.stats().batch_requests, 6);
    // 21 requests → 400 for the whole batch.
    let many: Vec<Value> = (0..21)
        .map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/domains"}))
        .collect();
    let r = c
        .invalid("POST", "/$batch", Some(json!({"requests": many})))
        .await;
    assert_eq!(r.status, 400);
    assert!(
        graph_emulator::conformance::check_request(
            "POST",
            "/$batch",
            Some(&json!({"requests": many}))
        )
        .is_err()
    );
    // Duplicate ids, unknown dependsOn, body without Content-Type.
    for bad in [
        json!({"requests": [{"id": "a", "method": "GET", "url": "/domains"}, {"id": "A", "method": "GET", "url": "/domains"}]}),
        json!({"requests": [{"id": "a", "method": "GET", "url": "/domains", "dependsOn": ["z"]}]}),
        json!({"requests": [{"id": "a", "method": "POST", "url": "/users", "body": user_body("nb")}]}),
    ] {
        assert_eq!(
            c.invalid("POST", "/$batch", Some(bad.clone())).await.status,
            400,
            "{bad}"
        );
        assert!(graph_emulator::conformance::check_request("POST", "/$batch", Some(&bad)).is_err());
    }
    // A valid batch passes the request checker.
    let ok = json!({"requests": [{"id": "1", "method": "PATCH", "url": "/users/x", "headers": {"Content-Type": "application/json"}, "body": {"jobTitle": "x"}}, {"id": "2", "method": "GET", "url": "/users/x?$select=jobTitle", "dependsOn": ["1"]}]});
    graph_emulator::conformance::check_request("POST", "/$batch", Some(&ok)).unwrap();
}
