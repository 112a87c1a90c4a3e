#!/usr/bin/env python3
"""Writes the LDIF that seeds the ad2entra test domain controller.

Stdlib only. Two outputs, because ldbadd (batch mode, run against sam.ldb before
Samba starts) only adds entries, while adding an existing account to the built-in
"Domain Admins" group is a modification:

    seed-dc.py --base-dn DC=corp,DC=example,DC=com --users 100 \
        --add-ldif DIR/seed-add.ldif --modify-ldif DIR/seed-modify.ldif

Edge cases seeded (all DNs relative to the base DN):
  OU=Staff (sub-OUs OU=Sales, OU=Engineering), OU=Service Accounts, OU=Groups
  CN=Zoë Müller,OU=Sales,OU=Staff            unicode name, attributes and mail
  CN=李雷,OU=Engineering,OU=Staff              CJK name
  CN=Smith\\, John,OU=Sales,OU=Staff          comma escaped in the DN
  CN=O'Brien \\+ Quotes,OU=Sales,OU=Staff     plus sign escaped in the DN
  CN=Long Values,OU=Engineering,OU=Staff      1024-char description, 256-char
                                               displayName, 500 proxyAddresses
  CN=Disabled User,OU=Staff                   userAccountControl 514
  CN=Local Suffix,OU=Staff                    UPN in the non-routable corp.local
  CN=No UPN,OU=Staff                          no userPrincipalName at all
  CN=Ada Admin,OU=Staff                       adminCount=1, member of Domain Admins
  CN=svc_backup,OU=Service Accounts           service account
  CN=bulkNNNNN,OU=Sales|Engineering,OU=Staff  --users N generated users
  groups in OU=Groups: grp-sales, grp-engineering, grp-staff-all (nests both),
  grp-top (nests grp-staff-all: three levels), grp-large (all bulk users),
  grp-empty, grp-distribution (distribution group), Équipe Ünïcode
  CN=grp-bulk-NNNNN,OU=Groups                --groups N generic security groups, sharing
                                               --memberships M member values (bulk users,
                                               a few nested groups), the same for a seed
"""

import argparse
import base64
import random
import sys

SAFE_INIT = set(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    "!\"#$%&'()*+,-./;<=>?@[\\]^_`{|}~"
)
SAFE = SAFE_INIT | {" ", ":"}


def escape_rdn(value):
    """RFC 4514 escaping of one RDN value."""
    out = []
    for i, c in enumerate(value):
        if c in ',+"\\<>;=':
            out.append("\\" + c)
        elif c == "#" and i == 0:
            out.append("\\#")
        elif c == " " and (i == 0 or i == len(value) - 1):
            out.append("\\ ")
        else:
            out.append(c)
    return "".join(out)


def line(name, value):
    """One LDIF attribute line; base64 (RFC 2849 `::`) when not SAFE-STRING."""
    if isinstance(value, int):
        value = str(value)
    needs_b64 = (
        value == ""
        or value[0] not in SAFE_INIT
        or value[-1] == " "
        or any(c not in SAFE for c in value)
    )
    if needs_b64:
        return f"{name}:: {base64.b64encode(value.encode('utf-8')).decode('ascii')}"
    return f"{name}: {value}"


def entry(dn, attrs):
    lines = [line("dn", dn)]
    for name, values in attrs:
        if not isinstance(values, list):
            values = [values]
        for v in values:
            lines.append(line(name, v))
    return "\n".join(lines) + "\n\n"


def ou(dn, name):
    return entry(dn, [("objectClass", ["top", "organizationalUnit"]), ("ou", name)])


def user(dn, cn, sam, upn=None, uac=512, **extra):
    attrs = [
        ("objectClass", ["top", "person", "organizationalPerson", "user"]),
        ("cn", cn),
        ("sAMAccountName", sam),
        ("userAccountControl", uac),
    ]
    if upn:
        attrs.append(("userPrincipalName", upn))
    for k, v in extra.items():
        attrs.append((k, v))
    return entry(dn, attrs)


def group(dn, cn, members, group_type=-2147483646, **extra):
    attrs = [
        ("objectClass", ["top", "group"]),
        ("cn", cn),
        ("sAMAccountName", cn.replace(" ", "_")[:20]),
        ("groupType", group_type),
    ]
    if members:
        attrs.append(("member", members))
    for k, v in extra.items():
        attrs.append((k, v))
    return entry(dn, attrs)


def bulk_groups(groups_ou, users, n, memberships, seed):
    """`n` generic security groups sharing `memberships` member values: mostly bulk users
    (distinct within a group), and one group in fifty also nests the group before it.
    Deterministic for a seed. Groups come after their nested groups (ldbadd needs a
    member to exist before the group that lists it)."""
    if n <= 0:
        return []
    rng = random.Random(seed)
    dns = [f"CN=grp-bulk-{i:05d},{groups_ou}" for i in range(1, n + 1)]
    per = [memberships // n + (1 if i < memberships % n else 0) for i in range(n)]
    out = []
    for i, dn in enumerate(dns):
        k = per[i]
        members = []
        if i > 0 and i % 50 == 0 and k > 0:
            members.append(dns[i - 1])
            k -= 1
        members.extend(rng.sample(users, min(k, len(users))))
        cn = dn.split(",", 1)[0][3:]
        out.append(group(dn, cn, members, description=f"Bulk group {i + 1}"))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base-dn", required=True)
    ap.add_argument("--domain", default="corp.example.com", help="routable UPN suffix")
    ap.add_argument("--users", type=int, default=100, help="bulk users to generate")
    ap.add_argument("--groups", type=int, default=0, help="generic bulk groups to generate")
    ap.add_argument("--memberships", type=int, default=0,
                    help="member values shared by the generic groups")
    ap.add_argument("--seed", type=int, default=7, help="random seed of the memberships")
    ap.add_argument("--add-ldif", required=True)
    ap.add_argument("--modify-ldif", required=True)
    a = ap.parse_args()

    base = a.base_dn
    dom = a.domain
    staff = f"OU=Staff,{base}"
    sales = f"OU=Sales,{staff}"
    eng = f"OU=Engineering,{staff}"
    svc = f"OU=Service Accounts,{base}"
    groups = f"OU=Groups,{base}"

    out = []
    out.append(ou(staff, "Staff"))
    out.append(ou(sales, "Sales"))
    out.append(ou(eng, "Engineering"))
    out.append(ou(svc, "Service Accounts"))
    out.append(ou(groups, "Groups"))

    zoe = f"CN={escape_rdn('Zoë Müller')},{sales}"
    out.append(user(zoe, "Zoë Müller", "zmuller", f"zoe.muller@{dom}", givenName="Zoë",
                    sn="Müller", displayName="Zoë Müller", mail=f"zoë.müller@{dom}",
                    department="Sales"))
    lilei = f"CN=李雷,{eng}"
    out.append(user(lilei, "李雷", "lilei", f"lilei@{dom}", givenName="雷", sn="李",
                    displayName="李雷", department="Engineering"))
    smith = f"CN={escape_rdn('Smith, John')},{sales}"
    out.append(user(smith, "Smith, John", "jsmith", f"john.smith@{dom}", givenName="John",
                    sn="Smith", displayName="Smith, John", department="Sales"))
    obrien = f"CN={escape_rdn(chr(39).join(['O', 'Brien + Quotes']))},{sales}"
    out.append(user(obrien, "O'Brien + Quotes", "obrien", f"obrien@{dom}", sn="O'Brien"))
    long_dn = f"CN=Long Values,{eng}"
    proxies = [f"SMTP:long.values@{dom}"] + [f"smtp:alias{i:04d}@{dom}" for i in range(1, 500)]
    out.append(user(long_dn, "Long Values", "longvalues", f"long.values@{dom}",
                    description="d" * 1024, displayName=("Long " + "x" * 251),
                    info="i" * 1024, proxyAddresses=proxies))
    disabled = f"CN=Disabled User,{staff}"
    out.append(user(disabled, "Disabled User", "disabled", f"disabled@{dom}", uac=514))
    local = f"CN=Local Suffix,{staff}"
    out.append(user(local, "Local Suffix", "localsuffix", "local.suffix@corp.local"))
    noupn = f"CN=No UPN,{staff}"
    out.append(user(noupn, "No UPN", "noupn"))
    admin = f"CN=Ada Admin,{staff}"
    out.append(user(admin, "Ada Admin", "adaadmin", f"ada.admin@{dom}", adminCount=1))
    svc_backup = f"CN=svc_backup,{svc}"
    out.append(user(svc_backup, "svc_backup", "svc_backup", f"svc_backup@{dom}",
                    description="backup service account"))

    bulk = []
    for i in range(1, a.users + 1):
        ou_dn = sales if i % 2 else eng
        cn = f"bulk{i:05d}"
        dn = f"CN={cn},{ou_dn}"
        bulk.append(dn)
        out.append(user(dn, cn, cn, f"{cn}@{dom}", givenName="Bulk", sn=f"User {i}",
                        displayName=f"Bulk User {i}", department="Sales" if i % 2 else "Engineering",
                        mail=f"{cn}@{dom}"))

    g_sales = f"CN=grp-sales,{groups}"
    g_eng = f"CN=grp-engineering,{groups}"
    g_all = f"CN=grp-staff-all,{groups}"
    g_top = f"CN=grp-top,{groups}"
    out.append(group(g_sales, "grp-sales", [zoe, smith, obrien]))
    out.append(group(g_eng, "grp-engineering", [lilei, long_dn]))
    out.append(group(g_all, "grp-staff-all", [g_sales, g_eng, disabled]))
    out.append(group(g_top, "grp-top", [g_all, local]))
    out.append(group(f"CN=grp-large,{groups}", "grp-large", bulk))
    out.append(group(f"CN=grp-empty,{groups}", "grp-empty", []))
    out.append(group(f"CN=grp-distribution,{groups}", "grp-distribution", [zoe, lilei],
                     group_type=2, mail=f"distribution@{dom}"))
    out.append(group(f"CN=Équipe Ünïcode,{groups}", "Équipe Ünïcode", [zoe, lilei]))
    out.extend(bulk_groups(groups, bulk, a.groups, a.memberships, a.seed))

    with open(a.add_ldif, "w", encoding="utf-8") as f:
        f.writelines(out)
    with open(a.modify_ldif, "w", encoding="utf-8") as f:
        f.write(f"dn: CN=Domain Admins,CN=Users,{base}\nchangetype: modify\nadd: member\n"
                f"member: {admin}\n-\n\n")
    print(f"seed: {len(out)} entries ({a.users} bulk users, {a.groups} bulk groups, "
          f"{a.memberships} bulk memberships)", file=sys.stderr)


if __name__ == "__main__":
    main()
