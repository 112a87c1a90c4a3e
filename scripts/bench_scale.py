#!/usr/bin/env python3
"""Orchestrates scripts/bench.sh: ad2entra at scale against a seeded Samba AD DC and the
Graph emulator seeded converged, each figure beside a baseline measured in the same run.
Stdlib only. See scripts/bench.sh for what is measured; `--help` for the options.
"""

import argparse
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_cycle import bench_policy, free_port, parse_env, ts  # noqa: E402
from bench_cycle import http as http_json  # noqa: E402  (the module http.client is used too)

TENANT = "8f1c5e2a-3b7d-4c61-9a0e-5d2f4b6c8a10"
CLIENT = "2b6f1c3d-8e4a-4f5b-9c7d-1a2b3c4d5e6f"
SECRET = "emulator-secret"
GROWTH = (10_000, 30_000, 100_000)


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def rss_mb(pid, key):
    try:
        for line in open(f"/proc/{pid}/status", encoding="ascii"):
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def timed(cmd, env, stdout=subprocess.DEVNULL):
    """Runs cmd under /usr/bin/time: (wall s, peak RSS MB, exit code)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as t:
        p = subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", t.name, *cmd], env=env,
                           stdout=stdout, stderr=subprocess.PIPE, text=True)
        wall, kb = open(t.name, encoding="ascii").read().split()[-2:]
        if p.returncode != 0:
            sys.exit(f"{cmd[0]} failed ({p.returncode}): {p.stderr[-2000:]}")
        return float(wall), int(kb) / 1024


class Size:
    """One directory size: its DC, its emulator and its policy."""

    def __init__(self, a, users):
        self.a = a
        self.users = users
        self.groups = max(users // 20 - 8, 0)
        self.memberships = 4 * users
        self.dir = os.path.join(a.work, f"dc-{users}")
        self.port = a.port + 2 * GROWTH.index(users) if users in GROWTH else a.port + 10
        self.tmp = tempfile.mkdtemp(prefix=f"ad2entra-bench-{users}-")
        self.procs = []

    # -- Samba -------------------------------------------------------------------------
    def start_dc(self):
        marker = os.path.join(self.dir, ".seeded-groups")
        want = f"{self.groups} {self.memberships}"
        seeded = os.path.join(self.dir, ".seeded")
        if os.path.exists(seeded) and (open(seeded).read().strip() != str(self.users)
                                       or not os.path.exists(marker)
                                       or open(marker).read().strip() != want):
            log(f"{self.dir} holds another seed; purging it")
            subprocess.run([os.path.join(self.a.root, "scripts", "stop-test-dc.sh"), "-d", self.dir,
                            "--purge"], check=True, stdout=subprocess.DEVNULL)
        t = time.time()
        subprocess.run([os.path.join(self.a.root, "scripts", "test-dc.sh"), "-d", self.dir, "-p",
                        str(self.port), "--seed-users", str(self.users), "--seed-groups",
                        str(self.groups), "--seed-memberships", str(self.memberships),
                        "--timeout", "300"], check=True, stdout=subprocess.DEVNULL)
        self.dc_start_s = time.time() - t
        self.dc = parse_env(os.path.join(self.dir, "connection.env"))
        self.ldap_env = dict(os.environ, LDAPTLS_CACERT=self.dc["LDAP_CA_FILE"], LDAPTLS_REQCERT="demand")

    def stop_dc(self):
        if not self.a.keep:
            subprocess.run([os.path.join(self.a.root, "scripts", "stop-test-dc.sh"), "-d", self.dir],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    # -- emulator ----------------------------------------------------------------------
    def start_emulator(self):
        port = free_port()
        self.emu = subprocess.Popen(
            [os.path.join(self.a.rel, "graph-emulator"), "--listen", f"127.0.0.1:{port}",
             "--time-scale", "100"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.tmp, "emulator.log"), "w"))
        self.procs.append(self.emu)
        self.base = f"http://127.0.0.1:{port}"
        for _ in range(400):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        self.env = dict(os.environ, AZURE_TENANT_ID=TENANT, AZURE_CLIENT_ID=CLIENT,
                        AZURE_CLIENT_SECRET=SECRET, AZURE_AUTHORITY_HOST=self.base,
                        AD2ENTRA_GRAPH_URL=f"{self.base}/v1.0",
                        BENCH_LDAP_PASSWORD=self.dc["LDAP_PASSWORD"], AD2ENTRA_LOG="warn")

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
        self.procs = []

    # -- policy, seed ------------------------------------------------------------------
    def write_policy(self):
        self.policy = os.path.join(self.tmp, "policy.yaml")
        with open(self.policy, "w", encoding="utf-8") as f:
            f.write(bench_policy(self.dc))
        out = subprocess.run([self.a.bench, "query", self.policy, CLIENT], check=True,
                             capture_output=True, text=True).stdout
        self.query = json.loads(out)

    def ldapsearch_cmd(self, out_path):
        dc = self.dc
        return ["sh", "-c", 'exec "$0" "$@" >"$OUT"', "ldapsearch", "-LLL", "-x", "-H", dc["LDAPS_URL"],
                "-D", dc["LDAP_BIND_DN"], "-w", dc["LDAP_PASSWORD"], "-b", dc["LDAP_BASE_DN"],
                "-E", "pr=1000/noprompt", self.query["ldap_filter"], *self.query["ldap_attributes"]], \
            dict(self.ldap_env, OUT=out_path)

    def seed_emulator(self):
        self.ldif = os.path.join(self.tmp, "ad.ldif")
        cmd, env = self.ldapsearch_cmd(self.ldif)
        subprocess.run(cmd, env=env, check=True)
        ad2entra = os.path.join(self.a.rel, "ad2entra")
        subprocess.run([ad2entra, "init", "--policy", self.policy], env=self.env, check=True,
                       stdout=subprocess.DEVNULL)
        seed = os.path.join(self.tmp, "seed.json")
        subprocess.run([self.a.bench, "seed", self.policy, self.ldif, CLIENT, seed], check=True)
        with open(seed, encoding="utf-8") as f:
            doc = json.load(f)
        u = urllib.parse.urlparse(self.base)
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
        overflow = {}
        for part in seed_parts(doc, overflow):
            c.request("POST", "/_emulator/seed", part, {"Content-Type": "application/json"})
            r = c.getresponse()
            text = r.read()
            if r.status >= 300:
                sys.exit(f"seeding the emulator failed: {r.status} {text[:500]!r}")
        add_members(self.base, overflow)
        os.remove(seed)

    # -- measurements ------------------------------------------------------------------
    def plan(self):
        """`ad2entra plan` live (LDAPS + Graph + plan): wall, peak RSS, summary."""
        out = os.path.join(self.tmp, "plan.json")
        wall, rss = timed([os.path.join(self.a.rel, "ad2entra"), "plan", "--policy", self.policy,
                           "--format", "json", "--out", out], self.env)
        with open(out, encoding="utf-8") as f:
            summary = json.load(f)["summary"]
        os.remove(out)
        changes = sum(summary[k] for k in ("create", "update", "adopt", "restore", "addMembers",
                                           "removeMembers", "assignLicense", "removeLicense",
                                           "disable", "delete"))
        return wall, rss, summary, changes

    def baseline(self):
        """ldapsearch paged over the same entries and attributes, and a plain HTTP client
        paging every user, group and member at $top=999, at the same time."""
        out = os.path.join(self.tmp, "baseline.ldif")
        cmd, env = self.ldapsearch_cmd(out)
        result = {}

        def graph():
            t = time.time()
            result["graph_objects"] = plain_graph_read(self.base, self.query)
            result["graph_s"] = time.time() - t

        t0 = time.time()
        th = threading.Thread(target=graph)
        th.start()
        subprocess.run(cmd, env=env, check=True)
        result["ldap_s"] = time.time() - t0
        th.join()
        result["wall_s"] = time.time() - t0
        os.remove(out)
        return result

    def pure(self):
        out = subprocess.run([self.a.bench, "pure", self.policy], env=self.env, check=True,
                             capture_output=True, text=True).stdout
        return json.loads(out.strip().splitlines()[-1])


def seed_parts(doc, overflow, limit=1_500_000):
    """The seed in request bodies under the emulator's body limit (2 MB): seeding is
    additive, so users first, then groups with every nested group after its members.
    A group too large for one body is seeded with its first members; the rest go to
    `overflow` (group id → member ids) for add_members."""
    groups = doc.pop("groups", [])
    for g in groups:
        members = g.get("members", [])
        if len(json.dumps(g)) > limit:
            keep = limit // 64
            g["members"] = members[:keep]
            overflow[g["id"]] = members[keep:]
    users = doc.pop("users", [])
    ids = {g["id"] for g in groups}
    done, ordered = set(), []
    pending = list(groups)
    while pending:
        ready = [g for g in pending if all(m in done or m not in ids for m in g.get("members", []))]
        if not ready:  # a cycle: let the emulator say what it thinks of it
            ready = pending
        ordered += ready
        done |= {g["id"] for g in ready}
        pending = [g for g in pending if g["id"] not in done]
    items = [("users", x) for x in users] + [("groups", x) for x in ordered]
    part, size = dict(doc), 0
    for key, item in items:
        text = json.dumps(item)
        if size + len(text) > limit and size:
            yield json.dumps(part).encode()
            part, size = {}, 0
        part.setdefault(key, []).append(item)
        size += len(text)
    yield json.dumps(part).encode()


def add_members(base, overflow):
    """Adds members through Graph: $batch of 20 PATCHes of 20 `members@odata.bind` each,
    retrying what was throttled after its Retry-After."""
    if not overflow:
        return
    u = urllib.parse.urlparse(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    headers = {"Authorization": f"Bearer {token(conn)}", "Content-Type": "application/json"}
    items = [(g, ms[i:i + 20]) for g, ms in overflow.items() for i in range(0, len(ms), 20)]
    log(f"adding {sum(len(m) for m in overflow.values())} members of large groups through Graph")
    while items:
        batch, items = items[:20], items[20:]
        reqs = [{"id": str(n), "method": "PATCH", "url": f"/groups/{g}",
                 "headers": {"Content-Type": "application/json"},
                 "body": {"members@odata.bind": [f"https://graph.microsoft.com/v1.0/directoryObjects/{m}"
                                                 for m in ms]}}
                for n, (g, ms) in enumerate(batch)]
        conn.request("POST", "/v1.0/$batch", json.dumps({"requests": reqs}), headers)
        r = conn.getresponse()
        body = r.read()
        if r.status == 429:
            time.sleep(float(r.getheader("Retry-After") or "1"))
            items = batch + items
            continue
        if r.status != 200:
            sys.exit(f"adding members: {r.status} {body[:300]!r}")
        wait = 0.0
        for resp in json.loads(body)["responses"]:
            st = resp["status"]
            if st == 429:
                wait = max(wait, float((resp.get("headers") or {}).get("Retry-After", "1")))
                items.append(batch[int(resp["id"])])
            elif st >= 300:
                sys.exit(f"adding members: {st} {json.dumps(resp.get('body'))[:300]}")
        if wait:
            time.sleep(wait)
    conn.close()


def token(conn):
    form = urllib.parse.urlencode({"client_id": CLIENT, "client_secret": SECRET,
                                   "scope": "https://graph.microsoft.com/.default",
                                   "grant_type": "client_credentials"})
    conn.request("POST", f"/{TENANT}/oauth2/v2.0/token", form,
                 {"Content-Type": "application/x-www-form-urlencoded"})
    return json.loads(conn.getresponse().read())["access_token"]


def plain_graph_read(base, query):
    """Pages /users, /groups and every group's /members at $top=999 over one kept-alive
    connection; returns how many objects and members it read."""
    u = urllib.parse.urlparse(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    headers = {"Authorization": f"Bearer {token(conn)}"}

    def pages(path):
        while path:
            conn.request("GET", path, headers=headers)
            r = conn.getresponse()
            body = r.read()
            if r.status == 429:
                time.sleep(float(r.getheader("Retry-After") or "1"))
                continue
            if r.status != 200:
                sys.exit(f"baseline GET {path}: {r.status} {body[:300]!r}")
            page = json.loads(body)
            yield page["value"]
            nxt = page.get("@odata.nextLink")
            path = urllib.parse.urlparse(nxt)._replace(scheme="", netloc="").geturl() if nxt else None

    def listing(coll, select):
        return f"/v1.0/{coll}?$select={','.join(select)}&$top=999"

    n = sum(len(v) for v in pages(listing("users", query["user_select"])))
    groups = [g["id"] for v in pages(listing("groups", query["group_select"])) for g in v]
    n += len(groups)
    for g in groups:
        n += sum(len(v) for v in pages(f"/v1.0/groups/{g}/members?$select=id&$top=999"))
    conn.close()
    return n


def measure_size(s, rounds):
    """Full plan vs baseline (interleaved, best of `rounds` each), and pure planning."""
    wall, rss, summary, changes = s.plan()
    if changes:
        log(f"warning: the tenant is not converged ({changes} changes planned: {summary})")
    plans = [(wall, rss)]
    bases = []
    for _ in range(rounds):
        bases.append(s.baseline())
        w, m, _, _ = s.plan()
        plans.append((w, m))
    best_plan = min(plans)
    best_base = min(bases, key=lambda b: b["wall_s"])
    full = {
        "wall_s": round(best_plan[0], 2),
        "baseline_s": round(best_base["wall_s"], 2),
        "ratio": round(best_plan[0] / best_base["wall_s"], 3),
        "peak_rss_mb": round(max(p[1] for p in plans), 1),
        "baseline_ldapsearch_s": round(best_base["ldap_s"], 2),
        "baseline_http_s": round(best_base["graph_s"], 2),
        "runs_s": [round(p[0], 2) for p in plans],
        "baseline_runs_s": [round(b["wall_s"], 2) for b in bases],
        "planned_changes": changes,
        "in_scope_users": summary["inScopeUsers"],
        "in_scope_groups": summary["inScopeGroups"],
    }
    p = s.pure()
    pure = {"wall_s": round(p["wall_s"], 3), "peak_rss_mb": round(p["peak_rss_mb"], 1),
            "snapshots_rss_mb": round(p["snapshots_rss_mb"], 1)}
    return full, pure


def ldap_changes(s, round_no):
    """10 user changes and 10 membership changes in one ldapmodify: departments of ten
    random bulk users, and ten users added to (even rounds) or removed from (odd) grp-empty."""
    dc, b = s.dc, s.dc["LDAP_BASE_DN"]
    rng = random.Random(round_no // 2)
    picks = rng.sample(range(1, s.users + 1), 20)
    dn = lambda i: f"CN=bulk{i:05d},OU={'Sales' if i % 2 else 'Engineering'},OU=Staff,{b}"  # noqa: E731
    ldif = [f"dn: {dn(i)}\nchangetype: modify\nreplace: department\ndepartment: Bench {round_no} {time.time()}\n"
            for i in picks[:10]]
    op = "add" if round_no % 2 == 0 else "delete"
    ldif += [f"dn: CN=grp-empty,OU=Groups,{b}\nchangetype: modify\n{op}: member\nmember: {dn(i)}\n"
             for i in picks[10:]]
    subprocess.run(["ldapmodify", "-x", "-H", dc["LDAPS_URL"], "-D", dc["LDAP_BIND_DN"], "-w",
                    dc["LDAP_PASSWORD"]], input="\n".join(ldif), env=s.ldap_env, check=True,
                   capture_output=True, text=True)


def reconciler(s, cycles):
    """`ad2entra run` for `cycles` cycles: a full one at start, then forced full cycles and
    delta cycles (after 10 user and 10 membership changes) in turn. RSS after each."""
    rport = free_port()
    runlog = os.path.join(s.tmp, "run.log")
    run = subprocess.Popen(
        [os.path.join(s.a.rel, "ad2entra"), "run", "--policy", s.policy, "--state",
         os.path.join(s.tmp, "state.json"), "--listen", f"127.0.0.1:{rport}", "--debounce", "2s",
         "--shutdown-grace", "20s"],
        env=dict(s.env, AD2ENTRA_LOG="info"), stdout=subprocess.DEVNULL, stderr=open(runlog, "w"))
    s.procs.append(run)
    url = f"http://127.0.0.1:{rport}"

    def runs():
        while True:
            try:
                st = http_json("GET", f"{url}/status")
                if st.get("currentCycle") is None:
                    return st.get("recentRuns", [])
            except OSError:
                pass
            if run.poll() is not None:
                sys.exit(f"ad2entra run exited; see {runlog}")
            time.sleep(0.1)

    def wait_for(n, timeout=3600):
        t0 = time.time()
        while time.time() - t0 < timeout:
            r = runs()
            if len(r) >= n:
                return r
            time.sleep(0.1)
        sys.exit(f"timed out waiting for cycle {n}; see {runlog}")

    wall = lambda r: ts(r["endedAt"]) - ts(r["startedAt"])  # noqa: E731
    rss_after = []
    fulls, deltas = [], []
    done = wait_for(1)
    rss_after.append(rss_mb(run.pid, "VmRSS:"))
    fulls.append(wall(done[0]))
    change_round = 0
    while len(done) < cycles:
        before = len(done)
        if before % 2 == 1:
            http_json("POST", f"{url}/sync?full=true")
            done = wait_for(before + 1)
            fulls.append(wall(done[0]))
        else:
            ldap_changes(s, change_round)
            change_round += 1
            done = wait_for(before + 1, timeout=600)
            time.sleep(3)  # the debounce may start a second cycle for late notifications
            done = wait_for(len(runs()))
            new = done[: len(done) - before]
            deltas.append((sum(wall(r) for r in new), [f"{r['kind']}/{r['trigger']}/{r['outcome']}" for r in new]))
        rss_after.append(rss_mb(run.pid, "VmRSS:"))
    hwm = rss_mb(run.pid, "VmHWM:")
    outcomes = [f"{r['kind']}/{r['outcome']}" for r in reversed(done)]
    return {"cycles": len(done), "peak_rss_mb": round(hwm, 1),
            "rss_after_cycle_mb": [round(x, 1) for x in rss_after],
            "full_cycle_s": [round(x, 2) for x in fulls],
            "delta_cycle_s": [round(d[0], 2) for d in deltas],
            "delta_kinds": [d[1] for d in deltas], "outcomes": outcomes}


def initial_load(a):
    out = subprocess.run([os.path.join(a.rel, "examples", "bench_apply")], check=True,
                         capture_output=True, text=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("BENCH_JSON "))
    return json.loads(line[len("BENCH_JSON "):])


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--root", required=True)
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--out")
    ap.add_argument("--work", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "ad2entra-bench"))
    ap.add_argument("--port", type=int, default=3689, help="first DC port (LDAPS +1; one pair per size)")
    ap.add_argument("--rounds", type=int, default=2, help="runs of the full plan and of the baseline")
    ap.add_argument("--cycles", type=int, default=10, help="reconciler cycles")
    ap.add_argument("--keep", action="store_true", help="leave the DCs running")
    a = ap.parse_args()
    a.rel = os.path.join(a.root, "target", "release")
    a.bench = os.path.join(a.rel, "examples", "bench_scale")
    os.makedirs(a.work, exist_ok=True)
    sizes = sorted({x for x in GROWTH if x <= a.users} | {a.users})
    t_all = time.time()
    report = {"users": a.users, "growth": {}}
    lines = []
    for n in sizes:
        s = Size(a, n)
        try:
            log(f"{n} users: DC (seeding when new), emulator, converged seed")
            s.start_dc()
            s.start_emulator()
            s.write_policy()
            s.seed_emulator()
            log(f"{n} users: full plan vs baseline, pure planning")
            full, pure = measure_size(s, a.rounds)
            report["growth"][str(n)] = {"full_plan": full, "pure_plan": pure}
            if n == a.users:
                report["full_plan"] = full
                report["pure_plan"] = pure
                log(f"{n} users: reconciler, {a.cycles} cycles")
                rec = reconciler(s, a.cycles)
                report["reconciler"] = rec
                full_cycle = min(rec["full_cycle_s"])
                delta = rec["delta_cycle_s"][0] if rec["delta_cycle_s"] else float("nan")
                report["delta_cycle"] = {"wall_s": round(delta, 2),
                                         "ratio_to_full": round(delta / full_cycle, 4),
                                         "full_cycle_s": full_cycle,
                                         "all_s": rec["delta_cycle_s"]}
        finally:
            s.stop()
            s.stop_dc()
    log("initial load (scripts/bench-apply.sh's documented-budget run)")
    report["initial_load"] = initial_load(a)
    report["bench_s"] = round(time.time() - t_all, 1)

    f, p, d, i, r = (report["full_plan"], report["pure_plan"], report["delta_cycle"],
                     report["initial_load"], report["reconciler"])
    lines.append(f"full cycle, {a.users} users   wall {f['wall_s']:.2f} s   baseline {f['baseline_s']:.2f} s "
                 f"(ldapsearch {f['baseline_ldapsearch_s']:.2f} s | HTTP {f['baseline_http_s']:.2f} s, same time)   "
                 f"ratio {f['ratio']:.2f} (goal <= 1.2)   peak RSS {f['peak_rss_mb']:.0f} MB (goal <= 300)")
    rss = r["rss_after_cycle_mb"]
    lines.append(f"run, {r['cycles']} cycles        peak RSS {r['peak_rss_mb']:.0f} MB (goal <= 300)   "
                 f"RSS after each cycle {' '.join(f'{x:.0f}' for x in rss)} MB (spread {max(rss[1:] or rss) - min(rss[1:] or rss):.0f} MB)")
    lines.append(f"delta cycle                wall {d['wall_s']:.2f} s   full cycle {d['full_cycle_s']:.2f} s   "
                 f"ratio {d['ratio_to_full']:.3f} (goal <= 2 s and <= 0.05)")
    lines.append(f"pure planning              wall {p['wall_s']:.2f} s   peak RSS {p['peak_rss_mb']:.0f} MB "
                 f"(snapshots alone {p['snapshots_rss_mb']:.0f} MB)   (goal <= 2 s, <= 250 MB)")
    lines.append(f"initial load (10,000)      write rate {i['write_rate_ratio']:.2f} x allowed (goal >= 0.9)   "
                 f"requests/write {i['requests_per_write']:.4f}   429s after the first {i['throttled_after_first']}   "
                 f"duplicates {i['duplicates']}")
    base_n = sizes[0]
    for n in sizes:
        g = report["growth"][str(n)]
        k = n / base_n
        g0 = report["growth"][str(base_n)]
        lines.append(
            f"growth {n:>7} users      full {g['full_plan']['wall_s']:7.2f} s (x{g['full_plan']['wall_s'] / g0['full_plan']['wall_s']:.2f}, "
            f"baseline x{g['full_plan']['baseline_s'] / g0['full_plan']['baseline_s']:.2f}) "
            f"{g['full_plan']['peak_rss_mb']:5.0f} MB (x{g['full_plan']['peak_rss_mb'] / g0['full_plan']['peak_rss_mb']:.2f})   "
            f"pure {g['pure_plan']['wall_s']:6.2f} s (x{g['pure_plan']['wall_s'] / g0['pure_plan']['wall_s']:.2f}) "
            f"{g['pure_plan']['peak_rss_mb']:5.0f} MB (x{g['pure_plan']['peak_rss_mb'] / g0['pure_plan']['peak_rss_mb']:.2f})   "
            f"(users x{k:.0f})")
    lines.append(f"bench took {report['bench_s']:.0f} s")
    print("\n".join(lines))
    if a.out:
        with open(a.out, "w", encoding="utf-8") as f_:
            json.dump(report, f_, indent=2)
            f_.write("\n")


if __name__ == "__main__":
    main()
