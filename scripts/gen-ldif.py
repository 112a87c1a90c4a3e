#!/usr/bin/env python3
"""Generate an AD-like LDIF export of a fictional company, deterministically.

Stdlib only (Python 3.11). The output is what `ldifde -f` / `ldapsearch -LLL` would
give for a small Windows domain: RFC 2849, non-ASCII values and DNs base64-encoded,
lines folded at 76 columns, binary objectGUID/objectSid, memberOf back-links that match
the groups' member values. ad2entra reads it with `source::ldif`.

    gen-ldif.py --users 250 --groups 25 --seed 42 --out examples/demo/corp.ldif
    gen-ldif.py --users 100000 --groups 5000 --memberships 500000 --out target/bench/big.ldif

--users        total user objects (persons, not computers), including the fixed edge
               cases and system accounts (at least FIXED_USERS)
--groups       total groups including the 25 named ones; extra ones are generic
               `CN=Project NNNN,OU=Projects,OU=Groups` groups
--memberships  target total number of `member` values; the named groups' structure
               always comes first, the rest goes to the generic groups (skewed, so some
               are large); 0 means "structure only"
--summary      also write a Markdown summary (counts per OU, groups and members)

The same seed and options always give byte-identical output.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import random
import struct
import sys
from collections import Counter

DOMAIN = "DC=corp,DC=example,DC=com"
SUFFIX = "corp.example.com"
LOCAL_SUFFIX = "corp.local"
TENANT = "corpexample.onmicrosoft.com"
CONFIG = f"CN=Configuration,{DOMAIN}"
SCHEMA = f"CN=Schema,{CONFIG}"
COMPANY = "Example Corp"

STAFF = f"OU=Staff,{DOMAIN}"
CONTRACTORS = f"OU=Contractors,{DOMAIN}"
SERVICE = f"OU=Service Accounts,{DOMAIN}"
GROUPS = f"OU=Groups,{DOMAIN}"
PROJECTS = f"OU=Projects,{GROUPS}"
DISABLED = f"OU=Disabled Users,{DOMAIN}"
USERS = f"CN=Users,{DOMAIN}"
BUILTIN = f"CN=Builtin,{DOMAIN}"
COMPUTERS = f"CN=Computers,{DOMAIN}"
DCS = f"OU=Domain Controllers,{DOMAIN}"

# department -> (weight, titles)
DEPARTMENTS = {
    "Sales": (22, ["Account Executive", "Sales Manager", "Sales Representative", "Key Account Manager"]),
    "Engineering": (30, ["Software Engineer", "Senior Software Engineer", "QA Engineer", "DevOps Engineer", "Engineering Manager"]),
    "Finance": (10, ["Accountant", "Financial Analyst", "Controller", "Payroll Specialist"]),
    "HR": (6, ["HR Generalist", "Recruiter", "HR Business Partner"]),
    "Marketing": (12, ["Marketing Specialist", "Content Writer", "Product Marketing Manager", "Designer"]),
    "Support": (20, ["Support Engineer", "Service Desk Analyst", "Support Team Lead"]),
}
DEPT_OU = {d: f"OU={d},{STAFF}" for d in DEPARTMENTS}

# office -> (city, st, postalCode, c, co, countryCode, phone prefix)
OFFICES = {
    "New York": ("New York", "NY", "10001", "US", "United States", 840, "+1 212 555"),
    "Seattle": ("Seattle", "WA", "98101", "US", "United States", 840, "+1 206 555"),
    "Berlin": ("Berlin", "BE", "10115", "DE", "Germany", 276, "+49 30 5550"),
    "Munich": ("München", "BY", "80331", "DE", "Germany", 276, "+49 89 5550"),
    "Paris": ("Paris", "IDF", "75002", "FR", "France", 250, "+33 1 5550"),
    "London": ("London", "ENG", "EC1A 1BB", "GB", "United Kingdom", 826, "+44 20 5550"),
}
OFFICE_WEIGHTS = [30, 10, 20, 8, 12, 20]
MOBILE = {"US": "+1 917 555", "DE": "+49 170 555", "FR": "+33 6 555", "GB": "+44 7700 555"}

FIRST = """James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara
Richard Susan Joseph Jessica Thomas Sarah Charles Karen Daniel Nancy Matthew Lisa Anthony Betty
Mark Sandra Donald Ashley Steven Kimberly Paul Emily Andrew Donna Joshua Michelle Kenneth Carol
Kevin Amanda Brian Melissa George Deborah Timothy Stephanie Ronald Rebecca Jason Laura Edward
Helen Jeffrey Sharon Ryan Cynthia Jacob Kathleen Gary Amy Nicholas Angela Eric Shirley Jonathan
Anna Stephen Brenda Larry Pamela Justin Emma Scott Nicole Brandon Samantha Benjamin Katherine
Samuel Christine Gregory Debra Alexander Rachel Frank Carolyn Patrick Janet Raymond Maria Jack
Heather Dennis Diane Jerry Julie Tyler Joyce Aaron Victoria Lukas Hannah Felix Lea Jonas Marie
Louis Camille Hugo Chloe Oliver Amelia Harry Isla Noah Mia Leon Sophie Paul Clara Finn Lina""".split()
LAST = """Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez
Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris
Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill
Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Gomez Phillips Evans
Turner Diaz Parker Cruz Edwards Collins Reyes Stewart Morris Morales Murphy Cook Rogers Gutierrez
Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward Richardson Watson Brooks
Chavez Wood James Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo Sanders Patel Myers
Long Ross Foster Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Koch Richter
Bernard Dubois Durand Lefebvre Moreau Laurent Simon Michel Garnier Faure Evans Davies Hughes
Wright Walsh Byrne Ryan OConnor Quinn Lynch Doyle Novak Horvat Kowalski Nowak Jensen Hansen""".split()

# --------------------------------------------------------------------------- LDIF output

SAFE_INIT = set(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    "!\"#$%&'()*+,-./;=>?@[\\]^_`{|}~"
)
SAFE = SAFE_INIT | {" ", ":", "<"}


def escape_rdn(value: str) -> str:
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


def fold(line: str) -> str:
    """RFC 2849 folding at 76 columns (lines here are ASCII, so columns are bytes)."""
    if len(line) <= 76:
        return line
    parts = [line[:76]]
    rest = line[76:]
    while rest:
        parts.append(" " + rest[:75])
        rest = rest[75:]
    return "\n".join(parts)


def attr_line(name: str, value: str | bytes | int) -> str:
    """One attribute line: `name:: base64` for binary and non-SAFE-STRING values."""
    if isinstance(value, int):
        value = str(value)
    if isinstance(value, bytes):
        return fold(f"{name}:: {base64.b64encode(value).decode('ascii')}")
    if value and value[0] in SAFE_INIT and value[-1] != " " and all(c in SAFE for c in value):
        return fold(f"{name}: {value}")
    if value == "":
        return f"{name}:"
    return fold(f"{name}:: {base64.b64encode(value.encode('utf-8')).decode('ascii')}")


class Entry:
    """One directory object: DN plus ordered (name, value) pairs."""

    __slots__ = ("dn", "attrs", "member_of", "kind", "key", "members", "member_set")

    def __init__(self, dn: str, kind: str, key: str = ""):
        self.dn = dn
        self.kind = kind
        self.key = key  # sAMAccountName or name, for the summary
        self.attrs: list[tuple[str, str | bytes | int]] = []
        self.member_of: list[str] = []
        self.members: list[str] = []  # groups only: direct member DNs
        self.member_set: set[str] = set()

    def add(self, name, *values):
        for v in values:
            if v is None:
                continue
            self.attrs.append((name, v))
        return self

    def render(self, out: list[str]) -> None:
        if not self.dn.isascii():
            out.append(f"# {self.dn}")
        out.append(attr_line("dn", self.dn))
        for name, v in self.attrs:
            out.append(attr_line(name, v))
        for g in self.member_of:
            out.append(attr_line("memberOf", g))
        out.append("")


# --------------------------------------------------------------------------- generator


class Gen:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.usn = 12000
        self.rid = 1100
        self.base_time = dt.datetime(2024, 1, 8, 9, 0, 0)
        sub = [self.rng.randrange(1 << 30, 1 << 32) for _ in range(3)]
        self.domain_sid = (21, *sub)
        self.entries: list[Entry] = []
        self.by_dn: dict[str, Entry] = {}
        self.sams: set[str] = set()
        self.aliases: set[str] = set()
        self.employee_no = 1000

    # identifiers ---------------------------------------------------------------
    def guid(self) -> bytes:
        b = bytearray(self.rng.randbytes(16))
        b[7] = (b[7] & 0x0F) | 0x40  # version 4 (printed field 3 is little-endian)
        b[8] = (b[8] & 0x3F) | 0x80  # RFC 4122 variant
        return bytes(b)

    @staticmethod
    def sid(authority_subs: tuple[int, ...]) -> bytes:
        return struct.pack("<BB", 1, len(authority_subs)) + (5).to_bytes(6, "big") + b"".join(
            struct.pack("<I", s) for s in authority_subs
        )

    def domain_rid_sid(self, rid: int | None = None) -> bytes:
        if rid is None:
            self.rid += 1
            rid = self.rid
        return self.sid((*self.domain_sid, rid))

    def stamp(self, e: Entry) -> None:
        created = self.base_time + dt.timedelta(seconds=self.rng.randrange(0, 300 * 86400))
        changed = created + dt.timedelta(seconds=self.rng.randrange(0, 60 * 86400))
        self.usn += 2
        e.add("whenCreated", created.strftime("%Y%m%d%H%M%S.0Z"))
        e.add("whenChanged", changed.strftime("%Y%m%d%H%M%S.0Z"))
        e.add("uSNCreated", self.usn - 1)
        e.add("uSNChanged", self.usn)

    def push(self, e: Entry) -> Entry:
        if e.dn.lower() in self.by_dn:
            raise SystemExit(f"internal error: duplicate DN {e.dn}")
        self.entries.append(e)
        self.by_dn[e.dn.lower()] = e
        return e

    def unique_sam(self, base: str) -> str:
        base = base[:20]
        sam, n = base, 1
        while sam.lower() in self.sams:
            n += 1
            suffix = str(n)
            sam = base[: 20 - len(suffix)] + suffix
        self.sams.add(sam.lower())
        return sam

    # containers ----------------------------------------------------------------
    def container(self, dn: str, classes: list[str], category: str, critical=False, desc=None):
        rdn_type, rdn_value = dn.split(",", 1)[0].split("=", 1)
        e = Entry(dn, "container", rdn_value)
        e.add("objectClass", *classes)
        e.add(rdn_type.lower() if rdn_type != "DC" else "dc", rdn_value)
        e.add("name", rdn_value)
        e.add("distinguishedName", dn)
        e.add("description", desc)
        e.add("objectGUID", self.guid())
        e.add("objectCategory", f"CN={category},{SCHEMA}")
        if critical:
            e.add("isCriticalSystemObject", "TRUE")
        self.stamp(e)
        return self.push(e)

    # users ---------------------------------------------------------------------
    def user(
        self,
        ou: str,
        given: str,
        sn: str,
        *,
        cn: str | None = None,
        sam: str | None = None,
        upn: str | None | bool = True,
        upn_suffix: str = SUFFIX,
        display: str | bool | None = True,
        department: str | None = None,
        title: str | None = None,
        company: str | None = COMPANY,
        office: str | None = None,
        uac: int = 512,
        mail: bool | str = True,
        employee: bool = True,
        extra: list[tuple[str, object]] | None = None,
        rid: int | None = None,
        kind: str = "user",
    ) -> Entry:
        cn = cn or f"{given} {sn}".strip()
        dn = f"CN={escape_rdn(cn)},{ou}"
        if dn.lower() in self.by_dn:
            n = 2
            while f"CN={escape_rdn(f'{cn} {n}')},{ou}".lower() in self.by_dn:
                n += 1
            cn = f"{cn} {n}"
            dn = f"CN={escape_rdn(cn)},{ou}"
        sam = self.unique_sam(sam or ascii_name(f"{given}.{sn}".strip(".")).lower())
        if upn is True:
            upn = f"{sam}@{upn_suffix}"
        e = Entry(dn, kind, sam)
        e.add("objectClass", "top", "person", "organizationalPerson", "user")
        e.add("cn", cn)
        e.add("sn", sn or None)
        e.add("givenName", given or None)
        # display: True = same as cn, None = not set (AD stores no empty values)
        e.add("displayName", cn if display is True else display or None)
        e.add("name", cn)
        e.add("distinguishedName", dn)
        e.add("objectGUID", self.guid())
        e.add("objectSid", self.domain_rid_sid(rid))
        e.add("sAMAccountName", sam)
        e.add("sAMAccountType", 805306368)
        e.add("userPrincipalName", upn or None)
        if mail:
            primary = mail if isinstance(mail, str) else f"{sam}@{SUFFIX}"
            e.add("mail", primary)
            local = primary.split("@", 1)[0]
            secondary = [f"smtp:{local}@{TENANT}"]
            if given and sn and ascii_name(given) and ascii_name(sn):
                alias = f"{ascii_name(given)[0]}{ascii_name(sn)}".lower()
                # Exchange keeps proxy addresses unique: the second J. Smith gets no alias.
                if alias != local and alias not in self.aliases:
                    self.aliases.add(alias)
                    secondary.insert(0, f"smtp:{alias}@{SUFFIX}")
            e.add("proxyAddresses", f"SMTP:{primary}", *secondary)
        e.add("department", department)
        e.add("title", title)
        e.add("company", company)
        if office:
            city, st, postal, c, co, code, phone = OFFICES[office]
            e.add("physicalDeliveryOfficeName", office)
            e.add("l", city)
            e.add("st", st)
            e.add("postalCode", postal)
            e.add("c", c)
            e.add("co", co)
            e.add("countryCode", code)
            e.add("telephoneNumber", f"{phone} {self.rng.randrange(1000, 9999)}")
            e.add("mobile", f"{MOBILE[c]} {self.rng.randrange(1000000, 9999999)}")
        if employee:
            self.employee_no += 1
            e.add("employeeID", f"E{self.employee_no:06d}")
        e.add("userAccountControl", uac)
        e.add("primaryGroupID", 513)
        e.add("objectCategory", f"CN=Person,{SCHEMA}")
        for name, v in extra or []:
            e.add(name, v)
        self.stamp(e)
        return self.push(e)

    def random_person(self):
        return self.rng.choice(FIRST), self.rng.choice(LAST)

    def random_office(self) -> str:
        return self.rng.choices(list(OFFICES), OFFICE_WEIGHTS)[0]

    # groups --------------------------------------------------------------------
    def group(self, ou: str, cn: str, group_type: int, *, sam=None, desc=None, mail=None,
              critical=False, admin=False, rid=None, sid=None) -> Entry:
        dn = f"CN={escape_rdn(cn)},{ou}"
        sam = self.unique_sam(sam or cn)
        e = Entry(dn, "group", cn)
        e.add("objectClass", "top", "group")
        e.add("cn", cn)
        e.add("name", cn)
        e.add("distinguishedName", dn)
        e.add("description", desc)
        e.add("objectGUID", self.guid())
        e.add("objectSid", sid or self.domain_rid_sid(rid))
        e.add("sAMAccountName", sam)
        if group_type & 0x80000000 == 0:
            sam_type = 268435457 if group_type & 0x4 == 0 else 536870913  # distribution
        else:
            sam_type = 536870912 if group_type & 0x5 else 268435456  # domain-local/builtin
        e.add("sAMAccountType", sam_type)
        # groupType is a signed 32-bit integer in AD.
        e.add("groupType", group_type - (1 << 32) if group_type & 0x80000000 else group_type)
        if mail:
            e.add("mail", mail)
            e.add("proxyAddresses", f"SMTP:{mail}")
        if admin:
            e.add("adminCount", 1)
        if critical:
            e.add("isCriticalSystemObject", "TRUE")
        e.add("objectCategory", f"CN=Group,{SCHEMA}")
        self.stamp(e)
        return self.push(e)

    def computer(self, ou: str, name: str, os_name: str, uac: int, critical=False) -> Entry:
        dn = f"CN={name},{ou}"
        sam = self.unique_sam(f"{name}$")
        e = Entry(dn, "computer", sam)
        e.add("objectClass", "top", "person", "organizationalPerson", "user", "computer")
        e.add("cn", name)
        e.add("name", name)
        e.add("distinguishedName", dn)
        e.add("objectGUID", self.guid())
        e.add("objectSid", self.domain_rid_sid())
        e.add("sAMAccountName", sam)
        e.add("sAMAccountType", 805306369)
        e.add("dNSHostName", f"{name.lower()}.{SUFFIX}")
        e.add("operatingSystem", os_name)
        e.add("userAccountControl", uac)
        e.add("primaryGroupID", 516 if critical else 515)
        if critical:
            e.add("isCriticalSystemObject", "TRUE")
        e.add("objectCategory", f"CN=Computer,{SCHEMA}")
        self.stamp(e)
        return self.push(e)


def ascii_name(s: str) -> str:
    """A sAMAccountName-friendly ASCII form: ü→ue, ö→oe, ä→ae, ß→ss, other accents dropped."""
    import unicodedata

    table = {"ü": "ue", "ö": "oe", "ä": "ae", "Ü": "Ue", "Ö": "Oe", "Ä": "Ae", "ß": "ss",
             "ø": "o", "Ø": "O", "å": "a", "Å": "A", "æ": "ae", "Æ": "Ae"}
    s = "".join(table.get(c, c) for c in s)
    s = unicodedata.normalize("NFKD", s)
    return "".join(c for c in s if c.isascii() and (c.isalnum() or c in ".-_"))


def parent_dn(dn: str) -> str:
    """The DN after the first unescaped comma."""
    i = 0
    while i < len(dn):
        if dn[i] == "\\":
            i += 2
            continue
        if dn[i] == ",":
            return dn[i + 1:]
        i += 1
    return ""


def add_member(group: Entry, member: Entry) -> bool:
    """Adds a direct membership and its memberOf back-link; False if already there."""
    if member.dn in group.member_set:
        return False
    group.member_set.add(member.dn)
    group.members.append(member.dn)
    member.member_of.append(group.dn)
    return True


def build(args) -> tuple[Gen, dict]:
    g = Gen(args.seed)
    rng = g.rng
    facts: dict = {"edge": []}

    # ---- domain skeleton
    g.container(DOMAIN, ["top", "domain", "domainDNS"], "Domain-DNS")
    g.container(USERS, ["top", "container"], "Container", critical=True,
                desc="Default container for upgraded user accounts")
    g.container(COMPUTERS, ["top", "container"], "Container", critical=True,
                desc="Default container for upgraded computer accounts")
    g.container(BUILTIN, ["top", "builtinDomain"], "Builtin-Domain", critical=True)
    g.container(DCS, ["top", "organizationalUnit"], "Organizational-Unit", critical=True,
                desc="Default container for domain controllers")
    for dn, desc in [
        (STAFF, "Employees, one sub-OU per department"),
        *[(DEPT_OU[d], f"{d} department") for d in DEPARTMENTS],
        (CONTRACTORS, "External contractors (non-routable corp.local UPNs)"),
        (SERVICE, "Service accounts: never synced"),
        (GROUPS, "Security and distribution groups"),
        (DISABLED, "Leavers, disabled and parked before deletion"),
    ]:
        g.container(dn, ["top", "organizationalUnit"], "Organizational-Unit", desc=desc)
    if args.groups > NAMED_GROUPS:
        g.container(PROJECTS, ["top", "organizationalUnit"], "Organizational-Unit",
                    desc="Project groups")

    def edge(e: Entry, what: str):
        facts["edge"].append((what, e.dn, e.key))
        return e

    # ---- system accounts in CN=Users
    admin = edge(g.user(USERS, "", "", cn="Administrator", sam="Administrator", display=None,
                        upn=f"Administrator@{SUFFIX}", mail=False, employee=False, company=None,
                        uac=66048, rid=500,
                        extra=[("description", "Built-in account for administering the computer/domain"),
                               ("adminCount", 1), ("isCriticalSystemObject", "TRUE")]),
                 "built-in Administrator: adminCount 1, isCriticalSystemObject TRUE")
    edge(g.user(USERS, "", "", cn="Guest", sam="Guest", upn=None, mail=False, employee=False,
                display=None,
                company=None, uac=66082, rid=501,
                extra=[("description", "Built-in account for guest access to the computer/domain"),
                       ("isCriticalSystemObject", "TRUE")]),
         "built-in Guest: disabled, isCriticalSystemObject TRUE")
    krbtgt = edge(g.user(USERS, "", "", cn="krbtgt", sam="krbtgt", upn=None, mail=False,
                         employee=False, company=None, uac=514, rid=502, display=None,
                         extra=[("description", "Key Distribution Center Service Account"),
                                ("adminCount", 1), ("isCriticalSystemObject", "TRUE")]),
                  "krbtgt: disabled, adminCount 1, isCriticalSystemObject TRUE")
    install = "0a1b2c3d4e5f4a5b9c8d7e6f5a4b3c2d"
    edge(g.user(USERS, "", "", cn="MSOL_0a1b2c3d4e5f", sam="MSOL_0a1b2c3d4e5f", mail=False,
                employee=False, company=None, uac=66048, display=None,
                extra=[("description",
                        "Account created by Microsoft Azure Active Directory Connect with installation "
                        f"identifier {install} running on computer SYNC01 configured to synchronize "
                        f"to tenant {TENANT}. This account must have directory replication "
                        "permissions in the local Active Directory and write permission on certain "
                        "attributes to enable Hybrid Deployment.")]),
         "Entra Connect sync account (MSOL_*)")
    edge(g.user(USERS, "", "", cn="AAD_1234567890ab", sam="AAD_1234567890ab", mail=False,
                employee=False, company=None, uac=66048, display=None,
                extra=[("description", "Service account for the Synchronization Service with "
                        f"installation identifier {install} running on computer SYNC01.")]),
         "Entra Connect service account (AAD_*)")

    # ---- service accounts
    svc = {}
    for sam, desc in [("svc_backup", "Backup agent (Veeam)"), ("svc_sql", "SQL Server service"),
                      ("svc_ad2entra", "ad2entra LDAP bind account")]:
        svc[sam] = edge(g.user(SERVICE, "", "", cn=sam, sam=sam, display=sam, mail=False,
                               employee=False, company=None, uac=66048,
                               extra=[("description", desc)]),
                        "service account in OU=Service Accounts")

    # ---- named staff edge cases
    def staff(dept, given, sn, office, what, **kw):
        kw.setdefault("title", DEPARTMENTS[dept][1][0])
        e = g.user(DEPT_OU[dept], given, sn, department=dept, office=office, **kw)
        return edge(e, what)

    named = {}
    named["juergen"] = staff("Engineering", "Jürgen", "Müller", "Munich",
                             "unicode name (umlauts), DN and values base64 in LDIF",
                             title="Senior Software Engineer")
    named["zoe"] = staff("Marketing", "Zoë", "Ångström", "London",
                         "unicode name (diaeresis, ring)", title="Designer")
    named["wang"] = staff("Engineering", "伟", "王", "Seattle", "CJK name (cn/displayName 王伟)",
                          cn="王伟", sam="wang.wei", display="王伟", title="Software Engineer")
    named["soren"] = staff("Finance", "Søren", "Nielsen", "Berlin", "unicode name (ø)",
                           sam="soeren.nielsen", title="Controller")
    named["smith"] = staff("Sales", "John", "Smith", "New York",
                           "escaped comma in the DN (CN=Smith\\, John)", cn="Smith, John",
                           sam="john.smith", display="Smith, John")
    named["helpdesk"] = staff("Support", "Helpdesk", "Admin", "Berlin",
                              "helpdesk admin: adminCount 1 (member of Account Operators)",
                              sam="helpdesk.admin", title="Service Desk Administrator",
                              extra=[("adminCount", 1)])
    named["noupn"] = staff("Finance", "Pat", "Legacy", "New York", "no userPrincipalName",
                           upn=None, title="Accountant")
    long_display = ("Maximilian Alexander Friedrich Wilhelm von Langenberg-Hohenstein zu "
                    "Obersteinbach, Senior Vice President Global Brand Strategy, Digital "
                    "Transformation, Customer Experience and Omnichannel Marketing Excellence "
                    "for Europe, the Middle East, Africa and the Asia-Pacific Region (interim)")
    assert len(long_display) > 256, len(long_display)
    named["long"] = staff("Marketing", "Maximilian", "Langenberg", "Munich",
                          f"displayName of {len(long_display)} characters (Graph max 256)",
                          display=long_display, sam="max.langenberg",
                          title="SVP Brand Strategy")
    named["alex"] = staff("Sales", "Alex", "Kim", "Seattle",
                          f"UPN conflict: wants alex.kim@{SUFFIX}", sam="alex.kim")
    named["alexandra"] = staff("Engineering", "Alexandra", "Kim", "New York",
                               f"UPN conflict: also wants alex.kim@{SUFFIX}",
                               sam="alexandra.kim", upn=f"alex.kim@{SUFFIX}",
                               mail=f"alexandra.kim@{SUFFIX}")
    named["local"] = staff("Support", "Marco", "Rossi", "Paris",
                           f"staff member with non-routable UPN @{LOCAL_SUFFIX}",
                           sam="marco.rossi", upn=f"marco.rossi@{LOCAL_SUFFIX}")
    named["leaver"] = staff("Sales", "Dana", "Leaver", "London",
                            "disabled (514) but still in OU=Sales and its groups",
                            sam="dana.leaver", uac=514)
    named["svc_reports"] = staff("Finance", "", "", "Berlin",
                                 "service account misplaced in OU=Staff (sAMAccountName svc_*)",
                                 cn="svc_reports", sam="svc_reports", display="svc_reports",
                                 mail=False, employee=False, uac=66048, title=None,
                                 extra=[("description", "Finance reporting service")])

    fixed_users = sum(1 for e in g.entries if e.kind == "user")
    if args.users < fixed_users + 20:
        raise SystemExit(f"--users must be at least {fixed_users + 20} "
                         f"({fixed_users} fixed edge-case and system accounts)")

    # ---- generic users
    generic = args.users - fixed_users
    n_contract = round(generic * 0.10)
    n_disabled = round(generic * 0.05)
    n_staff = generic - n_contract - n_disabled
    weights = [w for w, _ in DEPARTMENTS.values()]
    total_w = sum(weights)
    per_dept = {d: n_staff * w // total_w for d, (w, _) in DEPARTMENTS.items()}
    for d in list(DEPARTMENTS)[: n_staff - sum(per_dept.values())]:
        per_dept[d] += 1
    dept_users: dict[str, list[Entry]] = {d: [] for d in DEPARTMENTS}
    for e in g.entries:
        for d, ou in DEPT_OU.items():
            if e.dn.endswith("," + ou):
                dept_users[d].append(e)
    for d, count in per_dept.items():
        titles = DEPARTMENTS[d][1]
        for _ in range(count):
            given, sn = g.random_person()
            dept_users[d].append(g.user(DEPT_OU[d], given, sn, department=d,
                                        title=rng.choice(titles), office=g.random_office()))
    contractors = []
    for _ in range(n_contract):
        given, sn = g.random_person()
        d = rng.choice(list(DEPARTMENTS))
        contractors.append(g.user(CONTRACTORS, given, sn,
                                  sam=f"ext.{ascii_name(given)}.{ascii_name(sn)}".lower(),
                                  upn_suffix=LOCAL_SUFFIX, mail=False, employee=False,
                                  department=d, title="Contractor",
                                  company=rng.choice(["Contoso Staffing Ltd", "Fabrikam Consulting",
                                                      "Northwind Services"]),
                                  office=g.random_office()))
    leavers = []
    for _ in range(n_disabled):
        given, sn = g.random_person()
        leavers.append(g.user(DISABLED, given, sn, uac=514, department=rng.choice(list(DEPARTMENTS)),
                              office=g.random_office(),
                              extra=[("description", "Leaver - disabled by HR offboarding")]))

    # ---- computers (AD holds them; ad2entra must never treat them as users)
    g.computer(DCS, "DC1", "Windows Server 2022 Standard", 532480, critical=True)
    for name in ["WS-0001", "WS-0002", "LT-0003"]:
        g.computer(COMPUTERS, name, "Windows 11 Enterprise", 4096)
    g.computer(COMPUTERS, "SYNC01", "Windows Server 2022 Standard", 4096)

    # ---- groups
    SG_GLOBAL, SG_UNIVERSAL, SG_LOCAL, DL_GLOBAL, DL_UNIVERSAL = (
        0x80000002, 0x80000008, 0x80000004, 2, 8)
    grp = {}
    grp["domain_admins"] = g.group(USERS, "Domain Admins", SG_GLOBAL, rid=512, critical=True,
                                   admin=True, desc="Designated administrators of the domain")
    grp["domain_users"] = g.group(USERS, "Domain Users", SG_GLOBAL, rid=513, critical=True,
                                  desc="All domain users")
    grp["enterprise_admins"] = g.group(USERS, "Enterprise Admins", SG_UNIVERSAL, rid=519,
                                       critical=True, admin=True,
                                       desc="Designated administrators of the enterprise")
    grp["administrators"] = g.group(BUILTIN, "Administrators", 0x80000005, critical=True,
                                    admin=True, sid=Gen.sid((32, 544)),
                                    desc="Administrators have complete and unrestricted access")
    grp["account_operators"] = g.group(BUILTIN, "Account Operators", 0x80000005, critical=True,
                                       admin=True, sid=Gen.sid((32, 548)),
                                       desc="Members can administer domain user and group accounts")
    dept_grp = {}
    for d in DEPARTMENTS:
        dept_grp[d] = g.group(GROUPS, f"Dept {d}", SG_GLOBAL, sam=f"dept-{d.lower()}",
                              desc=f"All members of the {d} department")
    grp["all_staff"] = g.group(GROUPS, "All Staff", SG_UNIVERSAL, sam="all-staff",
                               desc="Every employee (nests the Dept groups)")
    grp["e3"] = g.group(GROUPS, "M365 E3 Users", SG_GLOBAL, sam="m365-e3-users",
                        desc="Licence group: Microsoft 365 E3")
    grp["pilot"] = g.group(GROUPS, "M365 Pilot", SG_GLOBAL, sam="m365-pilot",
                           desc="Users synced in the pilot phase")
    grp["wave2"] = g.group(GROUPS, "M365 Pilot Wave 2", SG_GLOBAL, sam="m365-pilot-wave2",
                           desc="Second pilot wave (nested in M365 Pilot)")
    grp["vpn"] = g.group(GROUPS, "VPN Users", SG_GLOBAL, sam="vpn-users", desc="Remote access")
    grp["eng_leads"] = g.group(GROUPS, "Engineering Leads", SG_GLOBAL, sam="eng-leads")
    grp["helpdesk"] = g.group(GROUPS, "Helpdesk", SG_GLOBAL, sam="helpdesk",
                              desc="Service desk staff")
    grp["finance_rw"] = g.group(GROUPS, "Finance Share RW", SG_LOCAL, sam="finance-share-rw",
                                desc="Domain local: write access to \\\\fs1\\finance")
    grp["sales_dl"] = g.group(GROUPS, "Sales Team", DL_GLOBAL, sam="sales-team",
                              mail=f"sales-team@{SUFFIX}", desc="Distribution list")
    grp["newsletter"] = g.group(GROUPS, "Company Newsletter", DL_UNIVERSAL, sam="newsletter",
                                mail=f"newsletter@{SUFFIX}", desc="Universal distribution list")
    grp["contractors"] = g.group(GROUPS, "Contractors All", SG_GLOBAL, sam="contractors-all")
    grp["empty"] = g.group(GROUPS, "Project Phoenix", SG_GLOBAL, sam="project-phoenix",
                           desc="Empty group: project not started")
    grp["paris"] = g.group(GROUPS, "Équipe Paris", SG_GLOBAL, sam="equipe-paris",
                           desc="Bureau de Paris")
    grp["emea"] = g.group(GROUPS, "Sales, EMEA", SG_UNIVERSAL, sam="sales-emea",
                          desc="Escaped comma in the group DN")
    named_count = len(grp) + len(dept_grp)
    assert named_count == NAMED_GROUPS, named_count

    links = 0

    def link(group, member):
        nonlocal links
        if add_member(group, member):
            links += 1

    link(grp["domain_admins"], admin)
    link(grp["enterprise_admins"], admin)
    link(grp["administrators"], admin)
    link(grp["administrators"], grp["domain_admins"])
    link(grp["administrators"], grp["enterprise_admins"])
    link(grp["account_operators"], named["helpdesk"])
    for d, users in dept_users.items():
        for u in users:
            if u is not named["svc_reports"]:
                link(dept_grp[d], u)
        link(grp["all_staff"], dept_grp[d])
    link(grp["e3"], grp["all_staff"])
    for u in contractors[:3]:
        link(grp["e3"], u)
    for key in ["juergen", "zoe", "wang", "smith", "noupn", "long", "alex", "alexandra",
                "local", "leaver"]:
        link(grp["pilot"], named[key])
    link(grp["pilot"], grp["wave2"])
    link(grp["wave2"], named["soren"])
    pool = [u for d in DEPARTMENTS for u in dept_users[d] if u.kind == "user"
            and u not in named.values()]
    for u in rng.sample(pool, min(14, len(pool))):
        link(grp["wave2"], u)
    if contractors:
        link(grp["wave2"], contractors[-1])
    eng_pool = [u for u in dept_users["Engineering"] if u not in named.values()]
    link(grp["eng_leads"], named["juergen"])
    for u in rng.sample(eng_pool, min(5, len(eng_pool))):
        link(grp["eng_leads"], u)
    link(grp["vpn"], grp["eng_leads"])
    link(grp["vpn"], grp["contractors"])
    sup_pool = [u for u in dept_users["Support"] if u not in named.values()]
    for u in rng.sample(sup_pool, min(10, len(sup_pool))):
        link(grp["vpn"], u)
    link(grp["helpdesk"], named["helpdesk"])
    for u in rng.sample(sup_pool, min(6, len(sup_pool))):
        link(grp["helpdesk"], u)
    link(grp["finance_rw"], dept_grp["Finance"])
    link(grp["finance_rw"], svc["svc_backup"])
    sales_pool = [u for u in dept_users["Sales"] if u not in named.values()]
    link(grp["sales_dl"], named["smith"])
    for u in rng.sample(sales_pool, min(10, len(sales_pool))):
        link(grp["sales_dl"], u)
    link(grp["newsletter"], grp["all_staff"])
    link(grp["newsletter"], grp["contractors"])
    for u in contractors:
        link(grp["contractors"], u)
    paris = [u for d in DEPARTMENTS for u in dept_users[d]
             if ("physicalDeliveryOfficeName", "Paris") in u.attrs]
    for u in paris[:12]:
        link(grp["paris"], u)
    emea = [u for u in sales_pool if any(n == "c" and v in ("DE", "FR", "GB") for n, v in u.attrs)]
    link(grp["emea"], named["smith"])
    for u in emea[:8]:
        link(grp["emea"], u)
    structural = links

    # ---- generic project groups, skewed memberships
    projects = []
    for i in range(1, max(0, args.groups - NAMED_GROUPS) + 1):
        r = rng.random()
        gtype = SG_GLOBAL if r < 0.8 else SG_UNIVERSAL if r < 0.9 else DL_GLOBAL
        p = g.group(PROJECTS, f"Project {i:04d}", gtype, sam=f"project-{i:04d}",
                    mail=f"project-{i:04d}@{SUFFIX}" if gtype == DL_GLOBAL else None,
                    desc=f"Project team {i:04d}")
        projects.append(p)
    remaining = max(0, args.memberships - structural) if args.memberships else 0
    if remaining and not projects:
        print(f"warning: {remaining} memberships requested beyond the named structure, but "
              "--groups leaves no generic groups to hold them", file=sys.stderr)
    if projects and remaining:
        # every 50th project group nests the next one (counts as a membership)
        for i in range(0, len(projects) - 1, 50):
            if remaining:
                link(projects[i], projects[i + 1])
                remaining -= 1
        members_pool = [e for e in g.entries if e.kind == "user" and
                        (e.dn.endswith(STAFF) or e.dn.endswith(CONTRACTORS))]
        w = [1.0 / (i + 1) ** 0.8 for i in range(len(projects))]
        wsum = sum(w)
        sizes = [min(len(members_pool), int(remaining * x / wsum)) for x in w]
        short = remaining - sum(sizes)
        i = 0
        while short > 0 and i < 10 * len(sizes):
            j = i % len(sizes)
            if sizes[j] < len(members_pool):
                sizes[j] += 1
                short -= 1
            i += 1
        for p, k in zip(projects, sizes):
            for idx in rng.sample(range(len(members_pool)), k):
                link(p, members_pool[idx])

    facts.update(fixed_users=fixed_users, structural=structural, links=links,
                 grp=grp, dept_grp=dept_grp, named=named, contractors=contractors,
                 leavers=leavers, projects=projects)
    return g, facts


NAMED_GROUPS = 25


def render(g: Gen, args, facts) -> str:
    out = [
        f"# AD-like export of {DOMAIN} generated by scripts/gen-ldif.py",
        f"# --users {args.users} --groups {args.groups} --memberships {args.memberships} "
        f"--seed {args.seed}",
        "# Fictional company; every name, address and identifier is made up.",
        "version: 1",
        "",
    ]
    for e in g.entries:
        if e.kind == "group":
            e.attrs.extend(("member", m) for m in e.members)
        e.render(out)
    return "\n".join(out)


def summary(g: Gen, facts) -> str:
    per_ou: Counter = Counter()
    kinds: Counter = Counter()
    for e in g.entries:
        kinds[e.kind] += 1
        if e.kind in ("user", "group", "computer"):
            per_ou[(parent_dn(e.dn), e.kind)] += 1
    lines = ["## Counts", "", f"- entries: {len(g.entries)}"]
    for k in ["container", "user", "group", "computer"]:
        lines.append(f"- {k}: {kinds[k]}")
    lines.append(f"- member values: {facts['links']} (named structure {facts['structural']})")
    lines += ["", "## Objects per container", "", "| container | kind | count |", "|---|---|---|"]
    for (ou, kind), n in sorted(per_ou.items()):
        lines.append(f"| `{ou}` | {kind} | {n} |")
    lines += ["", "## Groups", "", "| DN | sAMAccountName | groupType | members (users + groups) |",
              "|---|---|---|---|"]
    for e in g.entries:
        if e.kind != "group" or e.dn.endswith(PROJECTS):
            continue
        gt = next(v for n, v in e.attrs if n == "groupType")
        sam = next(v for n, v in e.attrs if n == "sAMAccountName")
        ms = e.members
        nested = [m for m in ms if g.by_dn[m.lower()].kind == "group"]
        nested_names = ", ".join(g.by_dn[m.lower()].key for m in nested)
        lines.append(f"| `{e.dn}` | {sam} | {gt} | {len(ms) - len(nested)} + {len(nested)}"
                     + (f" ({nested_names})" if nested else "") + " |")
    if facts["projects"]:
        sizes = sorted((len(p.members) for p in facts["projects"]), reverse=True)
        lines.append(f"\n{len(sizes)} project groups under `{PROJECTS}`; largest "
                     f"{sizes[:5]}, smallest {sizes[-1]}")
    lines += ["", "## Edge cases", "", "| what | DN | sAMAccountName |", "|---|---|---|"]
    for what, dn, sam in facts["edge"]:
        lines.append(f"| {what} | `{dn}` | {sam} |")
    for label, key in [("E3 direct contractor members", "e3")]:
        direct = [m for m in facts["grp"][key].members if m.endswith(CONTRACTORS)]
        lines.append(f"\n{label}: " + "; ".join(f"`{m}`" for m in direct))
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=250)
    p.add_argument("--groups", type=int, default=NAMED_GROUPS)
    p.add_argument("--memberships", type=int, default=0)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out", default="-", help="output file, '-' for stdout")
    p.add_argument("--summary", help="write a Markdown summary of the generated directory here")
    args = p.parse_args(argv)
    g, facts = build(args)
    text = render(g, args, facts)
    if args.out == "-":
        sys.stdout.write(text)
    else:
        with open(args.out, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
    if args.summary:
        with open(args.summary, "w", encoding="utf-8") as f:
            f.write(summary(g, facts))
    users = sum(1 for e in g.entries if e.kind == "user")
    groups = sum(1 for e in g.entries if e.kind == "group")
    print(f"gen-ldif: {users} users, {groups} groups, {facts['links']} member values "
          f"-> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
