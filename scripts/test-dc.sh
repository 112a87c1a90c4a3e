#!/usr/bin/env bash
# Starts a real Samba AD domain controller on loopback for ad2entra's integration tests
# and benchmarks. Run as root (Samba's DC runs as root; the private network namespace
# needs CAP_SYS_ADMIN).
#
#   eval "$(scripts/test-dc.sh)"                 # default dir ./.test-dc, 100 bulk users
#   scripts/test-dc.sh -d /tmp/dc --seed-users 10000
#   scripts/test-dc.sh -d ./.test-dc2 -p 3589 --realm BRANCH.EXAMPLE.NET   # a second domain
#   scripts/stop-test-dc.sh [-d DIR] [--purge]
#
# What it does, each step skipped when already done:
#   1. installs Samba from Debian's packages when missing (samba-ad-provision is needed
#      although it is only a Recommends; a policy-rc.d keeps the services from starting);
#   2. provisions a domain (CORP.EXAMPLE.COM, or --realm) into DIR, with its own CA and a
#      server certificate for 127.0.0.1/localhost; each DIR is its own forest, so two DCs
#      with two realms are two forests (Samba hosts one domain per DC);
#   3. seeds OUs, users, groups and edge cases (scripts/seed-dc.py) with ldbadd in batch
#      mode straight into sam.ldb, before Samba starts (much faster than LDAP adds);
#   4. starts Samba (LDAP service only) in its own network namespace, because Samba's
#      LDAP ports are hard-coded to 389/636, and relays 127.0.0.1:PORT and :PORT+1 into it
#      (scripts/dc-forward.py);
#   5. waits for a simple bind over LDAPS verified against the CA, then prints KEY='VALUE'
#      connection details and writes them to DIR/connection.env.
# Running it again while the DC is up only prints the details.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DIR=${AD2ENTRA_TEST_DC_DIR:-./.test-dc}
PORT=3389
SEED_USERS=100
SEED_GROUPS=0
SEED_MEMBERSHIPS=0
PASSWORD='Passw0rd!Test'
REALM=${SAMBA_DC_REALM:-CORP.EXAMPLE.COM}
NETBIOS=${SAMBA_DC_DOMAIN:-}
realm_given=0
TIMEOUT=60
PYTHON=${PYTHON:-python3}

usage() {
  cat >&2 <<EOF
usage: $0 [-d DIR] [-p PORT] [--realm REALM] [--domain NAME] [--seed-users N] [--password PW] [--timeout SECS]
  -d DIR           state directory (default ./.test-dc)
  -p PORT          LDAP port on 127.0.0.1; LDAPS is PORT+1 (default 3389/3390)
  --realm REALM    the domain's DNS name in capitals (default CORP.EXAMPLE.COM); applies
                   only when DIR is provisioned (stop-test-dc.sh --purge to change it)
  --domain NAME    its NetBIOS name (default: the realm's first label, e.g. CORP)
  --seed-users N   bulk users generated at first provision (default 100)
  --seed-groups N  generic bulk groups generated at first provision (default 0)
  --seed-memberships M  member values those groups share (default 0)
  --password PW    Administrator password (no single quotes)
  --timeout SECS   how long to wait for the first bind (default 60)
EOF
  exit 2
}

while [ $# -gt 0 ]; do
  case "$1" in
    -d|--dir) DIR=$2; shift 2 ;;
    -p|--port) PORT=$2; shift 2 ;;
    --realm) REALM=$2; realm_given=1; shift 2 ;;
    --domain) NETBIOS=$2; realm_given=1; shift 2 ;;
    --seed-users) SEED_USERS=$2; shift 2 ;;
    --seed-groups) SEED_GROUPS=$2; shift 2 ;;
    --seed-memberships) SEED_MEMBERSHIPS=$2; shift 2 ;;
    --password) PASSWORD=$2; shift 2 ;;
    --timeout) TIMEOUT=$2; shift 2 ;;
    -h|--help) usage ;;
    *) echo "test-dc: unknown argument: $1" >&2; usage ;;
  esac
done

case "$PASSWORD" in *"'"*) echo "test-dc: the password must not contain a single quote" >&2; exit 2 ;; esac
REALM=${REALM^^}
[ -n "$NETBIOS" ] || NETBIOS=${REALM%%.*}
NETBIOS=${NETBIOS^^}
case "$REALM" in
  *.*) ;;
  *) echo "test-dc: --realm must be a DNS name such as BRANCH.EXAMPLE.NET" >&2; exit 2 ;;
esac
if [ ${#NETBIOS} -gt 15 ] || [ "$NETBIOS" = "${REALM}" ]; then
  echo "test-dc: --domain must be a NetBIOS name of at most 15 characters" >&2; exit 2
fi
[ "$(id -u)" = 0 ] || { echo "test-dc: must run as root" >&2; exit 1; }

log() { echo "[test-dc] $*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }
T0=$(now)

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
# A provisioned DIR keeps its realm: the one it was provisioned with wins.
if [ -f "$DIR/.realm" ]; then
  read -r kept_realm kept_netbios <"$DIR/.realm"
  if [ "$realm_given" = 1 ] && { [ "$kept_realm" != "$REALM" ] || [ "$kept_netbios" != "$NETBIOS" ]; }; then
    log "note: $DIR holds $kept_realm ($kept_netbios); --realm/--domain apply only to a new dir (stop-test-dc.sh --purge)"
  fi
  REALM=$kept_realm
  NETBIOS=$kept_netbios
elif [ -f "$DIR/.seeded" ]; then
  REALM=CORP.EXAMPLE.COM  # provisioned before --realm existed
  NETBIOS=CORP
fi
LDAPS_PORT=$((PORT + 1))
DNSDOMAIN=${REALM,,}
BASE_DN=DC=${DNSDOMAIN//./,DC=}
BIND_DN="CN=Administrator,CN=Users,$BASE_DN"
RUN=$DIR/run
SAMBA_PIDFILE=$RUN/samba.pid
FWD_PIDFILE=$RUN/forward.pid
CA=$DIR/tls/ca.pem

# True when the PID in file $1 is alive and its /proc entry matches $2 (comm or cmdline).
pid_alive() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
  case "$2" in
    samba) [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = samba ] ;;
    forward) tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q dc-forward.py ;;
  esac
}

emit() {
  cat >"$DIR/connection.env" <<EOF
LDAP_URL='ldap://127.0.0.1:$PORT'
LDAPS_URL='ldaps://127.0.0.1:$LDAPS_PORT'
LDAP_BIND_DN='$BIND_DN'
LDAP_PASSWORD='$PASSWORD'
LDAP_BASE_DN='$BASE_DN'
LDAP_CA_FILE='$CA'
LDAP_REALM='$REALM'
TEST_DC_DIR='$DIR'
TEST_DC_SAM_LDB='$DIR/private/sam.ldb'
TEST_DC_SAMBA_PID='$(cat "$SAMBA_PIDFILE")'
TEST_DC_SEED_USERS='$(cat "$DIR/.seeded")'
EOF
  cat "$DIR/connection.env"
}

if pid_alive "$SAMBA_PIDFILE" samba && pid_alive "$FWD_PIDFILE" forward; then
  log "already running (samba pid $(cat "$SAMBA_PIDFILE"))"
  emit
  exit 0
fi

# ---- 1. packages -------------------------------------------------------------------
need_install=0
for c in samba samba-tool ldbadd ldbmodify ldapsearch; do
  command -v "$c" >/dev/null 2>&1 || need_install=1
done
[ -d /usr/share/samba/setup ] || need_install=1
if [ "$need_install" = 1 ]; then
  T=$(now)
  log "installing Samba packages"
  created_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    # Keep the postinst scripts from starting smbd/nmbd/winbind/samba-ad-dc system-wide.
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    created_policy=1
    trap '[ "$created_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends \
    samba-ad-dc samba-ad-provision ldb-tools ldap-utils >&2
  if [ "$created_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; created_policy=0; fi
  log "packages installed in $(since "$T") s"
fi
command -v openssl >/dev/null || { echo "test-dc: openssl is required" >&2; exit 1; }

# ---- port check ----------------------------------------------------------------------
for p in "$PORT" "$LDAPS_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    echo "test-dc: 127.0.0.1:$p is already in use (another DC? try -p or scripts/stop-test-dc.sh -d DIR)" >&2
    exit 1
  fi
done

# ---- 2. provision --------------------------------------------------------------------
if [ ! -f "$DIR/.seeded" ]; then
  # A directory without the marker holds a failed or interrupted provision: start over,
  # removing only what provisioning creates.
  if [ -e "$DIR/private" ] || [ -e "$DIR/etc" ]; then
    log "removing an incomplete provision in $DIR"
    rm -rf "${DIR:?}"/{etc,private,state,cache,bind-dns,lock,tls,run,log,seed-add.ldif,seed-modify.ldif,empty.conf,.realm}
  fi
  T=$(now)
  : >"$DIR/empty.conf"
  # -s empty.conf: otherwise the distro smb.conf is merged into DIR/etc/smb.conf.
  samba-tool domain provision -s "$DIR/empty.conf" --realm="$REALM" --domain="$NETBIOS" \
    --server-role=dc --dns-backend=NONE --adminpass="$PASSWORD" --use-rfc2307 \
    --host-name=dc1 --targetdir="$DIR" >"$DIR/provision.log" 2>&1 \
    || { tail -20 "$DIR/provision.log" >&2; echo "test-dc: provision failed" >&2; exit 1; }
  echo "$REALM $NETBIOS" >"$DIR/.realm"
  log "provisioned $REALM in $(since "$T") s"

  T=$(now)
  "$PYTHON" "$HERE/seed-dc.py" --base-dn "$BASE_DN" --domain "$DNSDOMAIN" --users "$SEED_USERS" \
    --groups "$SEED_GROUPS" --memberships "$SEED_MEMBERSHIPS" --add-ldif "$DIR/seed-add.ldif" --modify-ldif "$DIR/seed-modify.ldif"
  # batch_mode skips per-entry sub-transactions (ldbadd is otherwise O(n^2) in the index);
  # Samba's own provision passes the same option.
  cache=$(((SEED_USERS + SEED_GROUPS) * 20 + 2000))
  ldbadd -H "$DIR/private/sam.ldb" --nosync -o batch_mode:1 \
    -o "transaction_index_cache_size:$cache" "$DIR/seed-add.ldif" >"$DIR/seed.log" 2>&1 \
    || { tail -20 "$DIR/seed.log" >&2; echo "test-dc: seeding failed" >&2; exit 1; }
  ldbmodify -H "$DIR/private/sam.ldb" --nosync "$DIR/seed-modify.ldif" >>"$DIR/seed.log" 2>&1 \
    || { tail -20 "$DIR/seed.log" >&2; echo "test-dc: seeding failed" >&2; exit 1; }
  echo "$SEED_USERS" >"$DIR/.seeded"
  echo "$SEED_GROUPS $SEED_MEMBERSHIPS" >"$DIR/.seeded-groups"
  log "seeded $SEED_USERS bulk users, $SEED_GROUPS bulk groups ($SEED_MEMBERSHIPS memberships) and the edge cases in $(since "$T") s"
elif [ "$(cat "$DIR/.seeded")" != "$SEED_USERS" ]; then
  log "note: $DIR was seeded with $(cat "$DIR/.seeded") bulk users; --seed-users applies only to a new dir (stop-test-dc.sh --purge)"
fi

# ---- TLS: own CA and a server certificate valid for 127.0.0.1 ---------------------------
if [ ! -f "$CA" ] || [ ! -f "$DIR/tls/server.pem" ]; then
  mkdir -p "$DIR/tls"
  (
    cd "$DIR/tls"
    umask 077
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 3650 \
      -subj "/CN=ad2entra test CA" \
      -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr \
      -subj "/CN=dc1.$DNSDOMAIN" 2>/dev/null
    printf '%s\n' "basicConstraints=critical,CA:FALSE" \
      "keyUsage=critical,digitalSignature,keyEncipherment" \
      "extendedKeyUsage=serverAuth" \
      "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:dc1.$DNSDOMAIN" >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
      -out server.pem -days 825 -extfile server.ext 2>/dev/null
    chmod 644 ca.pem server.pem
    chmod 600 ca.key server.key
  )
  log "created a CA and a server certificate in $DIR/tls"
fi

# ---- smb.conf, rewritten at every start (provision loses some --option values, and
#      several default paths point outside DIR) ------------------------------------------
mkdir -p "$RUN" "$DIR/log" "$DIR/cache" "$DIR/lock" "$DIR/state"
cat >"$DIR/etc/smb.conf" <<EOF
[global]
	netbios name = DC1
	realm = $REALM
	workgroup = $NETBIOS
	server role = active directory domain controller
	server services = ldap
	interfaces = 127.0.0.1
	bind interfaces only = yes
	ldap server require strong auth = no
	ldb:nosync = true
	private dir = $DIR/private
	binddns dir = $DIR/bind-dns
	lock directory = $DIR/lock
	state directory = $DIR/state
	cache directory = $DIR/cache
	pid directory = $RUN
	ncalrpc dir = $RUN/ncalrpc
	winbindd socket directory = $RUN/winbindd
	ntp signd socket directory = $RUN/ntp_signd
	log file = $DIR/log/samba.log
	tls enabled = yes
	tls keyfile = $DIR/tls/server.key
	tls certfile = $DIR/tls/server.pem
	tls cafile = $CA
EOF

# ---- 4. start ----------------------------------------------------------------------------
T=$(now)
# Stale processes from an earlier start (samba died, or the relay did) are stopped first.
"$HERE/stop-test-dc.sh" -d "$DIR" >/dev/null 2>&1 || true
# setsid + unshare exec in place, so $! is samba's own PID.
setsid unshare --net sh -c "ip link set lo up && exec samba -F -M single -s '$DIR/etc/smb.conf' --debug-stdout -d1" \
  </dev/null >>"$DIR/log/samba.out" 2>&1 &
echo $! >"$SAMBA_PIDFILE"
spid=$(cat "$SAMBA_PIDFILE")
for _ in $(seq 1 250); do
  comm=$(cat "/proc/$spid/comm" 2>/dev/null) \
    || { tail -20 "$DIR/log/samba.out" >&2; echo "test-dc: samba exited" >&2; exit 1; }
  [ "$comm" = samba ] && break
  sleep 0.02
done
setsid "$PYTHON" "$HERE/dc-forward.py" --netns-pid "$(cat "$SAMBA_PIDFILE")" \
  "127.0.0.1:$PORT=127.0.0.1:389" "127.0.0.1:$LDAPS_PORT=127.0.0.1:636" \
  </dev/null >>"$DIR/log/forward.out" 2>&1 &
echo $! >"$FWD_PIDFILE"
# Until setsid has exec'd python, /proc/PID/cmdline is still this shell's: wait for it,
# or a loaded machine reports a healthy relay as dead.
for _ in $(seq 1 250); do
  pid_alive "$FWD_PIDFILE" forward && break
  sleep 0.02
done

# ---- 5. wait for a verified LDAPS bind ---------------------------------------------------
deadline=$(( $(date +%s) + TIMEOUT ))
until LDAPTLS_CACERT="$CA" LDAPTLS_REQCERT=demand ldapsearch -x -o nettimeout=2 \
    -H "ldaps://127.0.0.1:$LDAPS_PORT" -D "$BIND_DN" -w "$PASSWORD" \
    -b '' -s base highestCommittedUSN >/dev/null 2>&1; do
  if ! pid_alive "$SAMBA_PIDFILE" samba; then
    tail -20 "$DIR/log/samba.out" >&2; echo "test-dc: samba exited during start" >&2; exit 1
  fi
  if ! pid_alive "$FWD_PIDFILE" forward; then
    tail -20 "$DIR/log/forward.out" >&2; echo "test-dc: the relay exited during start" >&2; exit 1
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    tail -20 "$DIR/log/samba.out" >&2; echo "test-dc: no bind within ${TIMEOUT}s" >&2; exit 1
  fi
  sleep 0.1
done
log "up in $(since "$T") s (total $(since "$T0") s); stop with: $HERE/stop-test-dc.sh -d $DIR"
emit
