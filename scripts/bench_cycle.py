#!/usr/bin/env python3
"""Orchestrates scripts/bench-cycle.sh: the reconciler against a seeded Samba DC and
the Graph emulator. Stdlib only. Prints one line per figure.

Figures (from the reconciler's own run history in /status, so they are what it did):
  initial load  first cycle into an empty tenant (emulator throttling time-scaled x100)
  full cycle    a forced full cycle on the converged tenant
  delta cycle   the cycle a change notification starts after 10 user + 10 membership changes
  latency       AD modify -> the new value readable through Graph, 20 changes, p50/p95
"""

import argparse
import random
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from datetime import datetime



def bench_policy(dc):
    """The policy both reconciler benchmarks run: the seeded Staff and Groups OUs of the DC
    described by `dc` (its connection.env), over LDAPS."""
    b = dc["LDAP_BASE_DN"]
    return f"""apiVersion: ad2entra/v1
source:
  url: {dc['LDAPS_URL']}
  bindDn: "{dc['LDAP_BIND_DN']}"
  passwordFrom: env:BENCH_LDAP_PASSWORD
  baseDn: "{b}"
  caFile: {dc['LDAP_CA_FILE']}
scope:
  users:
    includeOUs: ["OU=Staff,{b}"]
    ldapFilter: "(&(objectCategory=person)(objectClass=user))"
  groups:
    includeOUs: ["OU=Groups,{b}"]
upn:
  rewriteSuffixes: {{ corp.local: corp.example.com }}
  fallbackDomain: corpexample.onmicrosoft.com
deletion:
  mode: disable-then-delete
schedule:
  interval: 1h
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_env(path):
    env = {}
    for line in open(path, encoding="utf-8"):
        if "=" in line:
            k, v = line.rstrip("\n").split("=", 1)
            env[k] = v.strip("'")
    return env


def http(method, url, body=None, headers=None, form=None):
    data = None
    headers = dict(headers or {})
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=60) as r:
        text = r.read().decode()
        return json.loads(text) if text.strip().startswith(("{", "[")) else text


def ts(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def pct(values, p):
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(round(p / 100 * (len(v) - 1)))))
    return v[k]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--dc-env", required=True)
    ap.add_argument("--users", type=int, default=10000)
    ap.add_argument("--debounce", default="5s")
    a = ap.parse_args()
    dc = parse_env(a.dc_env)
    work = tempfile.mkdtemp(prefix="ad2entra-bench-cycle-")
    rel = os.path.join(a.root, "target", "release")
    procs = []

    def stop_all():
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()

    try:
        eport, rport = free_port(), free_port()
        emu = subprocess.Popen(
            [os.path.join(rel, "graph-emulator"), "--listen", f"127.0.0.1:{eport}", "--time-scale", "100"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "emulator.log"), "w"))
        procs.append(emu)
        base = f"http://127.0.0.1:{eport}"
        tenant = "8f1c5e2a-3b7d-4c61-9a0e-5d2f4b6c8a10"
        client = "2b6f1c3d-8e4a-4f5b-9c7d-1a2b3c4d5e6f"
        env = dict(os.environ,
                   AZURE_TENANT_ID=tenant, AZURE_CLIENT_ID=client, AZURE_CLIENT_SECRET="emulator-secret",
                   AZURE_AUTHORITY_HOST=base, AD2ENTRA_GRAPH_URL=f"{base}/v1.0",
                   BENCH_LDAP_PASSWORD=dc["LDAP_PASSWORD"], AD2ENTRA_LOG="info",
                   # The emulator runs its throttling 100x faster; the client's budget too.
                   AD2ENTRA_GRAPH_WRITE_BUDGET="3000/1.5", AD2ENTRA_GRAPH_RU_BUDGET="3500/0.1")
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", eport), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        b = dc["LDAP_BASE_DN"]
        policy = os.path.join(work, "policy.yaml")
        with open(policy, "w", encoding="utf-8") as f:
            f.write(bench_policy(dc))
        ad2entra = os.path.join(rel, "ad2entra")
        subprocess.run([ad2entra, "init", "--policy", policy], env=env, check=True, stdout=subprocess.DEVNULL)
        runlog = os.path.join(work, "run.log")
        run = subprocess.Popen(
            [ad2entra, "run", "--policy", policy, "--state", os.path.join(work, "state.json"),
             "--listen", f"127.0.0.1:{rport}", "--debounce", a.debounce, "--shutdown-grace", "20s"],
            env=env, stdout=subprocess.DEVNULL, stderr=open(runlog, "w"))
        procs.append(run)
        rurl = f"http://127.0.0.1:{rport}"

        def status():
            return http("GET", f"{rurl}/status")

        def wait_runs(n, timeout=3600):
            t0 = time.time()
            while time.time() - t0 < timeout:
                try:
                    s = status()
                except OSError:
                    time.sleep(0.2)
                    continue
                if len(s.get("recentRuns", [])) >= n and s.get("currentCycle") is None:
                    return s
                if run.poll() is not None:
                    sys.exit(f"ad2entra run exited; see {runlog}")
                time.sleep(0.1)
            sys.exit(f"timed out waiting for {n} cycles; see {runlog}")

        def describe(r):
            wall = ts(r["endedAt"]) - ts(r["startedAt"])
            return wall, r["ldapEntries"], r["graphRequests"]

        s = wait_runs(1)
        first = s["recentRuns"][0]
        w, e, q = describe(first)
        print(f"initial load     {first['outcome']:>8}  wall {w:8.2f} s  LDAP entries {e:>7}  Graph requests {q:>6}"
              f"  ({first.get('applied', {}).get('ok', 0)} actions; emulator throttling x100)")

        http("POST", f"{rurl}/sync?full=true")
        s = wait_runs(2)
        full = s["recentRuns"][0]
        fw, fe, fq = describe(full)
        print(f"full cycle       {full['outcome']:>8}  wall {fw:8.2f} s  LDAP entries {fe:>7}  Graph requests {fq:>6}")

        # 10 user changes and 10 membership changes in one LDAP batch.
        ca = {"LDAPTLS_CACERT": dc["LDAP_CA_FILE"], "LDAPTLS_REQCERT": "demand"}
        lenv = dict(os.environ, **ca)
        out = subprocess.run(
            ["ldapsearch", "-LLL", "-x", "-H", dc["LDAPS_URL"], "-D", dc["LDAP_BIND_DN"], "-w", dc["LDAP_PASSWORD"],
             "-b", f"OU=Staff,{b}", "(cn=bulk*)", "dn", "userPrincipalName", "-E", "pr=1000/noprompt"],
            env=lenv, check=True, capture_output=True, text=True).stdout
        users = []
        cur = {}
        for line in out.splitlines():
            if line.startswith("dn: "):
                cur = {"dn": line[4:]}
                users.append(cur)
            elif line.startswith("userPrincipalName: "):
                cur["upn"] = line.split(": ", 1)[1]
        users = [u for u in users if "upn" in u]
        # A fresh sample each run, so a re-run on the same DC changes memberships again.
        users = random.sample(users, min(60, len(users)))
        grp = f"CN=grp-empty,OU=Groups,{b}"
        ldif = []
        for i, u in enumerate(users[:10]):
            ldif.append(f"dn: {u['dn']}\nchangetype: modify\nreplace: department\ndepartment: Bench {i} {time.time()}\n")
        for u in users[10:20]:
            ldif.append(f"dn: {grp}\nchangetype: modify\nadd: member\nmember: {u['dn']}\n")
        before = len(s["recentRuns"])
        subprocess.run(["ldapmodify", "-x", "-H", dc["LDAPS_URL"], "-D", dc["LDAP_BIND_DN"], "-w", dc["LDAP_PASSWORD"]],
                       input="\n".join(ldif), env=lenv, check=True, capture_output=True, text=True)
        s = wait_runs(before + 1, timeout=300)
        time.sleep(float(a.debounce.rstrip("s")) + 2)
        s = wait_runs(before + 1, timeout=300)
        new = s["recentRuns"][: len(s["recentRuns"]) - before] if len(s["recentRuns"]) < 50 else s["recentRuns"][:1]
        dw = sum(describe(r)[0] for r in new)
        de = sum(describe(r)[1] for r in new)
        dq = sum(describe(r)[2] for r in new)
        kinds = ",".join(f"{r['kind']}/{r['trigger']}/{r['outcome']}" for r in new)
        print(f"delta cycle      {len(new)} cycle(s) ({kinds})  wall {dw:8.2f} s  LDAP entries {de:>7}  Graph requests {dq:>6}")
        print(f"delta / full     wall {dw / fw:.3f}   LDAP entries {de / max(fe, 1):.4f}   Graph requests {dq / max(fq, 1):.3f}   (goal <= 0.05)")

        # Latency: AD modify -> the value readable through Graph.
        tok = http("POST", f"{base}/{tenant}/oauth2/v2.0/token",
                   form={"client_id": client, "client_secret": "emulator-secret",
                         "scope": "https://graph.microsoft.com/.default", "grant_type": "client_credentials"})["access_token"]
        auth = {"Authorization": f"Bearer {tok}"}

        def graph_user(upn):
            upn = upn.replace("@corp.local", "@corp.example.com")
            q = urllib.parse.quote(f"userPrincipalName eq '{upn}'")
            v = http("GET", f"{base}/v1.0/users?$filter={q}&$select=id,department", headers=auth)["value"]
            return v[0]["id"]

        lat = []
        for i, u in enumerate(users[20:40]):
            gid = graph_user(u["upn"])
            wait_runs(0)
            time.sleep(0.5)
            value = f"Latency {i} {time.time()}"
            t0 = time.time()
            subprocess.run(["ldapmodify", "-x", "-H", dc["LDAPS_URL"], "-D", dc["LDAP_BIND_DN"], "-w", dc["LDAP_PASSWORD"]],
                           input=f"dn: {u['dn']}\nchangetype: modify\nreplace: department\ndepartment: {value}\n",
                           env=lenv, check=True, capture_output=True, text=True)
            while True:
                d = http("GET", f"{base}/v1.0/users/{gid}?$select=department", headers=auth).get("department")
                if d == value:
                    lat.append(time.time() - t0)
                    break
                if time.time() - t0 > 120:
                    sys.exit(f"change {i} did not reach Graph in 120 s; see {runlog}")
                time.sleep(0.02)
        print(f"AD modify -> Graph write, {len(lat)} changes (debounce {a.debounce}): "
              f"p50 {pct(lat, 50):.2f} s  p95 {pct(lat, 95):.2f} s  max {max(lat):.2f} s  (goal p95 <= 10 s)")
        hwm = 0
        try:
            for line in open(f"/proc/{run.pid}/status"):
                if line.startswith("VmHWM:"):
                    hwm = int(line.split()[1]) // 1024
        except OSError:
            pass
        print(f"reconciler peak RSS {hwm} MB after {len(status().get('recentRuns', []))} cycles")
    finally:
        stop_all()


if __name__ == "__main__":
    main()
