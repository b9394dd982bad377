#!/usr/bin/env bash
# The dashboard (`agentgate serve`'s page at /) in headless Chromium from Debian's packages,
# against the real server and real supervised sessions:
#   1. an empty database: the page loads, every card shows 0, no JavaScript error;
#   2. a database seeded by running supervised commands (one denied read of a file whose name is
#      markup, to check that agent-controlled text stays text): the cards show the numbers the
#      database holds;
#   3. a live supervised process paused on an ask: the page lists it, the token is entered in the
#      page's form, its Approve button is clicked, and the process goes on and exits 0; the audit
#      records the answer as given over the control socket;
#   4. a screenshot of the page (docs/dashboard.png, or $DASHBOARD_SCREENSHOT).
#
#   scripts/dashboard-test.sh BUILD_DIR        (e.g. .build/debug)
#
# Exit 0: passed; 77: can't run here (the reason on stderr); anything else: failed.
# Chromium is installed with apt-get when missing (as root, or through sudo).
# The browser is driven over the DevTools protocol on a pipe (scripts/dashboard-browser.py,
# standard library only).
set -euo pipefail

bin=$(cd "${1:?usage: dashboard-test.sh BUILD_DIR}" && pwd)
repo=$(cd "$(dirname "$0")/.." && pwd)
screenshot=${DASHBOARD_SCREENSHOT:-$repo/docs/dashboard.png}
skip() { echo "dashboard-test: skipped: $*" >&2; exit 77; }
fail() {
    echo "dashboard-test: FAILED: $*" >&2
    for log in "${work:-/nonexistent}"/serve*.log "${work:-/nonexistent}"/live.log; do
        [ -s "$log" ] && { echo "dashboard-test: $log, last lines:" >&2; tail -n 15 "$log" | sed 's/^/  /' >&2; }
    done
    exit 1
}
note() { echo "dashboard-test: $*" >&2; }
started=$(date +%s)

[ -x "$bin/agentgate" ] && [ -x "$bin/agentgate-supervise" ] || fail "no agentgate binaries in $bin"
"$bin/agentgate" serve --help 2>&1 | grep -q -- --listen || skip "this build of agentgate has no serve command"
command -v python3 >/dev/null || skip "python3 is not installed"

chromium=$(command -v chromium || true)
if [ -z "$chromium" ]; then
    sudo=""
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null && sudo -n true 2>/dev/null || skip "chromium is not installed, and installing it needs root (apt-get install chromium)"
        sudo="sudo -n"
    fi
    note "installing chromium from Debian's packages (apt-get install chromium)"
    if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium; } >/tmp/agentgate-dashboard-apt.log 2>&1; then
        tail -n 5 /tmp/agentgate-dashboard-apt.log >&2
        skip "apt-get install chromium failed (no route to Debian's mirror?); the log is /tmp/agentgate-dashboard-apt.log"
    fi
    chromium=$(command -v chromium || true)
    [ -n "$chromium" ] || skip "apt-get installed chromium, but there is no chromium command"
fi
note "browser: $("$chromium" --version 2>/dev/null || echo "$chromium")"

work=$(mktemp -d /tmp/agentgate-dashboard-test.XXXXXX)
serve_pid=""; live_pid=""; deny_pid=""
cleanup() {
    # Only what this script started, by pid.
    for pid in $live_pid $deny_pid $serve_pid; do kill -KILL "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# Everything of the run's own: database, token, control sockets.
export HOME=$work/home XDG_CONFIG_HOME=$work/config XDG_DATA_HOME=$work/data XDG_RUNTIME_DIR=$work/run
export AGENTGATE_DB=$work/agentgate.db
mkdir -p "$HOME" "$XDG_CONFIG_HOME" "$XDG_DATA_HOME"
mkdir -m 0700 "$XDG_RUNTIME_DIR"
project=$work/project
mkdir "$project"

start_server() { # LOG: on a free loopback port (--listen 127.0.0.1:0; the port is in its first line)
    "$bin/agentgate" serve --listen 127.0.0.1:0 --db "$AGENTGATE_DB" >"$1" 2>&1 &
    serve_pid=$!
    local port=""
    for _ in $(seq 1 100); do
        port=$(sed -n 's|^agentgate serve: listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$1" | head -n 1)
        [ -n "$port" ] && { base="http://127.0.0.1:$port"; return 0; }
        kill -0 "$serve_pid" 2>/dev/null || fail "agentgate serve exited at start"
        sleep 0.1
    done
    fail "agentgate serve did not say it was listening within 10 s"
}
stop_server() { kill -KILL "$serve_pid" 2>/dev/null || true; wait "$serve_pid" 2>/dev/null || true; serve_pid=""; }
browse() { # STEPS_JSON (a file)
    python3 "$repo/scripts/dashboard-browser.py" "$chromium" "$base/" "$1" || fail "the page in Chromium (above)"
}
# The card values the page must show, as it formats them, from the database itself.
expected_cards() {
    python3 - "$AGENTGATE_DB" <<'EOF'
import json, math, os, sqlite3, sys, time
from decimal import Decimal, ROUND_HALF_UP
def micros(us):  # as the page's fmtMicros writes it (JavaScript's toFixed rounds half up)
    if us is None: return "–"
    fixed = lambda x, places: str(Decimal(x).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP))
    if us < 1000: return f"{round(us)} µs"
    if us < 1e6: return fixed(us / 1000, 2 if us < 1e4 else 1) + " ms"
    return fixed(us / 1e6, 2) + " s"
def quantile(values, q):  # nearest rank, as the page computes it
    return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))] if values else None
counts = {"agents": 0, "sessions": 0, "events": 0, "allow": 0, "deny": 0, "ask": 0}
latencies = []
if os.path.exists(sys.argv[1]):
    db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
    counts["agents"] = db.execute("SELECT count(DISTINCT agent) FROM sessions").fetchone()[0]
    counts["sessions"] = db.execute("SELECT count(*) FROM sessions").fetchone()[0]
    # Decisions, as the page counts them: allowed reads stored as aggregates once per read.
    counts["events"] = db.execute("SELECT count(*) FROM events WHERE decision IN ('allow','deny','ask','log')").fetchone()[0] \
        + db.execute("SELECT coalesce(sum(count), 0) FROM read_entries").fetchone()[0]
    for decision, n in db.execute("SELECT decision, count(*) FROM events GROUP BY decision"):
        key = "allow" if decision == "log" else decision   # the Allow card counts log (allowed, flagged)
        counts[key] += n
    since = int(time.time() * 1e6) - 60 * 60 * 10**6
    latencies = sorted(r[0] for r in db.execute("SELECT latency_us FROM events WHERE time >= ?", (since,)))
cards = {k: f"{v:,}" for k, v in counts.items()}
cards["p50"], cards["p99"] = micros(quantile(latencies, 0.5)), micros(quantile(latencies, 0.99))
print(json.dumps(cards, ensure_ascii=False))
EOF
}
card_steps() { # EXPECTED_JSON: one eval step per card
    python3 -c '
import json, sys
print(",".join(json.dumps({"eval": f"document.getElementById(\"card-{k}\").textContent", "expect": v, "what": f"card {k}"})
               for k, v in json.loads(sys.argv[1]).items()))' "$1"
}

# ---- 1. an empty database ----
start_server "$work/serve-empty.log"
note "1. empty database, server at $base"
cat >"$work/steps-empty.json" <<EOF
[
  {"wait": "document.body.dataset.ready === '1'", "what": "the page loaded its data"},
  {"eval": "document.getElementById('status').classList.contains('error')", "expect": false, "what": "no error in the status line"},
  $(card_steps "$(expected_cards)"),
  {"eval": "document.getElementById('approvals').textContent.includes('No action is waiting')", "expect": true, "what": "no pending approvals"},
  {"eval": "document.getElementById('events').textContent.includes('No events yet')", "expect": true, "what": "the events table says it is empty"},
  {"eval": "!!document.querySelector('#timeline svg')", "expect": true, "what": "the 60-minute chart is drawn"}
]
EOF
browse "$work/steps-empty.json"
stop_server

# ---- 2. a seeded database ----
# reads: all, so that every decision is an event row the expected figures below count (with
# the default, allowed reads are stored as aggregates).
cat >"$project/policy.yaml" <<EOF
default: allow
audit: {reads: all}
rules:
  - id: no-secrets
    match: {action: fs_read, target_glob: "$project/secret*"}
    decision: deny
    reason: secrets are not for agents
  - id: person-approves
    match: {action: fs_write, target_glob: "$project/approved*"}
    decision: ask
    reason: a person approves this write
ask_timeout: 2m
EOF
markup_name='secret-<img src=x onerror="window.__pwned=1">.txt'
echo "not for agents" >"$project/$markup_name"
echo "also not" >"$project/secret.txt"
cd "$project"
"$bin/agentgate-supervise" --policy policy.yaml --agent builder --session seed-builder -- \
    sh -c 'echo notes > notes.txt; cat notes.txt >/dev/null; cat secret.txt' </dev/null >"$work/seed1.log" 2>&1 && fail "the denied read succeeded"
"$bin/agentgate-supervise" --policy policy.yaml --agent reviewer --session seed-reviewer -- \
    sh -c 'ls >/dev/null; cat secret-*.txt; true' </dev/null >"$work/seed2.log" 2>&1 || fail "the second seeding session failed: $(cat "$work/seed2.log")"
seeded=$(expected_cards)
note "2. seeded: $seeded"

# ---- 3. two live processes paused on asks: one is approved, one denied, through the page ----
pending_ask() { # SESSION PID LOG: the id of the session's pending ask, once it is listed
    local id=""
    for _ in $(seq 1 100); do
        id=$("$bin/agentgate" approvals --session "$1" --json 2>/dev/null | python3 -c 'import json, sys
lines = [json.loads(l) for l in sys.stdin if l.strip()]
print(lines[0]["id"] if lines else "")' || true)
        [ -n "$id" ] && { echo "$id"; return 0; }
        kill -0 "$2" 2>/dev/null || fail "session $1 ended without asking: $(cat "$3")"
        sleep 0.1
    done
    fail "session $1's ask never showed in agentgate approvals"
}
"$bin/agentgate-supervise" --policy policy.yaml --agent live-agent --session live-ask -- \
    sh -c 'echo yes > approved.txt && echo continued > continued.txt' </dev/null >"$work/live.log" 2>&1 &
live_pid=$!
"$bin/agentgate-supervise" --policy policy.yaml --agent live-agent --session live-deny -- \
    sh -c 'echo no > approved-not.txt; echo "write status $?" > after-deny.txt' </dev/null >"$work/live-deny.log" 2>&1 &
deny_pid=$!
ask_id=$(pending_ask live-ask "$live_pid" "$work/live.log")
deny_id=$(pending_ask live-deny "$deny_pid" "$work/live-deny.log")
# The events before the ask reach the database in the writer's next batch: wait until the
# count holds still, then take the numbers the cards must show.
previous=""
for _ in $(seq 1 50); do
    now=$(expected_cards)
    [ "$now" = "$previous" ] && break
    previous=$now
    sleep 0.3
done
expected=$(expected_cards)
note "3. asks $ask_id (to approve) and $deny_id (to deny) are pending; the cards must show $expected"

start_server "$work/serve.log"
token=$("$bin/agentgate" token 2>/dev/null) || fail "agentgate token printed nothing"
[ -n "$token" ] || fail "agentgate token printed nothing"
[ -e "$project/approved.txt" ] && fail "approved.txt exists before anyone approved"
cat >"$work/steps.json" <<EOF
[
  {"wait": "document.body.dataset.ready === '1'", "what": "the page loaded its data"},
  {"eval": "document.getElementById('status').classList.contains('error')", "expect": false, "what": "no error in the status line"},
  $(card_steps "$expected"),
  {"wait": "document.querySelector('#approvals .ask-item[data-ask=\"$ask_id\"]')", "what": "ask $ask_id is listed"},
  {"eval": "document.querySelector('#approvals .ask-item[data-ask=\"$ask_id\"]').textContent.includes('$project/approved.txt')", "expect": true, "what": "the ask shows its target"},
  {"wait": "[...document.querySelectorAll('#events td.target')].some(td => td.textContent.includes('secret-<img src=x onerror='))", "what": "the markup file name is shown as text"},
  {"eval": "document.querySelectorAll('#events img, #sessions img, #approvals img').length", "expect": 0, "what": "no element made from agent data"},
  {"eval": "window.__pwned === undefined", "expect": true, "what": "no script from agent data ran"},
  {"eval": "document.querySelectorAll('#risk [data-risk]').length", "expect": 4, "what": "the risk distribution's rows"},
  {"eval": "document.querySelectorAll('#timeline rect[data-decision=\"deny\"]').length > 0", "expect": true, "what": "denials in the 60-minute chart"},
  {"click": "#sessions tr[data-session=\"seed-builder\"]", "what": "session seed-builder"},
  {"wait": "document.querySelectorAll('#session-detail ul.tree li').length >= 2", "what": "its process tree"},
  {"eval": "document.querySelector('#session-detail ul.tree').textContent.includes('cat secret.txt')", "expect": true, "what": "the tree shows cat secret.txt"},
  {"eval": "!!document.querySelector('#session-timeline rect')", "expect": true, "what": "its timeline"},
  {"screenshot": "$work/dashboard.png", "width": 1400, "height": 1000},
  {"click": "#approvals .ask-item[data-ask=\"$ask_id\"] button.approve", "what": "Approve without a token"},
  {"wait": "document.querySelector('#approvals .ask-item[data-ask=\"$ask_id\"] .result').textContent.includes('token')", "what": "the page asks for the token"},
  {"token": "$token"},
  {"eval": "sessionStorage.getItem('agentgate.token') === '$token'", "expect": true, "what": "the token is kept in sessionStorage"},
  {"click": "#approvals .ask-item[data-ask=\"$ask_id\"] button.approve", "what": "Approve"},
  {"file_wait": "$project/continued.txt", "timeout": 20, "what": "the supervised process went on (continued.txt)"},
  {"wait": "!document.querySelector('#approvals .ask-item[data-ask=\"$ask_id\"]')", "timeout": 15, "what": "the ask left the list"},
  {"wait": "[...document.querySelectorAll('#events td.target')].some(td => td.textContent.includes('continued.txt'))", "timeout": 15, "what": "the live table shows the process's next write"},
  {"click": "#approvals .ask-item[data-ask=\"$deny_id\"] button.deny", "what": "Deny"},
  {"file_wait": "$project/after-deny.txt", "timeout": 20, "what": "the denied process went on past its refused write"},
  {"wait": "!document.querySelector('#approvals .ask-item[data-ask=\"$deny_id\"]')", "timeout": 15, "what": "the denied ask left the list"}
]
EOF
browse "$work/steps.json"
status=0
wait "$live_pid" || status=$?
live_pid=""
[ "$status" = 0 ] || fail "the approved session exited $status"
[ "$(cat "$project/approved.txt")" = yes ] || fail "approved.txt does not hold what the process wrote"
answered=$(python3 - "$AGENTGATE_DB" "$project/approved.txt" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
row = db.execute("SELECT decision, answered_via FROM events WHERE session_id='live-ask' AND target=?", (sys.argv[2],)).fetchone()
print(" ".join(map(str, row)) if row else "none")
EOF
)
[ "$answered" = "allow socket" ] || fail "the audit records the approved write as '$answered', not 'allow socket'"
note "4. approved through the page: the process continued and exited 0, recorded as $answered"
wait "$deny_pid" || true
deny_pid=""
[ -e "$project/approved-not.txt" ] && fail "the denied write happened"
[ "$(cat "$project/after-deny.txt")" != "write status 0" ] || fail "the denied write reported success"
denied=$(python3 - "$AGENTGATE_DB" "$project/approved-not.txt" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
row = db.execute("SELECT decision, answered_via FROM events WHERE session_id='live-deny' AND target=?", (sys.argv[2],)).fetchone()
print(" ".join(map(str, row)) if row else "none")
EOF
)
[ "$denied" = "deny socket" ] || fail "the audit records the denied write as '$denied', not 'deny socket'"
note "5. denied through the page: the write failed ($(cat "$project/after-deny.txt")), recorded as $denied"
stop_server

mkdir -p "$(dirname "$screenshot")"
cp "$work/dashboard.png" "$screenshot"
note "screenshot: $screenshot"
note "passed in $(( $(date +%s) - started )) s"
