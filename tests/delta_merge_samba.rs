//! A delta read folded into the last full read gives the same directory as a new full
//! read — including group memberships that AD changes without touching the group (a
//! member deleted or renamed). Against the real Samba AD DC (AD2ENTRA_TEST_DC_ENV).

#[path = "support/dc.rs"]
mod dc;

use ad2entra::ad::ldap::{ReadRequest, read_delta, read_full, read_watermark};
use ad2entra::ad::merge::apply_delta;
use ad2entra::model::{Dn, SourceSnapshot};
use ldap3::Mod;
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// (DN, description, member DNs) of every object under `ou`, keyed by objectGUID.
fn view(
    s: &SourceSnapshot,
    ou: &str,
) -> BTreeMap<String, (String, Option<String>, BTreeSet<String>)> {
    let ou = Dn::parse(ou).unwrap();
    s.objects
        .iter()
        .filter(|o| o.dn.is_within(&ou))
        .map(|o| {
            let members = o
                .texts("member")
                .filter_map(|m| Dn::parse(m).ok())
                .map(|d| d.key().to_string())
                .collect();
            (
                o.guid.to_string(),
                (
                    o.dn.key().to_string(),
                    o.text("description").map(str::to_string),
                    members,
                ),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_folded_into_the_snapshot_equals_a_new_full_read() {
    let Some(dc) = dc::dc() else { return };
    let cfg = dc.cfg();
    let name = dc::unique("mg");
    let short = &name[..name.len().min(16)];
    let ou = dc.dn(&format!("OU={name}"));
    let (a, b, c) = (
        format!("CN=A {name},{ou}"),
        format!("CN=B {name},{ou}"),
        format!("CN=C {name},{ou}"),
    );
    let g = format!("CN=G {name},{ou}");
    let mut admin = dc.admin().await;
    dc::add_ou(&mut admin, &ou, &name).await;
    dc::add_user(&mut admin, &a, &format!("a{short}")).await;
    dc::add_user(&mut admin, &b, &format!("b{short}")).await;
    dc::add_user(&mut admin, &c, &format!("c{short}")).await;
    dc::add_group(&mut admin, &g, &format!("g{short}"), &[&a, &b, &c]).await;
    let req = ReadRequest {
        attributes: vec!["description".into()],
    };
    let mut snap = read_full(&cfg, &req).await.expect("full read");
    let wm = read_watermark(&cfg).await.expect("watermark");

    // A member deleted, a member renamed, an attribute changed, a user added.
    admin
        .delete(&a)
        .await
        .expect("delete")
        .success()
        .expect("delete result");
    admin
        .modifydn(&b, &format!("CN=B2 {name}"), true, None)
        .await
        .expect("rename")
        .success()
        .expect("rename result");
    admin
        .modify(
            &c,
            vec![Mod::Replace("description", HashSet::from(["after"]))],
        )
        .await
        .expect("modify")
        .success()
        .expect("modify result");
    dc::add_user(
        &mut admin,
        &format!("CN=D {name},{ou}"),
        &format!("d{short}"),
    )
    .await;

    let delta = read_delta(&cfg, &req, &wm).await.expect("delta read");
    let group_in_delta = delta.changed.iter().any(|o| o.dn == Dn::parse(&g).unwrap());
    let summary = apply_delta(&mut snap, delta);
    let fresh = read_full(&cfg, &req).await.expect("second full read");
    dc::delete_tree(&mut admin, &ou).await;

    assert_eq!(
        view(&snap, &ou),
        view(&fresh, &ou),
        "merge summary {summary:?}"
    );
    let group = view(&fresh, &ou)
        .into_values()
        .find(|(dn, _, _)| dn.starts_with("cn=g "))
        .unwrap();
    assert_eq!(group.2.len(), 2, "A deleted, B renamed, C kept");
    if !group_in_delta {
        // The DC did not report the group: the merge had to derive it (Samba's case).
        assert!(summary.groups_relinked >= 1, "{summary:?}");
    }
}
