#!/usr/bin/env bash
# Benchmarks ad2entra's LDAP reader against OpenLDAP's ldapsearch on the same DC and the
# same attributes: a full paged read of N users (default 10,000), then a delta read after
# 10 changes. Prints wall time and peak RSS (GNU time -v) for each.
#
#   scripts/bench-ldap-read.sh [--users N] [-d DIR] [-p PORT] [--debug] [--keep]
#
# The DC gets its own directory and port (default $TMPDIR or /tmp/ad2entra-bench-dc, on 3489/3490) so it
# does not disturb the integration-test DC. --keep leaves it running afterwards.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
USERS=10000
DIR=${TMPDIR:-/tmp}/ad2entra-bench-dc
PORT=3489
PROFILE=release
KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --users) USERS=$2; shift 2 ;;
    -d) DIR=$2; shift 2 ;;
    -p) PORT=$2; shift 2 ;;
    --debug) PROFILE=debug; shift ;;
    --keep) KEEP=1; shift ;;
    *) echo "usage: $0 [--users N] [-d DIR] [-p PORT] [--debug] [--keep]" >&2; exit 2 ;;
  esac
done
ATTRS=displayName,givenName,sn,mail,department,description,proxyAddresses,employeeID,whenChanged
log() { echo "[bench] $*" >&2; }

if [ ! -x /usr/bin/time ]; then
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends time >&2
fi

# The DC, seeded once per directory.
if [ -f "$DIR/.seeded" ] && [ "$(cat "$DIR/.seeded")" != "$USERS" ]; then
  log "$DIR holds $(cat "$DIR/.seeded") users; purging it for $USERS"
  "$HERE/stop-test-dc.sh" -d "$DIR" --purge
fi
/usr/bin/time -f '%e' -o "$DIR.start-time" "$HERE/test-dc.sh" -d "$DIR" -p "$PORT" --seed-users "$USERS" >/dev/null
log "test DC ready in $(cat "$DIR.start-time") s ($USERS users)"
rm -f "$DIR.start-time"
set -a; . "$DIR/connection.env"; set +a
export LDAPTLS_CACERT=$LDAP_CA_FILE LDAPTLS_REQCERT=demand

cargo_flags=()
[ "$PROFILE" = release ] && cargo_flags+=(--release)
(cd "$ROOT" && cargo build -q "${cargo_flags[@]}" --example ldap_read)
BIN=$ROOT/target/$PROFILE/examples/ldap_read
WM=$(mktemp)
OUT=$(mktemp)
trap 'rm -f "$WM" "$OUT" "$OUT.ldif"' EXIT

# Runs a command under GNU time; prints "wall s, peak RSS MB" plus the command's summary.
measure() {
  local label=$1; shift
  /usr/bin/time -v -o "$OUT" "$@" >"$OUT.ldif"
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$OUT")
  rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2/1024}' "$OUT")
  printf '%-34s wall %-9s peak RSS %7s MB   %s\n' "$label" "$wall" "$rss" "$(tail -1 "$OUT.ldif" | cut -c1-90)"
}

# Same filter and attribute set as ad2entra's read (its ALWAYS_READ list + $ATTRS).
FILTER='(|(objectClass=user)(objectClass=group)(objectClass=organizationalUnit)(objectClass=container))'
ALWAYS=(objectGUID objectSid objectClass uSNChanged userAccountControl member memberOf
        isCriticalSystemObject adminCount sAMAccountName userPrincipalName cn name)
IFS=, read -r -a EXTRA <<<"$ATTRS"
echo "== full read: $USERS users, paged 1000, LDAPS ($PROFILE build) =="
for i in 1 2; do
  measure "ldapsearch -E pr=1000 (run $i)" ldapsearch -LLL -x -H "$LDAPS_URL" -D "$LDAP_BIND_DN" -w "$LDAP_PASSWORD" \
    -b "$LDAP_BASE_DN" -E pr=1000/noprompt "$FILTER" "${ALWAYS[@]}" "${EXTRA[@]}"
  echo "  entries: $(grep -c '^dn' "$OUT.ldif")"
  measure "ad2entra read_full (run $i)" "$BIN" full --env "$DIR/connection.env" --attrs "$ATTRS" --watermark-out "$WM"
done

# Ten changes: 8 attribute modifications, one move, one delete (of a throwaway user).
tmpuser="CN=bench-tmp-$$,OU=Staff,$LDAP_BASE_DN"
ldapmodify -x -H "$LDAPS_URL" -D "$LDAP_BIND_DN" -w "$LDAP_PASSWORD" >/dev/null <<EOF
dn: $tmpuser
changetype: add
objectClass: user
sAMAccountName: benchtmp$$
EOF
"$BIN" full --env "$DIR/connection.env" --attrs "$ATTRS" --watermark-out "$WM" >/dev/null
{
  for i in 1 2 3 4 5 6 7 8; do
    printf 'dn: CN=bulk%05d,OU=%s,OU=Staff,%s\nchangetype: modify\nreplace: description\ndescription: bench change %s\n-\n\n' \
      "$((i * 2 - 1))" Sales "$LDAP_BASE_DN" "$(date +%s%N)"
  done
  printf 'dn: CN=bulk00002,OU=Engineering,OU=Staff,%s\nchangetype: modrdn\nnewrdn: CN=bulk00002\ndeleteoldrdn: 1\nnewsuperior: OU=Sales,OU=Staff,%s\n\n' \
    "$LDAP_BASE_DN" "$LDAP_BASE_DN"
  printf 'dn: %s\nchangetype: delete\n\n' "$tmpuser"
} | ldapmodify -x -H "$LDAPS_URL" -D "$LDAP_BIND_DN" -w "$LDAP_PASSWORD" >/dev/null
# Move it back so the next run starts from the same state.
printf 'dn: CN=bulk00002,OU=Sales,OU=Staff,%s\nchangetype: modrdn\nnewrdn: CN=bulk00002\ndeleteoldrdn: 1\nnewsuperior: OU=Engineering,OU=Staff,%s\n\n' \
  "$LDAP_BASE_DN" "$LDAP_BASE_DN" >"$OUT.moveback"

echo "== delta read after 10 changes (8 modify, 1 move, 1 delete) =="
measure "ad2entra read_delta" "$BIN" delta --env "$DIR/connection.env" --attrs "$ATTRS" --watermark-in "$WM"
ldapmodify -x -H "$LDAPS_URL" -D "$LDAP_BIND_DN" -w "$LDAP_PASSWORD" -f "$OUT.moveback" >/dev/null
rm -f "$OUT.moveback"

if [ "$KEEP" = 0 ]; then
  "$HERE/stop-test-dc.sh" -d "$DIR" >/dev/null 2>&1
  log "stopped the bench DC (data kept in $DIR; --purge with stop-test-dc.sh to remove)"
fi
