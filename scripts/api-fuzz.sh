#!/usr/bin/env bash
# Schemathesis against `agentgate serve`: seeds a database with a real supervised session, starts
# the server on a free loopback port, and runs `schemathesis run` on /api/v1/openapi.json (every
# check, with the bearer token). Usage: scripts/api-fuzz.sh [BIN_DIR] (default .build/debug).
# Exit 77, with the reason, when schemathesis can't be installed from PyPI.
set -euo pipefail
bin=$(cd "${1:-.build/debug}" && pwd)
examples=${API_FUZZ_EXAMPLES:-25}
venv=${AGENTGATE_SCHEMATHESIS_VENV:-$HOME/.cache/agentgate-schemathesis}
if [ ! -x "$venv/bin/schemathesis" ]; then
  if ! { python3 -m venv "$venv" && "$venv/bin/pip" install -q 'schemathesis>=4,<5'; } >"${TMPDIR:-/tmp}/agentgate-api-fuzz-pip.log" 2>&1; then
    echo "api-fuzz: skipped: cannot install schemathesis from PyPI ($(tail -1 "${TMPDIR:-/tmp}/agentgate-api-fuzz-pip.log"))"
    exit 77
  fi
fi

scratch=$(mktemp -d /tmp/agentgate-api-fuzz.XXXXXX)
server=""
cleanup() { [ -n "$server" ] && kill -9 "$server" 2>/dev/null; rm -rf "$scratch"; }
trap cleanup EXIT
mkdir -m 700 "$scratch/run"
export XDG_RUNTIME_DIR=$scratch/run XDG_CONFIG_HOME=$scratch/config XDG_DATA_HOME=$scratch/data
unset AGENTGATE_RUNTIME_DIR AGENTGATE_DB
db=$scratch/audit.db

# A real session to read: some allowed reads and execs, one denial.
"$bin/agentgate-supervise" --db "$db" --session api-fuzz-seed -- sh -c 'cat /etc/hostname >/dev/null; ls / >/dev/null; cat /etc/shadow 2>/dev/null; true' >/dev/null

: >"$scratch/serve.out"
"$bin/agentgate" serve --listen 127.0.0.1:0 --db "$db" >"$scratch/serve.out" 2>"$scratch/serve.err" &
server=$!
port=""
for _ in $(seq 1 300); do
  port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\).*|\1|p' "$scratch/serve.out" || true)
  [ -n "$port" ] && break
  kill -0 "$server" 2>/dev/null || { echo "api-fuzz: agentgate serve did not start:"; cat "$scratch/serve.err"; exit 1; }
  sleep 0.1
done
[ -n "$port" ] || { echo "api-fuzz: agentgate serve did not say where it listens"; exit 1; }
token=$("$bin/agentgate" token)

start=$(date +%s)
# The event stream never ends by design: it is left out (APITests cover it).
status=0
cd "$scratch" # schemathesis keeps its state in .schemathesis/ of the working directory
"$venv/bin/schemathesis" run "http://127.0.0.1:$port/api/v1/openapi.json" \
  --url "http://127.0.0.1:$port" --checks all --max-examples "$examples" \
  --exclude-path /api/v1/events/stream -H "Authorization: Bearer $token" \
  --request-timeout 20 --no-color || status=$?
echo "api-fuzz: schemathesis finished in $(( $(date +%s) - start )) s with status $status"
if ! kill -0 "$server" 2>/dev/null; then echo "api-fuzz: agentgate serve died:"; cat "$scratch/serve.err"; exit 1; fi
exit $status
