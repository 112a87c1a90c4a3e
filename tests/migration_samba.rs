//! Leaving Entra Connect with a real Samba AD DC (scripts/test-dc.sh): the LDAP reader
//! brings mS-DS-ConsistencyGuid and objectSid as Connect used them, a tenant seeded with
//! Connect's objects for those AD objects (immutable ids under `anchor:
//! mS-DS-ConsistencyGuid`, the group's SID in the string form the DC itself searches by)
//! is left alone while synced, and after synchronization is turned off the plan is only
//! `adopt` actions; applied, the next plan is empty.

#[path = "support/dc.rs"]
mod dc;
mod e2e_support;

use ad2entra::entra::graph::{AuthConfig, GraphClient, GraphConfig, GraphRequest, RetryMode};
use ad2entra::model::anchor::{AnchorAttribute, anchor_for, object_sid};
use ad2entra::model::{ObjectGuid, SourceObject, SourceSnapshot};
use ad2entra::plan::Operation;
use e2e_support::*;
use graph_emulator::EmulatorConfig;
use graph_emulator::config::ClientConfig;
use ldap3::{Mod, Scope};
use serde_json::json;
use std::collections::HashSet;

const ADMIN_APP: &str = "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b";
const ADMIN_SECRET: &str = "admin-secret";

fn object<'s>(source: &'s SourceSnapshot, dn: &str) -> &'s SourceObject {
    source
        .objects
        .iter()
        .find(|o| o.dn.as_str().eq_ignore_ascii_case(dn))
        .unwrap_or_else(|| panic!("{dn} not read"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_objects_of_a_real_dc_are_adopted_once_sync_is_off() {
    let Some(dc) = dc::dc() else { return };
    let mut lab = Lab::new(&dc).await;
    let st = staff(&mut lab).await;
    // Bob came from another forest: his mS-DS-ConsistencyGuid is not his objectGUID.
    let moved = ObjectGuid::parse("9a7ed32a-0ab4-4d46-aa48-2d7d273334f6").unwrap();
    lab.modify(
        &st.bob.dn,
        vec![Mod::Replace(
            b"mS-DS-ConsistencyGuid".to_vec(),
            HashSet::from([moved.0.to_vec()]),
        )],
    )
    .await;
    let policy = E2ePolicy::write(&format!(
        "{}\nanchor: mS-DS-ConsistencyGuid\nadopt: {{by: immutableId}}\n",
        lab.policy_text(100)
    ));
    let source = read_source(&policy.loaded, &dc).await;

    // The reader asked for the attribute, and the anchor is base64 of its raw bytes.
    let bob = object(&source, &st.bob.dn);
    assert_eq!(bob.values("mS-DS-ConsistencyGuid"), &[moved.0.to_vec()]);
    assert_eq!(
        anchor_for(bob, AnchorAttribute::ConsistencyGuid).0,
        "KtN+mrQKRk2qSC19JzM09g=="
    );
    let ann = object(&source, &st.ann.dn);
    assert_eq!(
        anchor_for(ann, AnchorAttribute::ConsistencyGuid),
        ann.guid.anchor(),
        "without the attribute, the objectGUID"
    );
    // The SID's string form is the DC's own: it finds the group by it.
    let team = object(&source, &st.team);
    let sid = object_sid(team).expect("the group has an objectSid");
    assert!(sid.starts_with("S-1-5-21-"), "{sid}");
    let mut ldap = admin_connect(&dc).await;
    let (found, _) = ldap
        .search(
            &dc.base_dn,
            Scope::Subtree,
            &format!("(objectSid={sid})"),
            vec!["distinguishedName"],
        )
        .await
        .expect("search by SID")
        .success()
        .expect("search result");
    assert_eq!(found.len(), 1, "{sid}");
    let _ = ldap.unbind().await;

    // The tenant Entra Connect left: synced users and the group, for these AD objects.
    let mut cfg = EmulatorConfig::default();
    cfg.additional_clients.push(ClientConfig {
        client_id: ADMIN_APP.into(),
        client_secret: ADMIN_SECRET.into(),
        permissions: vec!["Organization.ReadWrite.All".into()],
    });
    let tenant = Tenant::start_with(cfg.clone()).await;
    let user = |u: &User| {
        let o = object(&source, &u.dn);
        json!({
            "userPrincipalName": u.upn, "displayName": u.cn, "mailNickname": u.sam,
            "accountEnabled": true, "onPremisesSyncEnabled": true,
            "onPremisesImmutableId": anchor_for(o, AnchorAttribute::ConsistencyGuid).0,
            "onPremisesSamAccountName": u.sam,
            "onPremisesDistinguishedName": u.dn,
        })
    };
    tenant
        .emu
        .seed(
            &serde_json::from_value(json!({
                "users": [user(&st.ann), user(&st.bob), user(&st.cai)],
                "groups": [{
                    "displayName": "Team", "mailNickname": "Team",
                    "securityEnabled": true, "mailEnabled": false,
                    "onPremisesSyncEnabled": true, "onPremisesSecurityIdentifier": sid,
                    "members": [st.ann.upn, st.cai.upn],
                }],
            }))
            .unwrap(),
        )
        .expect("seed");

    // Synced: nothing is planned for them, and nothing is created.
    let p = plan_now(&policy, &dc, &tenant).await;
    assert!(p.actions.is_empty(), "{}", show(&p));
    assert_eq!(
        p.diagnostics
            .iter()
            .filter(|d| d.code == "held-by-synced-object")
            .count(),
        4,
        "{}",
        show(&p)
    );

    // The administrator turns directory synchronization off.
    let admin = GraphClient::new(GraphConfig::new(
        tenant.emu.base_url(),
        AuthConfig::for_emulator(
            &tenant.emu,
            &EmulatorConfig {
                client_id: ADMIN_APP.into(),
                client_secret: Some(ADMIN_SECRET.into()),
                ..cfg.clone()
            },
        ),
    ))
    .unwrap();
    let r = admin
        .execute(
            &GraphRequest::write(
                reqwest::Method::PATCH,
                format!("/organization/{}", cfg.tenant_id),
                Some(json!({"onPremisesSyncEnabled": false})),
            ),
            RetryMode::Idempotent,
        )
        .await
        .expect("sync turned off");
    assert_eq!(r.status, 204);

    // Only adoptions; applied, nothing is left to do.
    let p = plan_now(&policy, &dc, &tenant).await;
    assert!(
        p.actions.iter().all(|a| a.op == Operation::Adopt) && p.actions.len() == 4,
        "{}",
        show(&p)
    );
    tenant.apply(&policy.loaded, &p).await;
    let p = plan_now(&policy, &dc, &tenant).await;
    assert!(p.actions.is_empty(), "{}", show(&p));
    assert_eq!(
        entra_user(&tenant, &st.bob.upn)["onPremisesImmutableId"],
        json!("KtN+mrQKRk2qSC19JzM09g==")
    );
    assert_eq!(entra_members(&tenant, "Team"), {
        let mut v = vec![st.ann.upn.clone(), st.cai.upn.clone()];
        v.sort();
        v
    });
}
