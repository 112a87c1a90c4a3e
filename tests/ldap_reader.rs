//! Integration tests of the LDAP reader against the real Samba AD DC started by
//! `scripts/test-dc.sh` (see tests/support/dc.rs for how they find it).
//!
//!     scripts/test-dc.sh
//!     AD2ENTRA_TEST_DC_ENV=$PWD/.test-dc/connection.env cargo test --test ldap_reader

#[path = "support/dc.rs"]
mod dc;

use ad2entra::ad::ldap::{
    LdapConfig, LdapError, ReadRequest, Watermark, members_in_chain, read_delta, read_full,
    read_watermark, resolve_dns, resolve_guids,
};
use ad2entra::model::{Dn, ObjectGuid, ObjectKind, SourceObject, SourceSnapshot};
use ldap3::Mod;
use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

fn attrs(list: &[&str]) -> ReadRequest {
    ReadRequest {
        attributes: list.iter().map(|s| s.to_string()).collect(),
    }
}

fn find<'a>(snap: &'a SourceSnapshot, dn: &str) -> &'a SourceObject {
    let want = Dn::parse(dn).unwrap();
    snap.objects
        .iter()
        .find(|o| o.dn == want)
        .map(|o| &**o)
        .unwrap_or_else(|| panic!("{dn} not in the snapshot ({} objects)", snap.objects.len()))
}

fn dn_set<'a>(values: impl IntoIterator<Item = &'a str>) -> BTreeSet<Dn> {
    values.into_iter().map(|v| Dn::parse(v).unwrap()).collect()
}

#[tokio::test]
async fn full_read_returns_seeded_objects_with_guid_bytes_and_unicode() {
    let Some(dc) = dc::dc() else { return };
    let req = attrs(&[
        "displayName",
        "givenName",
        "sn",
        "mail",
        "description",
        "proxyAddresses",
        "department",
    ]);
    let snap = read_full(&dc.cfg(), &req).await.expect("full read");
    assert_eq!(snap.server, dc.ldaps_url);
    assert!(snap.highest_usn.is_some_and(|u| u > 0));

    let zoe = find(&snap, &dc.dn("CN=Zoë Müller,OU=Sales,OU=Staff"));
    assert_eq!(zoe.kind, ObjectKind::User);
    assert_eq!(zoe.text("displayName"), Some("Zoë Müller"));
    assert_eq!(&zoe.values("givenName")[0], "Zoë".as_bytes());
    assert_eq!(zoe.text("mail"), Some("zoë.müller@corp.example.com"));
    // The anchor is base64 of the raw objectGUID bytes exactly as OpenLDAP's ldapsearch sees them.
    assert_eq!(
        zoe.guid.anchor().as_str(),
        dc::guid_b64_via_ldapsearch(&dc, "(sAMAccountName=zmuller)")
    );
    assert_eq!(
        zoe.values("objectSid")[0].len(),
        28,
        "binary objectSid kept as bytes"
    );
    assert!(zoe.usn_changed.is_some());

    let lilei = find(&snap, &dc.dn("CN=李雷,OU=Engineering,OU=Staff"));
    assert_eq!(lilei.text("sn"), Some("李"));
    assert_eq!(
        lilei.guid.anchor().as_str(),
        dc::guid_b64_via_ldapsearch(&dc, "(sAMAccountName=lilei)")
    );

    let long = find(&snap, &dc.dn("CN=Long Values,OU=Engineering,OU=Staff"));
    assert_eq!(long.text("description").map(str::len), Some(1024));
    assert_eq!(
        long.text("displayName").map(|s| s.chars().count()),
        Some(256)
    );
    assert_eq!(long.values("proxyAddresses").len(), 500);

    assert!(find(&snap, &dc.dn("CN=Disabled User,OU=Staff")).is_disabled());
    assert!(!zoe.is_disabled());
    assert_eq!(
        find(&snap, &dc.dn("CN=Local Suffix,OU=Staff")).text("userPrincipalName"),
        Some("local.suffix@corp.local")
    );
    let noupn = find(&snap, &dc.dn("CN=No UPN,OU=Staff"));
    assert!(noupn.values("userPrincipalName").is_empty());
    assert_eq!(noupn.text("sAMAccountName"), Some("noupn"));

    let admin = find(&snap, &dc.dn("CN=Ada Admin,OU=Staff"));
    assert_eq!(admin.int("adminCount"), Some(1));
    // Membership comes from the group's `member` (memberOf is not read: nothing needs
    // the back link).
    assert!(admin.values("memberOf").is_empty());
    assert!(
        find(&snap, &dc.dn("CN=Domain Admins,CN=Users"))
            .texts("member")
            .any(|m| Dn::parse(m).unwrap() == admin.dn)
    );
    assert!(find(&snap, &dc.dn("CN=Administrator,CN=Users")).flag("isCriticalSystemObject"));
    assert_eq!(
        find(&snap, &dc.dn("CN=svc_backup,OU=Service Accounts")).text("sAMAccountName"),
        Some("svc_backup")
    );

    for ou in [
        "OU=Staff",
        "OU=Sales,OU=Staff",
        "OU=Engineering,OU=Staff",
        "OU=Service Accounts",
        "OU=Groups",
    ] {
        assert_eq!(
            find(&snap, &dc.dn(ou)).kind,
            ObjectKind::OrganizationalUnit,
            "{ou}"
        );
    }
    assert_eq!(find(&snap, &dc.dn("CN=Users")).kind, ObjectKind::Container);

    let large = find(&snap, &dc.dn("CN=grp-large,OU=Groups"));
    assert_eq!(large.kind, ObjectKind::Group);
    assert_eq!(large.values("member").len(), dc.seed_users);
    let unicode_group = find(&snap, &dc.dn("CN=Équipe Ünïcode,OU=Groups"));
    assert_eq!(unicode_group.values("member").len(), 2);

    let bulk = snap
        .objects
        .iter()
        .filter(|o| {
            o.text("sAMAccountName")
                .is_some_and(|s| s.starts_with("bulk"))
        })
        .count();
    assert!(bulk >= dc.seed_users, "{bulk} bulk users");
    let guids: HashSet<ObjectGuid> = snap.objects.iter().map(|o| o.guid).collect();
    assert_eq!(guids.len(), snap.objects.len(), "every object once");
}

#[tokio::test]
async fn escaped_dns_parse_and_match_member_values() {
    let Some(dc) = dc::dc() else { return };
    let snap = read_full(&dc.cfg(), &attrs(&["displayName"]))
        .await
        .expect("full read");
    let smith = find(&snap, &dc.dn(r"CN=Smith\, John,OU=Sales,OU=Staff"));
    assert_eq!(smith.dn.leaf_value().as_deref(), Some("Smith, John"));
    assert_eq!(smith.text("displayName"), Some("Smith, John"));
    let obrien = find(&snap, &dc.dn(r"CN=O'Brien \+ Quotes,OU=Sales,OU=Staff"));
    assert_eq!(obrien.dn.leaf_value().as_deref(), Some("O'Brien + Quotes"));
    let sales = find(&snap, &dc.dn("CN=grp-sales,OU=Groups"));
    let members = dn_set(sales.texts("member"));
    assert!(members.contains(&smith.dn), "{members:?}");
    assert!(members.contains(&obrien.dn), "{members:?}");
}

#[tokio::test]
async fn ranged_retrieval_follows_windows_to_the_end() {
    let Some(dc) = dc::dc() else { return };
    assert!(
        dc.seed_users >= 25,
        "the ranged test needs grp-large with at least 25 members"
    );
    let plain = read_full(&dc.cfg(), &attrs(&[])).await.expect("plain read");
    // Samba never forces ranges, so ask for a 7-value first window: the reader must then
    // walk 7-value windows until the server answers `n-*`.
    let ranged = read_full(&dc.cfg(), &attrs(&["member;range=0-6"]))
        .await
        .expect("ranged read");
    let g = dc.dn("CN=grp-large,OU=Groups");
    let a = dn_set(find(&plain, &g).texts("member"));
    let b = dn_set(find(&ranged, &g).texts("member"));
    assert_eq!(b.len(), dc.seed_users);
    assert_eq!(a, b);
    assert!(
        find(&ranged, &g)
            .attrs
            .names()
            .all(|k| !k.contains(";range="))
    );
    // Small groups come back complete in the first window too.
    let sales = dc.dn("CN=grp-sales,OU=Groups");
    assert_eq!(find(&ranged, &sales).values("member").len(), 3);
}

#[tokio::test]
async fn ou_tracked_by_guid_survives_a_rename() {
    let Some(dc) = dc::dc() else { return };
    let name = dc::unique("rn");
    let old = dc.dn(&format!("OU={name}"));
    let new_rdn = format!("OU={name}-renamed");
    let new = dc.dn(&new_rdn);
    let mut admin = dc.admin().await;
    dc::add_ou(&mut admin, &old, &name).await;

    let old_dn = Dn::parse(&old).unwrap();
    let resolved = resolve_dns(&dc.cfg(), std::slice::from_ref(&old_dn))
        .await
        .expect("resolve DN");
    let (guid, current) = resolved[&old_dn].clone().expect("OU resolves");
    assert_eq!(current, old_dn);

    admin
        .modifydn(&old, &new_rdn, true, None)
        .await
        .expect("rename")
        .success()
        .expect("rename result");

    let by_guid = resolve_guids(&dc.cfg(), &[guid])
        .await
        .expect("resolve GUID");
    assert_eq!(by_guid[&guid], Some(Dn::parse(&new).unwrap()));
    let again = resolve_dns(&dc.cfg(), std::slice::from_ref(&old_dn))
        .await
        .expect("resolve old DN");
    assert_eq!(again[&old_dn], None, "the old DN no longer exists");
    let missing = ObjectGuid([0xab; 16]);
    assert_eq!(
        resolve_guids(&dc.cfg(), &[missing])
            .await
            .expect("resolve unknown")[&missing],
        None
    );
    dc::delete_tree(&mut admin, &new).await;
}

#[tokio::test]
async fn members_in_chain_expands_nested_groups() {
    let Some(dc) = dc::dc() else { return };
    let top = Dn::parse(&dc.dn("CN=grp-top,OU=Groups")).unwrap();
    let members: BTreeSet<Dn> = members_in_chain(&dc.cfg(), &top)
        .await
        .expect("in chain")
        .into_iter()
        .collect();
    for m in [
        "CN=grp-staff-all,OU=Groups",
        "CN=grp-sales,OU=Groups",
        "CN=Zoë Müller,OU=Sales,OU=Staff",
        r"CN=Smith\, John,OU=Sales,OU=Staff",
        "CN=李雷,OU=Engineering,OU=Staff",
        "CN=Disabled User,OU=Staff",
        "CN=Local Suffix,OU=Staff",
    ] {
        assert!(
            members.contains(&Dn::parse(&dc.dn(m)).unwrap()),
            "{m} missing from {members:?}"
        );
    }
    assert!(!members.contains(&Dn::parse(&dc.dn("CN=No UPN,OU=Staff")).unwrap()));
}

#[tokio::test]
async fn delta_sees_change_move_and_delete() {
    let Some(dc) = dc::dc() else { return };
    let cfg = dc.cfg();
    let name = dc::unique("dl");
    let ou = dc.dn(&format!("OU={name}"));
    let ou2 = dc.dn(&format!("OU={name}-b"));
    let (a, b, c) = (
        format!("CN=A {name},{ou}"),
        format!("CN=B {name},{ou}"),
        format!("CN=C\\, {name},{ou}"),
    );
    let g = format!("CN=G {name},{ou}");
    let mut admin = dc.admin().await;
    dc::add_ou(&mut admin, &ou, &name).await;
    dc::add_ou(&mut admin, &ou2, &format!("{name}-b")).await;
    dc::add_user(&mut admin, &a, &format!("a{}", &name[..name.len().min(18)])).await;
    dc::add_user(&mut admin, &b, &format!("b{}", &name[..name.len().min(18)])).await;
    dc::add_user(&mut admin, &c, &format!("c{}", &name[..name.len().min(18)])).await;
    dc::add_group(
        &mut admin,
        &g,
        &format!("g{}", &name[..name.len().min(18)]),
        &[&c, &a],
    )
    .await;

    let req = attrs(&["description"]);
    let before = read_full(&cfg, &req).await.expect("full read");
    let c_guid = find(&before, &c).guid;
    let wm = read_watermark(&cfg).await.expect("watermark");
    assert!(wm.highest_usn >= before.highest_usn.unwrap());

    admin
        .modify(
            &a,
            vec![Mod::Replace("description", HashSet::from(["after"]))],
        )
        .await
        .expect("modify")
        .success()
        .expect("modify result");
    let b_rdn = format!("CN=B {name}");
    admin
        .modifydn(&b, &b_rdn, true, Some(&ou2))
        .await
        .expect("move")
        .success()
        .expect("move result");
    admin
        .delete(&c)
        .await
        .expect("delete")
        .success()
        .expect("delete result");

    let delta = read_delta(&cfg, &req, &wm).await.expect("delta read");
    let changed = |dn: &str| {
        let want = Dn::parse(dn).unwrap();
        delta.changed.iter().find(|o| o.dn == want)
    };
    assert_eq!(
        changed(&a).and_then(|o| o.text("description")),
        Some("after")
    );
    let moved = changed(&format!("{b_rdn},{ou2}")).expect("moved user in delta");
    assert_eq!(moved.guid, find(&before, &b).guid);
    assert!(changed(&b).is_none());
    let tomb = delta
        .deleted
        .iter()
        .find(|t| t.guid == c_guid)
        .expect("tombstone of C");
    assert_eq!(tomb.former_dn, Some(Dn::parse(&c).unwrap()));
    assert_eq!(tomb.last_known_parent, Some(Dn::parse(&ou).unwrap()));
    assert_eq!(tomb.kind, ObjectKind::User);
    assert!(tomb.usn.is_some_and(|u| u > wm.highest_usn));
    assert!(delta.new_watermark.highest_usn > wm.highest_usn);
    assert_eq!(delta.new_watermark.invocation_id, wm.invocation_id);
    // Unchanged seeded objects are not in the delta.
    assert!(changed(&dc.dn("CN=Zoë Müller,OU=Sales,OU=Staff")).is_none());

    // Nothing of ours changed since the new watermark.
    let next = read_delta(&cfg, &req, &delta.new_watermark)
        .await
        .expect("second delta");
    assert!(
        next.changed
            .iter()
            .all(|o| !o.dn.is_within(&Dn::parse(&ou).unwrap()))
    );
    assert!(next.deleted.iter().all(|t| t.guid != c_guid));

    // A watermark from another DC database demands a full read.
    let foreign = Watermark {
        invocation_id: ObjectGuid([7; 16]),
        highest_usn: wm.highest_usn,
    };
    let err = read_delta(&cfg, &req, &foreign)
        .await
        .expect_err("foreign watermark");
    assert!(err.requires_full_read(), "{err}");

    dc::delete_tree(&mut admin, &ou).await;
    dc::delete_tree(&mut admin, &ou2).await;
}

#[tokio::test]
async fn starttls_with_the_ca_file_works() {
    let Some(dc) = dc::dc() else { return };
    let wm = read_watermark(&dc.cfg_starttls())
        .await
        .expect("StartTLS read");
    assert!(wm.highest_usn > 0);
}

#[tokio::test]
async fn wrong_ca_file_is_refused_naming_server_and_file() {
    let Some(dc) = dc::dc() else { return };
    let mut cfg = dc.cfg();
    let wrong = std::path::PathBuf::from("/etc/ssl/certs/ca-certificates.crt");
    cfg.ca_file = Some(wrong.clone());
    for url in [dc.ldaps_url.clone(), dc.ldap_url.clone()] {
        cfg.url = url.clone();
        let err = read_full(&cfg, &attrs(&[]))
            .await
            .expect_err("untrusted certificate");
        assert!(
            matches!(err, LdapError::TlsVerification { .. }),
            "{url}: {err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains(&url) && msg.contains(wrong.to_str().unwrap()),
            "{msg}"
        );
        assert!(!msg.contains(&dc.password), "{msg}");
    }
    // System roots do not know the test CA either.
    cfg.ca_file = None;
    cfg.url = dc.ldaps_url.clone();
    let err = read_watermark(&cfg).await.expect_err("system roots");
    assert!(matches!(err, LdapError::TlsVerification { .. }), "{err:?}");
}

#[tokio::test]
async fn plain_ldap_needs_allow_insecure() {
    let Some(dc) = dc::dc() else { return };
    // ldap:// without allow_insecure means StartTLS: with no trust in the server's
    // certificate it fails, proving no plaintext bind was attempted.
    let mut cfg = dc.cfg_starttls();
    cfg.ca_file = Some("/etc/ssl/certs/ca-certificates.crt".into());
    let err = read_watermark(&cfg)
        .await
        .expect_err("StartTLS with an untrusted cert");
    assert!(matches!(err, LdapError::TlsVerification { .. }), "{err:?}");
    // Opting in to plain LDAP works against this lab DC.
    cfg.allow_insecure = true;
    let wm = read_watermark(&cfg)
        .await
        .expect("plain LDAP with allow_insecure");
    assert!(wm.highest_usn > 0);
}

#[tokio::test]
async fn wrong_password_is_a_bind_error_without_the_password() {
    let Some(dc) = dc::dc() else { return };
    let mut cfg = dc.cfg();
    cfg.password = "Wr0ng-Secret-Value".into();
    let err = read_full(&cfg, &attrs(&[]))
        .await
        .expect_err("bad password");
    assert!(
        matches!(err, LdapError::BindFailed { rc: 49, .. }),
        "{err:?}"
    );
    let msg = format!("{err} {err:?} {cfg:?}");
    assert!(!msg.contains("Wr0ng-Secret-Value"), "{msg}");
}

#[tokio::test]
async fn ldap_down_or_silent_is_an_error() {
    let Some(dc) = dc::dc() else { return };
    // Nothing listens: connection refused.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut cfg = dc.cfg();
    cfg.url = format!("ldaps://127.0.0.1:{port}");
    let err = read_full(&cfg, &attrs(&[]))
        .await
        .expect_err("nothing listening");
    assert!(matches!(err, LdapError::Connect { .. }), "{err:?}");
    assert!(err.to_string().contains(&cfg.url));

    // Something accepts but never answers: timeout, not a hang.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    cfg.url = format!("ldaps://{addr}");
    cfg.timeout = Duration::from_millis(800);
    let started = std::time::Instant::now();
    let err = read_full(&cfg, &attrs(&[]))
        .await
        .expect_err("silent server");
    assert!(matches!(err, LdapError::Timeout { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    hold.abort();
}

/// A relay that passes the first `limit` bytes of the server's replies and then cuts the
/// connection: the read must fail rather than return what arrived before the cut.
async fn cutting_relay(upstream: String, limit: usize) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                    return;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let up = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut cr, &mut sw).await;
                });
                let mut passed = 0usize;
                let mut buf = vec![0u8; 16384];
                while passed < limit {
                    let n = match sr.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n.min(limit - passed),
                    };
                    if cw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    passed += n;
                }
                up.abort();
                let _ = cw.shutdown().await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn connection_cut_mid_read_fails_the_whole_read() {
    let Some(dc) = dc::dc() else { return };
    let upstream = dc.ldap_url.trim_start_matches("ldap://").to_string();
    let addr = cutting_relay(upstream, 60_000).await;
    let mut cfg: LdapConfig = dc.cfg();
    cfg.url = format!("ldap://{addr}");
    cfg.allow_insecure = true; // plain, so the relay can count LDAP bytes
    cfg.page_size = 20;
    let err = read_full(&cfg, &attrs(&["description", "proxyAddresses"]))
        .await
        .expect_err("cut connection");
    assert!(
        matches!(
            err,
            LdapError::ConnectionLost { .. } | LdapError::Protocol { .. }
        ),
        "{err:?}"
    );
}
