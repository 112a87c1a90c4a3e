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
    // Named users carry the sample's properties; delta leaves out properties never set.
    let named = |nick: &str| {
        let mut b = user_body(nick);
        b["givenName"] = json!("Given");
        b["surname"] = json!("Surname");
        b
    };
    let mut ids = Vec::new();
    for nick in ["d1", "d2", "d3"] {
        let r = c.call("POST", "/users", Some(named(nick))).await;
        assert_eq!(r.status, 201, "{}", r.text);
        ids.push(r.json()["id"].as_str().unwrap().to_string());
    }
    let [a, b, gone] = [ids[0].clone(), ids[1].clone(), ids[2].clone()];
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
    // Past its lifetime: 400 syncStateNotFound (Microsoft 365 dev blog, 2020-07-03).
    let r = c.call("GET", &link, None).await;
    assert_eq!((r.status, r.error_code()), (400, "syncStateNotFound"));
}

/// The test knobs: every issued token expires (400) or has its sync state reset (410 Gone
/// with a Location to restart from); a fresh round works again.
#[tokio::test]
async fn delta_tokens_expire_and_reset_on_demand() {
    let c = start().await;
    c.create_user("knob").await;
    let latest = "/users/delta?$deltatoken=latest";
    let link = r_link(&c, latest).await;
    c.emu.expire_delta_tokens();
    let r = c.call("GET", &link, None).await;
    assert_eq!((r.status, r.error_code()), (400, "syncStateNotFound"));
    let link = r_link(&c, latest).await;
    assert_eq!(c.call("GET", &link, None).await.status, 200);
    let link = r_link(&c, latest).await;
    c.emu.reset_delta_sync();
    let r = c.call("GET", &link, None).await;
    assert_eq!((r.status, r.error_code()), (410, "resyncRequired"));
    assert!(
        r.header("location")
            .is_some_and(|l| l.ends_with("/users/delta?$deltatoken="))
    );
    // Through the control plane too.
    let link = r_link(&c, latest).await;
    let admin = format!("{}/_emulator/delta/expire", c.emu.authority_url());
    assert_eq!(c.http.post(&admin).send().await.unwrap().status(), 204);
    assert_eq!(c.call("GET", &link, None).await.status, 400);
}

/// Delta leaves out properties never set and returns cleared ones as null (group: delta,
/// "Default: return the same properties as initial delta request").
#[tokio::test]
async fn delta_omits_unset_properties_and_sends_cleared_ones_as_null() {
    let c = start().await;
    let mut body = user_body("clear");
    body["jobTitle"] = json!("Clerk");
    let r = c.call("POST", "/users", Some(body)).await;
    let id = r.json()["id"].as_str().unwrap().to_string();
    let sel = "$select=displayName,jobTitle,department,businessPhones";
    let r = c.call("GET", &format!("/users/delta?{sel}"), None).await;
    let item = r.json()["value"][0].clone();
    assert_eq!(
        keys(&item),
        vec!["businessPhones", "displayName", "id", "jobTitle"],
        "{item}"
    );
    // A plain read returns the never-set one as null.
    let r = c.call("GET", &format!("/users/{id}?{sel}"), None).await;
    assert_eq!(r.json()["department"], Value::Null);
    let link = r_link(&c, &format!("/users/delta?{sel}&$deltatoken=latest")).await;
    c.call(
        "PATCH",
        &format!("/users/{id}"),
        Some(json!({"jobTitle": null})),
    )
    .await;
    let r = c.call("GET", &link, None).await;
    let item = &r.json()["value"][0];
    assert_eq!(item["jobTitle"], Value::Null);
    assert!(item.as_object().unwrap().contains_key("jobTitle"));
    assert!(!item.as_object().unwrap().contains_key("department"));
}

async fn r_link(c: &Client, url: &str) -> String {
    let r = c.call("GET", url, None).await;
    r.json()["@odata.deltaLink"].as_str().unwrap().to_string()
}

/// A group without members has no members@delta in the initial round; a large group comes
/// back several times with the next chunk of members (delta-query-groups).
#[tokio::test]
async fn groups_delta_chunks_large_member_lists() {
    let mut cfg = test_config();
    cfg.delta_members_per_item = 2;
    cfg.delta_page_size = 2;
    let c = start_with(cfg).await;
    let empty = c.create_group("empty").await;
    let big = c.create_group("big").await;
    let mut users = Vec::new();
    for i in 0..5 {
        let u = c.create_user(&format!("m{i}")).await;
        let add =
            json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{u}")});
        c.call("POST", &format!("/groups/{big}/members/$ref"), Some(add))
            .await;
        users.push(u);
    }
    let mut url = "/groups/delta?$select=displayName,members".to_string();
    let mut items = Vec::new();
    let link = loop {
        let r = c.call("GET", &url, None).await;
        items.extend(r.json()["value"].as_array().unwrap().iter().cloned());
        match r.json()["@odata.nextLink"].as_str() {
            Some(n) => url = n.to_string(),
            None => break r.json()["@odata.deltaLink"].as_str().unwrap().to_string(),
        }
    };
    let of = |id: &str| -> Vec<Value> {
        items
            .iter()
            .filter(|v| v["id"] == json!(id))
            .cloned()
            .collect()
    };
    assert_eq!(of(&empty).len(), 1);
    assert!(of(&empty)[0].get("members@delta").is_none());
    let chunks = of(&big);
    assert_eq!(chunks.len(), 3, "{chunks:?}");
    let mut seen: Vec<String> = chunks
        .iter()
        .flat_map(|c| c["members@delta"].as_array().unwrap().clone())
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    seen.sort();
    users.sort();
    assert_eq!(seen, users);
    assert!(
        chunks
            .iter()
            .all(|c| c["displayName"] == json!("Group big"))
    );
    // Later rounds list changes only.
    c.call(
        "DELETE",
        &format!("/groups/{big}/members/{}/$ref", users[0]),
        None,
    )
    .await;
    let r = c.call("GET", &link, None).await;
    let v = r.json()["value"].as_array().unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!(
        v[0]["members@delta"],
        json!([{"@odata.type": "#microsoft.graph.user", "id": users[0], "@removed": {"reason": "deleted"}}])
    );
}

#[tokio::test]
async fn groups_delta_with_members() {
    let c = start().await;
    let u1 = c.create_user("gm1").await;
    let u2 = c.create_user("gm2").await;
    let g = c.create_group("gdelta").await;
    let g2 = c.create_group("gdelta2").await;
    for id in [&g, &g2] {
        let r = c
            .call(
                "PATCH",
                &format!("/groups/{id}"),
                Some(json!({"description": "tracked"})),
            )
            .await;
        assert_eq!(r.status, 204, "{}", r.text);
    }
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

/// Member lists keep insertion order inside; paging them must still serve each member once.
#[tokio::test]
async fn member_lists_page_each_member_once() {
    let c = start().await;
    let mut users = Vec::new();
    for i in 0..7 {
        users.push(c.create_user(&format!("pm{i}")).await);
    }
    let g = c.create_group("paged").await;
    // Added in descending id order, the opposite of the id cursor's order.
    let mut order = users.clone();
    order.sort_by(|a, b| b.cmp(a));
    for u in &order {
        let add =
            json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{u}")});
        c.call("POST", &format!("/groups/{g}/members/$ref"), Some(add))
            .await;
    }
    let mut url = format!("/groups/{g}/members?$select=id&$top=3");
    let mut seen = Vec::new();
    loop {
        let r = c.call("GET", &url, None).await;
        for m in r.json()["value"].as_array().unwrap() {
            seen.push(m["id"].as_str().unwrap().to_string());
        }
        match r.json()["@odata.nextLink"].as_str() {
            Some(n) => url = n.to_string(),
            None => break,
        }
    }
    seen.sort();
    users.sort();
    assert_eq!(seen, users);
}
