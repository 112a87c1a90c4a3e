//! The demo directory (examples/demo/corp.ldif) loads through the LDIF reader with every
//! fact examples/demo/README.md promises: counts, escaped and unicode DNs, raw GUID bytes,
//! consistent memberOf back-links. Other tests and the demo policy rely on these names.

use ad2entra::ad::ldif::read_ldif_file;
use ad2entra::model::{Dn, ObjectKind, SourceObject, SourceSnapshot};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

const BASE: &str = "DC=corp,DC=example,DC=com";

fn demo() -> SourceSnapshot {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/demo/corp.ldif");
    read_ldif_file(&path).expect("demo LDIF loads")
}

fn find<'a>(s: &'a SourceSnapshot, dn: &str) -> &'a SourceObject {
    let dn = Dn::parse(dn).expect("test DN parses");
    s.objects
        .iter()
        .find(|o| o.dn == dn)
        .map(|o| &**o)
        .unwrap_or_else(|| panic!("{dn} not in the demo"))
}

fn count_in(s: &SourceSnapshot, kind: ObjectKind, parent: &str) -> usize {
    let parent = Dn::parse(parent).expect("test DN parses");
    s.objects
        .iter()
        .filter(|o| o.kind == kind && o.dn.parent().as_ref() == Some(&parent))
        .count()
}

#[test]
fn counts_match_the_readme() {
    let s = demo();
    assert_eq!(s.base_dn.as_ref().map(Dn::as_str), Some(BASE));
    let kinds = |k| s.objects.iter().filter(|o| o.kind == k).count();
    assert_eq!(kinds(ObjectKind::User), 250);
    assert_eq!(kinds(ObjectKind::Group), 25);
    assert_eq!(kinds(ObjectKind::Computer), 5);
    assert_eq!(kinds(ObjectKind::OrganizationalUnit), 12);
    assert_eq!(kinds(ObjectKind::Container), 4);
    let staff = |ou: &str| format!("OU={ou},OU=Staff,{BASE}");
    let expected = [
        (staff("Sales"), 46),
        (staff("Engineering"), 62),
        (staff("Finance"), 23),
        (staff("HR"), 11),
        (staff("Marketing"), 25),
        (staff("Support"), 41),
        (format!("OU=Contractors,{BASE}"), 23),
        (format!("OU=Disabled Users,{BASE}"), 11),
        (format!("OU=Service Accounts,{BASE}"), 3),
        (format!("CN=Users,{BASE}"), 5),
    ];
    for (ou, n) in &expected {
        assert_eq!(count_in(&s, ObjectKind::User, ou), *n, "users in {ou}");
    }
    assert_eq!(
        count_in(&s, ObjectKind::Group, &format!("OU=Groups,{BASE}")),
        20
    );
    let members: usize = s.objects.iter().map(|o| o.values("member").len()).sum();
    assert_eq!(members, 334);
}

#[test]
fn escaped_and_unicode_dns() {
    let s = demo();
    let smith = find(&s, &format!(r"CN=Smith\, John,OU=Sales,OU=Staff,{BASE}"));
    assert_eq!(smith.dn.leaf_value().as_deref(), Some("Smith, John"));
    assert_eq!(smith.text("sAMAccountName"), Some("john.smith"));
    assert_eq!(smith.text("displayName"), Some("Smith, John"));
    // The hex-escaped spelling is the same DN.
    find(&s, &format!(r"CN=Smith\2C John,OU=Sales,OU=Staff,{BASE}"));

    let j = find(
        &s,
        &format!("CN=Jürgen Müller,OU=Engineering,OU=Staff,{BASE}"),
    );
    assert_eq!(j.text("givenName"), Some("Jürgen"));
    assert_eq!(j.text("l"), Some("München"));
    let w = find(&s, &format!("CN=王伟,OU=Engineering,OU=Staff,{BASE}"));
    assert_eq!(w.text("displayName"), Some("王伟"));
    let z = find(&s, &format!("CN=Zoë Ångström,OU=Marketing,OU=Staff,{BASE}"));
    assert_eq!(z.text("sn"), Some("Ångström"));
    find(&s, &format!("CN=Søren Nielsen,OU=Finance,OU=Staff,{BASE}"));
    let g = find(&s, &format!("CN=Équipe Paris,OU=Groups,{BASE}"));
    assert_eq!(g.kind, ObjectKind::Group);
    let emea = find(&s, &format!(r"CN=Sales\, EMEA,OU=Groups,{BASE}"));
    assert_eq!(emea.dn.leaf_value().as_deref(), Some("Sales, EMEA"));
}

#[test]
fn guid_and_sid_bytes_decode() {
    let s = demo();
    let mut seen = HashSet::new();
    for o in &s.objects {
        assert_eq!(o.values("objectGUID")[0].len(), 16);
        assert_eq!(o.guid.anchor().as_str().len(), 24);
        assert!(seen.insert(o.guid), "GUIDs are unique");
        // gen-ldif.py writes version-4 GUIDs: the printed third group starts with 4.
        assert_eq!(o.guid.to_string().as_bytes()[14], b'4', "{}", o.guid);
    }
    let admin = find(&s, &format!("CN=Administrator,CN=Users,{BASE}"));
    let sid = &admin.values("objectSid")[0];
    assert_eq!(sid[0], 1, "SID revision");
    assert_eq!(sid[1], 5, "sub-authority count");
    assert_eq!(&sid[sid.len() - 4..], &500u32.to_le_bytes(), "RID 500");
}

#[test]
fn edge_cases_are_present() {
    let s = demo();
    let user = |dn: &str| find(&s, &format!("{dn},{BASE}"));
    let admin = user("CN=Administrator,CN=Users");
    assert!(admin.flag("isCriticalSystemObject"));
    assert_eq!(admin.int("adminCount"), Some(1));
    let krbtgt = user("CN=krbtgt,CN=Users");
    assert!(krbtgt.flag("isCriticalSystemObject") && krbtgt.is_disabled());
    assert_eq!(
        user("CN=MSOL_0a1b2c3d4e5f,CN=Users").text("sAMAccountName"),
        Some("MSOL_0a1b2c3d4e5f")
    );
    assert_eq!(
        user("CN=AAD_1234567890ab,CN=Users").text("sAMAccountName"),
        Some("AAD_1234567890ab")
    );
    for svc in ["svc_backup", "svc_sql", "svc_ad2entra"] {
        user(&format!("CN={svc},OU=Service Accounts"));
    }
    assert_eq!(
        user("CN=Helpdesk Admin,OU=Support,OU=Staff").int("adminCount"),
        Some(1)
    );
    assert_eq!(
        user("CN=Pat Legacy,OU=Finance,OU=Staff").text("userPrincipalName"),
        None
    );
    let long = user("CN=Maximilian Langenberg,OU=Marketing,OU=Staff");
    assert!(
        long.text("displayName")
            .is_some_and(|d| d.chars().count() > 256)
    );
    let a = user("CN=Alex Kim,OU=Sales,OU=Staff");
    let b = user("CN=Alexandra Kim,OU=Engineering,OU=Staff");
    assert_eq!(a.text("userPrincipalName"), b.text("userPrincipalName"));
    assert_eq!(
        user("CN=Marco Rossi,OU=Support,OU=Staff").text("userPrincipalName"),
        Some("marco.rossi@corp.local")
    );
    assert!(user("CN=Dana Leaver,OU=Sales,OU=Staff").is_disabled());
    let disabled = s
        .objects
        .iter()
        .filter(|o| o.kind == ObjectKind::User)
        .filter(|o| {
            o.dn.as_str()
                .ends_with(&format!("OU=Disabled Users,{BASE}"))
        })
        .all(|o| o.is_disabled());
    assert!(disabled);
    let contractors_local = s
        .objects
        .iter()
        .filter(|o| o.kind == ObjectKind::User)
        .filter(|o| o.dn.as_str().ends_with(&format!("OU=Contractors,{BASE}")))
        .all(|o| {
            o.text("userPrincipalName")
                .is_some_and(|u| u.ends_with("@corp.local"))
        });
    assert!(contractors_local);
    for g in [
        "Domain Admins,CN=Users",
        "Enterprise Admins,CN=Users",
        "Administrators,CN=Builtin",
    ] {
        let g = user(&format!("CN={g}"));
        assert!(g.flag("isCriticalSystemObject") && g.int("adminCount") == Some(1));
    }
}

#[test]
fn nesting_and_member_of_are_consistent() {
    let s = demo();
    let by_dn: HashMap<&Dn, &SourceObject> = s.objects.iter().map(|o| (&o.dn, &**o)).collect();
    let pilot = find(&s, &format!("CN=M365 Pilot,OU=Groups,{BASE}"));
    let wave2 = Dn::parse(&format!("CN=M365 Pilot Wave 2,OU=Groups,{BASE}")).unwrap();
    assert!(
        pilot
            .texts("member")
            .any(|m| Dn::parse(m).unwrap() == wave2)
    );
    let e3 = find(&s, &format!("CN=M365 E3 Users,OU=Groups,{BASE}"));
    assert_eq!(e3.int("groupType"), Some(-2147483646));
    // Every member value names an object in the file, and each membership has its
    // memberOf back-link (and nothing else does).
    let mut forward = HashSet::new();
    for g in s.objects.iter().filter(|o| o.kind == ObjectKind::Group) {
        for m in g.texts("member") {
            let m = Dn::parse(m).expect("member DN parses");
            let target = by_dn.get(&m).unwrap_or_else(|| panic!("{m} missing"));
            forward.insert((target.dn.clone(), g.dn.clone()));
        }
    }
    let mut back = HashSet::new();
    for o in &s.objects {
        for g in o.texts("memberOf") {
            back.insert((o.dn.clone(), Dn::parse(g).expect("memberOf parses")));
        }
    }
    assert_eq!(forward, back);
    assert_eq!(forward.len(), 334);
    let biggest = s.objects.iter().map(|o| o.values("member").len()).max();
    assert!(
        biggest < Some(1500),
        "the small demo has no ranged-size group"
    );
}

/// Users reachable from a group through nested membership.
fn nested_users(s: &SourceSnapshot, group: &str) -> HashSet<Dn> {
    let by_dn: HashMap<&Dn, &SourceObject> = s.objects.iter().map(|o| (&o.dn, &**o)).collect();
    let mut users = HashSet::new();
    let mut seen = HashSet::new();
    let mut todo = vec![Dn::parse(group).expect("test DN parses")];
    while let Some(g) = todo.pop() {
        if !seen.insert(g.clone()) {
            continue;
        }
        for m in by_dn[&g].texts("member") {
            let m = Dn::parse(m).expect("member DN parses");
            match by_dn[&m].kind {
                ObjectKind::Group => todo.push(m),
                _ => {
                    users.insert(m);
                }
            }
        }
    }
    users
}

#[test]
fn effective_memberships_match_the_readme() {
    let s = demo();
    let e3 = nested_users(&s, &format!("CN=M365 E3 Users,OU=Groups,{BASE}"));
    assert_eq!(e3.len(), 210);
    let pilot = nested_users(&s, &format!("CN=M365 Pilot,OU=Groups,{BASE}"));
    assert_eq!(pilot.len(), 26);
    let by_dn: HashMap<&Dn, &SourceObject> = s.objects.iter().map(|o| (&o.dn, &**o)).collect();
    let enabled = pilot.iter().filter(|d| !by_dn[d].is_disabled()).count();
    assert_eq!(enabled, 25);
    let kenneth = Dn::parse(&format!("CN=Kenneth Brown,OU=Contractors,{BASE}")).unwrap();
    assert!(pilot.contains(&kenneth));
}
