//! Small builders for AD fixtures (as LDIF) and target snapshots, shared by tests.
#![allow(dead_code)]

use ad2entra::model::{ObjectGuid, SourceSnapshot, TargetObject, TargetSnapshot};
use ad2entra::policy::{LoadedPolicy, PolicyFile, load};
use base64::Engine;
use serde_json::{Value, json};

pub const BASE: &str = "DC=corp,DC=example,DC=com";

/// A deterministic GUID per number.
pub fn guid(n: u32) -> ObjectGuid {
    let mut b = [0u8; 16];
    b[..4].copy_from_slice(&n.to_le_bytes());
    b[15] = 0xA5;
    ObjectGuid(b)
}

pub fn anchor(n: u32) -> String {
    guid(n).anchor().0
}

/// A deterministic domain SID `S-1-5-21-1-2-3-{rid}`, as objectSid bytes and as the string
/// Graph shows in `onPremisesSecurityIdentifier`.
pub fn sid(rid: u32) -> (Vec<u8>, String) {
    let mut b = vec![1u8, 5, 0, 0, 0, 0, 0, 5];
    for v in [21u32, 1, 2, 3, rid] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    (b, format!("S-1-5-21-1-2-3-{rid}"))
}

/// An LDIF builder.
#[derive(Default, Clone)]
pub struct Ad {
    text: String,
}

impl Ad {
    pub fn new() -> Self {
        let mut a = Ad::default();
        a.entry(
            &format!("OU=Staff,{BASE}"),
            9000,
            &[("objectClass", "organizationalUnit")],
        );
        a.entry(
            &format!("OU=Groups,{BASE}"),
            9001,
            &[("objectClass", "organizationalUnit")],
        );
        a
    }

    pub fn entry(&mut self, dn: &str, n: u32, attrs: &[(&str, &str)]) -> &mut Self {
        let b64 = base64::engine::general_purpose::STANDARD;
        self.text.push_str(&format!("dn:: {}\n", b64.encode(dn)));
        self.text
            .push_str(&format!("objectGUID:: {}\n", b64.encode(guid(n).0)));
        for (k, v) in attrs {
            self.text.push_str(&format!("{k}:: {}\n", b64.encode(v)));
        }
        self.text.push('\n');
        self
    }

    /// A user `sam` in `ou` (under OU=Staff) with UPN `sam@corp.example.com`.
    pub fn user(&mut self, n: u32, sam: &str, extra: &[(&str, &str)]) -> &mut Self {
        let dn = format!("CN={sam},OU=Staff,{BASE}");
        let upn = format!("{sam}@corp.example.com");
        let mut attrs = vec![
            ("objectClass", "top"),
            ("objectClass", "person"),
            ("objectClass", "organizationalPerson"),
            ("objectClass", "user"),
            ("sAMAccountName", sam),
            ("givenName", sam),
            ("sn", "Tester"),
            ("userAccountControl", "512"),
            ("c", "US"),
        ];
        let has = |k: &str| extra.iter().any(|(e, _)| e.eq_ignore_ascii_case(k));
        if !has("userPrincipalName") {
            attrs.push(("userPrincipalName", &upn));
        }
        attrs.retain(|(k, _)| !has(k) || *k == "objectClass");
        attrs.extend_from_slice(extra);
        let attrs: Vec<(&str, &str)> = attrs.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        self.entry(&dn, n, &attrs)
    }

    /// A global security group in OU=Groups with member DNs.
    pub fn group(
        &mut self,
        n: u32,
        cn: &str,
        members: &[&str],
        extra: &[(&str, &str)],
    ) -> &mut Self {
        let dn = format!("CN={cn},OU=Groups,{BASE}");
        let mut attrs = vec![
            ("objectClass", "top"),
            ("objectClass", "group"),
            ("sAMAccountName", cn),
            ("cn", cn),
            ("groupType", "-2147483646"),
        ];
        let has = |k: &str| extra.iter().any(|(e, _)| e.eq_ignore_ascii_case(k));
        attrs.retain(|(k, _)| !has(k));
        let member_dns: Vec<String> = members.iter().map(|m| user_dn(m)).collect();
        for m in &member_dns {
            attrs.push(("member", m));
        }
        attrs.extend_from_slice(extra);
        self.entry(&dn, n, &attrs)
    }

    /// Adds a binary attribute (objectSid, mS-DS-ConsistencyGuid) to the last entry.
    pub fn binary(&mut self, attr: &str, value: &[u8]) -> &mut Self {
        let b64 = base64::engine::general_purpose::STANDARD;
        if self.text.ends_with("\n\n") {
            self.text.pop();
        }
        self.text
            .push_str(&format!("{attr}:: {}\n\n", b64.encode(value)));
        self
    }

    pub fn snapshot(&self) -> SourceSnapshot {
        ad2entra::ad::ldif::read_ldif(&self.text, "fixture.ldif").expect("fixture LDIF parses")
    }

    pub fn ldif(&self) -> &str {
        &self.text
    }
}

/// DN of a fixture user (or of a group, when the name starts with `grp:`).
pub fn user_dn(sam: &str) -> String {
    match sam.strip_prefix("grp:") {
        Some(g) => format!("CN={g},OU=Groups,{BASE}"),
        None => format!("CN={sam},OU=Staff,{BASE}"),
    }
}

pub fn policy(yaml: &str) -> LoadedPolicy {
    let text = format!("apiVersion: ad2entra/v1\n{yaml}");
    load(
        "policy.yaml",
        &[PolicyFile {
            name: "policy.yaml".into(),
            text,
        }],
    )
    .unwrap_or_else(|d| panic!("fixture policy invalid: {d:#?}"))
}

/// A tenant with verified domains and two SKUs, and the given users.
pub fn tenant(users: Vec<Value>) -> TargetSnapshot {
    serde_json::from_value(json!({
        "tenant": "corpexample.onmicrosoft.com",
        "domains": [
            {"id": "corp.example.com", "isVerified": true},
            {"id": "corpexample.onmicrosoft.com", "isVerified": true, "isDefault": true}
        ],
        "subscribedSkus": [
            {"skuId": "6fd2c87f-b296-42f0-b197-1e91e994b900", "skuPartNumber": "ENTERPRISEPACK"},
            {"skuId": "c7df2760-2c81-4ef7-b578-5b5392b571df", "skuPartNumber": "ENTERPRISEPREMIUM"}
        ],
        "users": users,
        "groups": [],
        "directoryRoleMembers": []
    }))
    .expect("fixture tenant")
}

pub fn ext_anchor(t: &TargetSnapshot) -> String {
    t.extension_names().anchor
}

pub fn cloud_user(id: &str, upn: &str, extra: Value) -> Value {
    let mut v =
        json!({"id": id, "userPrincipalName": upn, "displayName": upn, "accountEnabled": true});
    if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
        o.extend(e);
    }
    v
}

pub fn obj(v: Value) -> TargetObject {
    serde_json::from_value(v).expect("target object")
}
