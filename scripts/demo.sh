#!/usr/bin/env bash
# Guard in one command: a private Prosody behind Guard, two real clients
# through it, and an account of what happened.
#
#   ./scripts/demo.sh          (or: make demo)
#
# It installs prosody and python3-slixmpp with apt-get if they are missing,
# starts Prosody on 127.0.0.1:5262 (the backend in config.hcl), builds and
# starts Guard with config.hcl (clients on :5222, admin on 127.0.0.1:9090),
# runs the slixmpp client and then the Go client through Guard, prints each
# step with Guard's log, and stops everything it started when it exits.
# KEEP=1 keeps the work directory (logs, Prosody's configuration) afterwards.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD

PROSODY_ADDR=127.0.0.1
PROSODY_PORT=5262
GUARD_PORT=5222
ADMIN=127.0.0.1:9090
DOMAIN=localhost
DEMO_USER=demo
DEMO_PASS=demo-pw
PY=/usr/bin/python3

if [[ -t 1 ]]; then B=$'\e[1m' G=$'\e[32m' R=$'\e[31m' D=$'\e[2m' N=$'\e[0m'; else B= G= R= D= N=; fi
step() { printf '\n%s==> %s%s\n' "$B" "$*" "$N"; }
ok() { printf '  %sok%s  %s\n' "$G" "$N" "$*"; }
fail() { printf '  %sFAIL%s %s\n' "$R" "$N" "$*"; }
die() { fail "$*"; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/guard-demo.XXXXXX")
PROSODY_PID=
GUARD_PID=
RESULT=1

# stop PID NAME: SIGTERM, wait up to 5s, then SIGKILL. Only our own children.
stop() {
	local pid=$1 name=$2 i
	[[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		printf '  %s did not stop in 5s: SIGKILL\n' "$name"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	set +e
	step "Cleaning up"
	stop "$GUARD_PID" "Guard" && [[ -n $GUARD_PID ]] && echo "  stopped Guard (pid $GUARD_PID)"
	stop "$PROSODY_PID" "Prosody" && [[ -n $PROSODY_PID ]] && echo "  stopped Prosody (pid $PROSODY_PID)"
	if [[ ${KEEP:-0} == 1 ]]; then
		echo "  kept $WORK"
	else
		rm -rf "$WORK"
	fi
	if ((RESULT == 0)); then
		printf '\n%sDemo complete: both clients talked to Prosody through Guard.%s\n' "$G$B" "$N"
	else
		printf '\n%sDemo failed.%s Rerun with KEEP=1 to keep the logs.\n' "$R$B" "$N"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# listening PORT: does anything listen on the port (IPv4 or IPv6)?
listening() {
	local hex
	hex=$(printf '%04X' "$1")
	awk -v p=":$hex" '$4 == "0A" && substr($2, length($2)-4) == p {found=1} END {exit !found}' \
		/proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# http_get HOST:PORT PATH: print the response (status line, headers, body).
http_get() {
	local host=${1%:*} port=${1##*:}
	(
		exec 3<>"/dev/tcp/$host/$port" || exit 1
		printf 'GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n' "$2" "$1" >&3
		timeout 5 cat <&3
	) 2>/dev/null
}

# ---------------------------------------------------------------------------
step "Checking what the demo needs"
need=()
command -v prosody >/dev/null && command -v prosodyctl >/dev/null || need+=(prosody)
$PY -c 'import slixmpp' 2>/dev/null || need+=(python3-slixmpp)
if ((${#need[@]})); then
	echo "  installing ${need[*]} with apt-get"
	SUDO=
	if ((EUID != 0)); then
		command -v sudo >/dev/null || die "need root or sudo to install ${need[*]}"
		SUDO=sudo
	fi
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
fi
command -v go >/dev/null || die "Go is not on PATH (see go.mod for the version)"
ok "prosody $(dpkg-query -W -f='${Version}' prosody 2>/dev/null || echo '?'), slixmpp $($PY -c 'import slixmpp; print(slixmpp.__version__)'), $(go version | cut -d' ' -f3)"
for port in "$PROSODY_PORT" "$GUARD_PORT" "${ADMIN##*:}"; do
	if listening "$port"; then
		die "port $port is already in use (a system Prosody? an earlier demo?); the demo needs it free and will not stop what is there"
	fi
done
ok "ports $PROSODY_PORT, $GUARD_PORT and ${ADMIN##*:} are free"

# ---------------------------------------------------------------------------
step "Starting a private Prosody on $PROSODY_ADDR:$PROSODY_PORT (domain $DOMAIN)"
mkdir -p "$WORK/prosody/data" "$WORK/prosody/certs"
CFG=$WORK/prosody/prosody.cfg.lua
cat >"$CFG" <<EOF
-- The demo's private Prosody: plaintext c2s on loopback, nothing else.
run_as_root = true  -- harmless when not root; needed when the demo runs as root
daemonize = false
pidfile = "$WORK/prosody/prosody.pid"
data_path = "$WORK/prosody/data"
certificates = "$WORK/prosody/certs"
log = { { levels = { min = "info" }, to = "file", filename = "$WORK/prosody/prosody.log" } }
modules_enabled = { "roster", "saslauth", "disco", "ping", "presence", "message", "iq" }
modules_disabled = { "s2s", "s2s_auth_certs", "offline", "tls", "dialback" }
c2s_ports = { $PROSODY_PORT }
c2s_interfaces = { "$PROSODY_ADDR" }
c2s_direct_tls_ports = { }
legacy_ssl_ports = { }
s2s_ports = { }
http_ports = { }
https_ports = { }
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
authentication = "internal_hashed"
allow_registration = false
VirtualHost "$DOMAIN"
EOF
prosodyctl --config "$CFG" register "$DEMO_USER" "$DOMAIN" "$DEMO_PASS" </dev/null >"$WORK/prosodyctl.out" 2>&1 ||
	{ cat "$WORK/prosodyctl.out"; die "prosodyctl register failed"; }
ok "registered $DEMO_USER@$DOMAIN (password $DEMO_PASS)"
prosody -F --config "$CFG" </dev/null >"$WORK/prosody/prosody.out" 2>&1 &
PROSODY_PID=$!
for ((i = 0; i < 100; i++)); do
	listening "$PROSODY_PORT" && break
	kill -0 "$PROSODY_PID" 2>/dev/null || break
	sleep 0.1
done
listening "$PROSODY_PORT" || { cat "$WORK/prosody/prosody.out" "$WORK/prosody/prosody.log" 2>/dev/null; die "Prosody did not start"; }
ok "Prosody is up (pid $PROSODY_PID)"

# ---------------------------------------------------------------------------
step "Building Guard"
go build -o bin/guard ./cmd/guard
ok "bin/guard: $(bin/guard version 2>/dev/null || echo built)"

# config.hcl as it is, except the log level: at "debug" Guard logs each
# connection, which is what the demo wants to show. DEMO_LOG_LEVEL=info
# shows Guard exactly as configured.
GUARD_CONFIG=config.hcl
if [[ ${DEMO_LOG_LEVEL:-debug} != info ]]; then
	GUARD_CONFIG=$WORK/guard.hcl
	sed -E "0,/^([[:space:]]*level[[:space:]]*=[[:space:]]*)\"info\"/s//\1\"${DEMO_LOG_LEVEL:-debug}\"/" config.hcl >"$GUARD_CONFIG"
fi
step "Starting Guard: bin/guard -config $GUARD_CONFIG"
[[ $GUARD_CONFIG == config.hcl ]] || echo "  (config.hcl with log level ${DEMO_LOG_LEVEL:-debug}, so that each connection shows up)"
bin/guard -config "$GUARD_CONFIG" </dev/null 2>"$WORK/guard.log" &
GUARD_PID=$!
ready=
for ((i = 0; i < 100; i++)); do
	kill -0 "$GUARD_PID" 2>/dev/null || break
	if http_get "$ADMIN" /readyz | head -1 | grep -q ' 200'; then ready=1; break; fi
	sleep 0.1
done
if [[ -z $ready ]]; then
	sed 's/^/  guard: /' "$WORK/guard.log"
	die "Guard did not become ready on http://$ADMIN/readyz"
fi
ok "Guard is up (pid $GUARD_PID): clients on :$GUARD_PORT -> Prosody $PROSODY_ADDR:$PROSODY_PORT; /readyz says 200"
sed 's/^/  guard: /' "$WORK/guard.log"
guard_lines=$(wc -l <"$WORK/guard.log")

# show_guard_log: Guard's log lines since the last call.
show_guard_log() {
	sleep 0.3 # let Guard log the close
	local n
	n=$(wc -l <"$WORK/guard.log")
	if ((n > guard_lines)); then
		echo "  Guard's log for this connection:"
		sed -n "$((guard_lines + 1)),${n}p" "$WORK/guard.log" | sed "s/^/  ${D}guard:${N} /"
	else
		echo "  (Guard logged nothing for this connection at its log level)"
	fi
	guard_lines=$n
}

failures=0

# ---------------------------------------------------------------------------
step "Client 1: slixmpp (a third-party Python client) through Guard"
echo "  $PY testdata/clients/slixmpp_echo.py --host 127.0.0.1 --port $GUARD_PORT --jid $DEMO_USER@$DOMAIN ..."
set +e
slix=$($PY testdata/clients/slixmpp_echo.py --host 127.0.0.1 --port "$GUARD_PORT" \
	--jid "$DEMO_USER@$DOMAIN/slixmpp" --password "$DEMO_PASS" \
	--body "hello from slixmpp through Guard" --timeout 15 </dev/null 2>"$WORK/slixmpp.err")
slix_rc=$?
set -e
$PY - "$slix" <<'EOF' || true
import json, sys
try:
    r = json.loads(sys.argv[1].strip().splitlines()[-1])
except Exception:
    print("  (no report from the client)")
    sys.exit(0)
def say(flag, text):
    print("  %-4s %s" % ("yes" if flag else "no", text))
say(r["connected"], "TCP connection and XMPP stream opened through Guard")
say(r["logged_in"], "logged in (SASL over the plaintext stream, resource bound)")
say(r["echo"], "sent a message to itself and received it back")
if r["stream_error"]:
    print("  stream error from the server side: <%s/> %s" % (r["stream_error"], r["stream_error_text"]))
print("  disconnect: %s, after %.2fs" % (r["disconnect_reason"] or "-", r["elapsed"]))
EOF
if ((slix_rc == 0)); then ok "slixmpp echo through Guard"; else
	fail "slixmpp (exit $slix_rc)"
	sed 's/^/  slixmpp: /' "$WORK/slixmpp.err" | tail -20
	failures=$((failures + 1))
fi
show_guard_log

# ---------------------------------------------------------------------------
step "Client 2: Guard's own Go test client (internal/xmppclient) through Guard"
go build -o "$WORK/democlient" ./internal/cmd/democlient
if "$WORK/democlient" -addr "127.0.0.1:$GUARD_PORT" -domain "$DOMAIN" -user "$DEMO_USER" -password "$DEMO_PASS" </dev/null; then
	ok "Go client echo through Guard, closed gracefully"
else
	fail "Go client"
	failures=$((failures + 1))
fi
show_guard_log

# ---------------------------------------------------------------------------
step "What Guard reports on http://$ADMIN"
printf '  /healthz: %s\n' "$(http_get "$ADMIN" /healthz | head -1 | tr -d '\r')"
printf '  /readyz:  %s\n' "$(http_get "$ADMIN" /readyz | head -1 | tr -d '\r')"
metrics=$(http_get "$ADMIN" /metrics | grep -E '^guard_' | grep -v '_bucket{' || true)
if [[ -n $metrics ]]; then
	echo "  /metrics (guard_*):"
	echo "$metrics" | head -40 | sed 's/^/    /'
else
	echo "  /metrics: no guard_* series"
fi

step "Prosody's view (its log, client lines)"
grep -E 'Authenticated as|Client disconnected|Resource bound' "$WORK/prosody/prosody.log" 2>/dev/null | sed 's/^/  prosody: /' || true

if ((failures == 0)); then RESULT=0; fi
exit "$failures"
