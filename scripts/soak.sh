#!/usr/bin/env bash
# Soaks of the supervisor (`make soak`), printing figures for README:
#
# 1. Races: a path flips between an allowed and a denied target in a tight loop while threads
#    call open, exec, connect (unix socket path), bind and rename on it, SOAK_SECONDS per race
#    (default 60). Each race first runs unsupervised for a few seconds and must win there (so
#    it can detect a bypass); supervised, the goal is 0 wins.
# 2. Load: SOAK_THREADS (64) threads × SOAK_OPENS (100000) opens, plus exec, connect and
#    fork/exit loops, for SOAK_MINUTES (10): no failed allowed call, the supervisor ends, every
#    open is in the database, `agentgate audit verify` passes; the supervisor's RSS is sampled.
# 3. Faults (SOAK_FAULTS=0 skips): SIGSTOP/SIGCONT of the supervisor under load, then kill -9
#    of it: the agent's trapped calls must fail from then on, never run unsupervised. Then the
#    database's file system fills, and frees; and goes read-only (root only: a private mount
#    namespace): no allowed call fails, no record is lost.
#
#   scripts/soak.sh [BIN_DIR]   (default .build/debug; SOAK_ONLY=race|load|faults|dbfaults runs one part;
#                                SOAK_SUPERVISE_ARGS adds options, e.g. "--fd-injection two-step")
# Needs root or an unprivileged user namespace as agentgate-supervise does; exit 77 when the
# supervisor can't run here.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=$(cd "${1:-.build/debug}" && pwd)
SECONDS_PER_RACE=${SOAK_SECONDS:-60}
MINUTES=${SOAK_MINUTES:-10}
THREADS=${SOAK_THREADS:-64}
OPENS=${SOAK_OPENS:-100000}
ONLY=${SOAK_ONLY:-}
export SWIFT_BACKTRACE=enable=no

WORK=$(mktemp -d /tmp/agentgate-soak.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
for program in race load forbidden; do
    gcc -O2 -pthread -o "$WORK/$program" "scripts/soak/$program.c" || { echo "soak: cannot compile $program.c" >&2; exit 1; }
done
if ! "$BIN/agentgate-supervise" -q --db "$WORK/probe.db" -- true 2>"$WORK/probe.err"; then
    echo "soak: skipped: agentgate-supervise can't run here: $(head -3 "$WORK/probe.err")"
    exit 77
fi
failed=0
fail() { echo "soak: FAILED: $*"; failed=1; }

# The directory layout and policy every part uses (see scripts/soak/race.c).
make_tree() {
    local dir=$1
    rm -rf "$dir"; mkdir -p "$dir/ok" "$dir/deny" "$dir/bin"
    echo ALLOWED >"$dir/ok/file"; echo DENIED >"$dir/deny/file"
    for i in 0 1 2 3 4 5 6 7; do echo ALLOWED >"$dir/ok/file-$i"; done
    cp /bin/true "$dir/bin/allowed"; cp "$WORK/forbidden" "$dir/bin/forbidden"
    cat >"$dir/policy.yaml" <<POLICY
version: 2
default: allow
rules:
  - id: soak-deny-dir
    match: {action: [fs_read, fs_write], target_glob: "$dir/deny/**"}
    decision: deny
  - id: soak-forbidden-program
    match: {action: exec, target_glob: "$dir/bin/forbidden"}
    decision: deny
  - id: soak-deny-socket
    match: {action: net_egress, target_glob: "unix:$dir/deny.sock"}
    decision: deny
POLICY
}

supervised() { # DB POLICY CMD...
    local db=$1 policy=$2; shift 2
    "$BIN/agentgate-supervise" -q --policy "$policy" --db "$db" ${SOAK_SUPERVISE_ARGS:-} -- "$@"
}

# ---------------------------------------------------------------------------------------------
if [ -z "$ONLY" ] || [ "$ONLY" = race ]; then
    echo "== race soak: ${SECONDS_PER_RACE} s per race"
    printf '%-8s %-46s %-46s\n' race "unsupervised (must win)" supervised
    bare_seconds=$(( SECONDS_PER_RACE < 5 ? SECONDS_PER_RACE : 5 ))
    for mode in open exec connect bind rename; do
        dir="$WORK/race-$mode"
        make_tree "$dir"
        bare=$(cd "$dir" && "$WORK/race" "$mode" "$bare_seconds" "$dir")
        make_tree "$dir"
        guarded=$(cd "$dir" && supervised "$WORK/race-$mode.db" "$dir/policy.yaml" "$WORK/race" "$mode" "$SECONDS_PER_RACE" "$dir" 2>"$WORK/race-$mode.err")
        printf '%-8s %-46s %-46s\n' "$mode" "$bare" "${guarded:-no result: $(head -c 200 "$WORK/race-$mode.err")}"
        [[ "$bare" =~ wins=([1-9][0-9]*) ]] || fail "the $mode race never won unsupervised: it can't detect a bypass"
        # Supervised, the allowed target must still be reached (a race that only fails proves nothing).
        [[ "$guarded" =~ attempts=[1-9][0-9]*\ allowed=[1-9][0-9]*\ wins=0$ ]] || fail "the $mode race: $guarded"
    done
fi

# ---------------------------------------------------------------------------------------------
rss_of() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null; }

if [ -z "$ONLY" ] || [ "$ONLY" = load ]; then
    echo "== load soak: $THREADS threads × $OPENS opens + exec, connect, fork/exit loops, ${SOAK_LOAD_SECONDS:-$(( MINUTES * 60 ))} s"
    dir="$WORK/load-tree"; make_tree "$dir"
    db="$WORK/load.db"
    seconds=${SOAK_LOAD_SECONDS:-$(( MINUTES * 60 ))}
    (cd "$dir" && supervised "$db" "$dir/policy.yaml" "$WORK/load" "$THREADS" "$OPENS" "$seconds" "$dir" \
        >"$WORK/load.out" 2>"$WORK/load.err") &
    wrapper=$!
    sleep 1
    supervisor=$(pgrep -n -P "$wrapper" -f agentgate-supervise || true)
    samples=()
    deadline=$(( $(date +%s) + seconds + 300 ))
    while kill -0 "$wrapper" 2>/dev/null; do
        [ -n "$supervisor" ] && rss=$(rss_of "$supervisor") && [ -n "$rss" ] && samples+=("$rss")
        if [ "$(date +%s)" -gt "$deadline" ]; then fail "the load soak didn't end 5 min after its time: deadlock?"; kill -9 "$wrapper"; break; fi
        sleep 10
    done
    wait "$wrapper"; status=$?
    counts=$(cat "$WORK/load.out")
    echo "agent: $counts (exit $status)"
    [ "$status" = 0 ] || fail "the load soak's agent exited $status: $(tail -3 "$WORK/load.err")"
    [[ "$counts" =~ open_failures=0\ .*exec_failures=0\ .*connect_failures=0\ .*fork_failures=0 ]] || fail "allowed calls failed: $(sort "$WORK/load.err" | uniq -c | head -5)"
    echo "supervisor RSS (MB, every 10 s): $(printf '%s\n' "${samples[@]}" | awk '{printf "%d ", $1/1024}')"
    opens=$(sed -n 's/.*opens=\([0-9]*\) .*/\1/p' <<<"$counts" | head -1)
    recorded=$(python3 - "$db" "$dir/ok/file-" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
print(db.execute("select count(*) from events where action = 'fs_read' and target like ? || '%'", (sys.argv[2],)).fetchone()[0])
PY
)
    echo "opens read by the agent: $opens; fs_read events of them in the database: $recorded"
    [ -n "$recorded" ] && [ "$recorded" -ge "${opens:-0}" ] || fail "the database holds $recorded of $opens opens"
    "$BIN/agentgate" audit verify --db "$db" >"$WORK/verify.out" 2>&1 && echo "audit verify: $(tail -1 "$WORK/verify.out")" \
        || fail "audit verify: $(cat "$WORK/verify.out")"
fi

# ---------------------------------------------------------------------------------------------
if { [ -z "$ONLY" ] || [ "$ONLY" = faults ]; } && [ "${SOAK_FAULTS:-1}" = 1 ]; then
    echo "== faults under load"
    dir="$WORK/faults"; make_tree "$dir"
    # SIGSTOP / SIGCONT: the agent waits, then goes on; nothing allowed fails.
    (cd "$dir" && supervised "$WORK/stop.db" "$dir/policy.yaml" "$WORK/load" 8 1000000 20 "$dir" >"$WORK/stop.out" 2>"$WORK/stop.err") &
    wrapper=$!
    sleep 3
    supervisor=$(pgrep -n -P "$wrapper" -f agentgate-supervise || true)
    [ -n "$supervisor" ] || fail "SIGSTOP: the supervisor wasn't found"
    kill -STOP "$supervisor"; sleep 5; kill -CONT "$supervisor"
    wait "$wrapper"; status=$?
    echo "SIGSTOP 5 s, SIGCONT: agent exit $status, $(cat "$WORK/stop.out")"
    [ "$status" = 0 ] && grep -q "open_failures=0 .*exec_failures=0 .*connect_failures=0 .*fork_failures=0" "$WORK/stop.out" \
        || fail "after SIGSTOP/SIGCONT: $(tail -3 "$WORK/stop.err")"
    "$BIN/agentgate" audit verify --db "$WORK/stop.db" >/dev/null 2>&1 || fail "audit verify after SIGSTOP/SIGCONT"

    # kill -9 of the supervisor while the agent keeps trying to read the denied file: no read
    # may succeed afterwards (the agent's trapped calls fail, or the agent is gone).
    make_tree "$dir"
    (cd "$dir" && supervised "$WORK/kill.db" "$dir/policy.yaml" "$WORK/race" open 15 "$dir" >"$WORK/kill.out" 2>"$WORK/kill.err") &
    wrapper=$!
    sleep 3
    supervisor=$(pgrep -n -P "$wrapper" -f agentgate-supervise || true)
    agent=$(pgrep -n -f "$WORK/race open" || true)
    [ -n "$supervisor" ] && [ -n "$agent" ] || fail "kill -9: the supervisor ($supervisor) or the agent ($agent) wasn't found"
    kill -9 "$supervisor"
    sleep 3
    alive=$([ -n "$agent" ] && kill -0 "$agent" 2>/dev/null && echo "still running" || echo "gone")
    wait "$wrapper"  # the agent, if it lives, ends its 15 s and prints what it read
    echo "kill -9 of the supervisor: agent $alive after 3 s; its result: $(cat "$WORK/kill.out" 2>/dev/null | tr -d '\n')"
    grep -q "wins=[1-9]" "$WORK/kill.out" && fail "the agent read the denied file after the supervisor was killed"
fi

# ---------------------------------------------------------------------------------------------
# The database's file system fails under load: (full) a filler file takes every free byte of a
# 256 MB tmpfs (room for every record and their import once it is free again; the filler
# makes it full whatever its size), then is deleted; (readonly) an ext4 image goes read-only
# as on a disk error, to the session's end (then it is checked and mounted again, for the next
# start). Each in a private mount namespace. Counts: decided (the supervisor's end line), in
# the database, in the fallback file, in the spill file (/run/agentgate-spill or the runtime
# directory), in the database after the next start's import, lost (must be 0); and no allowed
# call may fail.
db_fault() { # full|readonly
    local kind=$1 dir="$WORK/dbfault-$1" out="$WORK/dbfault-$1.out"
    make_tree "$dir"
    cat >"$WORK/dbfault.sh" <<'INNER'
set -u
kind=$1 bin=$2 dir=$3 mnt=$4 load=$5
mkdir -p "$mnt"
if [ "$kind" = full ]; then
    mount -t tmpfs -o size=256m agentgate-soak "$mnt" || { echo "skip: can't mount a tmpfs"; exit 77; }
else
    # A file system can't be remounted read-only while files on it are open for writing
    # (EBUSY), so the database's own goes read-only the way a failing disk does: an ext4 error
    # with errors=remount-ro (triggered through sysfs), on a loop device. That lasts until
    # it is unmounted.
    truncate -s 256M "$mnt.img" && mkfs.ext4 -q -F "$mnt.img" >/dev/null 2>&1 \
        && mount -o loop,errors=remount-ro "$mnt.img" "$mnt" 2>/dev/null || { echo "skip: can't mount an ext4 image on a loop device"; exit 77; }
    trigger=/sys/fs/ext4/$(basename "$(findmnt -n -o SOURCE "$mnt")")/trigger_fs_error
    [ -w "$trigger" ] || { echo "skip: no $trigger"; umount "$mnt"; exit 77; }
fi
cd "$dir"
"$bin/agentgate-supervise" --policy "$dir/policy.yaml" --db "$mnt/audit.db" -- "$load" 4 20000 24 "$dir" >"$dir/agent.out" 2>"$dir/supervisor.err" &
wrapper=$!
sleep 4
if [ "$kind" = full ]; then
    dd if=/dev/zero of="$mnt/filler" bs=64k 2>/dev/null
    echo "fault: disk full ($(df -k --output=avail "$mnt" | tail -1 | tr -d ' ') KB free) for 8 s"
    sleep 8; rm -f "$mnt/filler"
else
    echo 1 >"$trigger"
    grep -q " $mnt .*\bro\b" /proc/mounts && echo "fault: read-only from 4 s to the end" || echo "fault: the file system did not go read-only"
fi
wait $wrapper; echo "agent exit $?: $(cat "$dir/agent.out")"
decided=$(sed -n 's/.* ended ([^)]*): \([0-9]*\) allowed, \([0-9]*\) denied, \([0-9]*\) asked.*/\1 \2 \3/p' "$dir/supervisor.err" | awk '{print $1+$2+$3}')
session=$(sed -n 's/.*session \([0-9a-f]*\) ended .*/\1/p' "$dir/supervisor.err")
# Decisions a file holds: event rows, plus the reads each aggregate counts (allowed reads are
# stored as aggregates by default: `audit: {reads: aggregate}`).
events() { python3 -c "
import sqlite3,sys
db = sqlite3.connect(sys.argv[1]); like = sys.argv[2] + '%'
rows = db.execute('select count(*) from events where session_id like ?', (like,)).fetchone()[0]
reads = db.execute('select coalesce(sum(e.count), 0) from read_entries e join read_sets s on e.set_id = s.id where s.session_id like ?', (like,)).fetchone()[0]
print(rows + reads)" "$mnt/audit.db" "$session" 2>/dev/null || echo 0; }
lines() { # FILE: the decisions its lines hold, counted as events() counts them
    [ -f "$1" ] || { echo 0; return; }
    python3 -c "
import json,sys
total = 0
for line in open(sys.argv[1], encoding='utf-8', errors='replace'):
    try: record = json.loads(line)
    except ValueError: continue
    if record.get('type') == 'event': total += 1
    elif record.get('type') == 'read_set': total += sum(entry.get('count', 0) for entry in record.get('entries', []))
print(total)" "$1"
}
in_db=$(events)
in_fallback=$(lines "$mnt/audit.db.fallback.jsonl")
# The spill file (AuditDatabaseFiles.spill), for what both refused at the end.
spill=$(python3 -c "import hashlib,os,sys; d=os.environ.get('XDG_RUNTIME_DIR'); print((d + '/agentgate' if d and d.startswith('/') else '/run/agentgate-spill') + '/spill-' + hashlib.sha256(sys.argv[1].encode()).hexdigest()[:16] + '.jsonl')" "$mnt/audit.db")
in_spill=$(lines "$spill")
echo "supervisor said: $(grep -v '^agentgate-supervise: policy ' "$dir/supervisor.err" | sed 's/^/  /' | tr '\n' ' ' | cut -c1-1200)"
if [ "$kind" != full ]; then
    # The disk is repaired: checked, and mounted again.
    umount "$mnt" && e2fsck -fy "$mnt.img" >/dev/null 2>&1; mount -o loop "$mnt.img" "$mnt" || echo "can't mount the image again"
    repaired=$(events)
    echo "after the repair: $repaired events of the session in the database; $(( in_db - repaired )) committed ones the disk error dropped before they reached the disk"
fi
if [ "$in_fallback" -gt 0 ] || [ "$in_spill" -gt 0 ]; then
    # What the next start does first: import the fallback file (and the spill file).
    echo "next start: $("$bin/agentgate-supervise" -q --db "$mnt/audit.db" -- /bin/true 2>&1 | head -2 | tr '\n' ' ')"
fi
after=$(events)
echo "decided=${decided:-?} in_db_at_end=$in_db in_fallback_at_end=$in_fallback in_spill_at_end=$in_spill in_db_after_next_start=$after lost=$(( ${decided:-0} - in_db - in_fallback - in_spill ))"
[ "$after" = "$(( ${repaired:-$in_db} + in_fallback + in_spill ))" ] && echo "import: every fallback and spill record is in the database"
"$bin/agentgate" audit verify --db "$mnt/audit.db" >"$dir/verify.out" 2>&1 && echo "verify: passed" || echo "verify: FAILED $(tail -3 "$dir/verify.out")"
[ "$kind" = full ] || umount "$mnt"
INNER
    unshare -m --propagation private bash "$WORK/dbfault.sh" "$kind" "$BIN" "$dir" "$WORK/dbfault-$kind-mnt" "$WORK/load" >"$out" 2>&1
    local status=$?
    if [ $status = 77 ] || ! grep -q "^decided=" "$out"; then
        echo "$kind: skipped: $(head -3 "$out")"
        return
    fi
    sed 's/^/  /' "$out"
    grep -q "agent exit 0: .*open_failures=0 .*exec_failures=0 .*connect_failures=0 .*fork_failures=0" "$out" || fail "$kind: allowed calls failed"
    grep -q " lost=0$" "$out" || fail "$kind: records were lost"
    grep -q "^decided=[1-9]" "$out" || fail "$kind: no decisions counted"
    grep -q "^import: every fallback and spill record is in the database" "$out" || fail "$kind: the import missed records"
    if grep -q "^after the repair: .*; [1-9][0-9]* committed ones the disk error dropped" "$out"; then
        # The disk lost writes SQLite had committed: verify must see the gap.
        grep -q "^verify: FAILED" "$out" && echo "  verify reports the gap the disk error left, as it must" || fail "$kind: verify missed the disk's gap"
    else
        grep -qE "^decided=([0-9]+) .*in_db_after_next_start=\1 " "$out" || fail "$kind: the database doesn't hold every decision after the import"
        grep -q "^verify: passed" "$out" || fail "$kind: audit verify"
    fi
}

if { [ -z "$ONLY" ] || [ "$ONLY" = faults ] || [ "$ONLY" = dbfaults ]; } && [ "${SOAK_FAULTS:-1}" = 1 ]; then
    echo "== database faults under load (4 threads, 24 s; fault from 4 s to 12 s)"
    if [ "$(id -u)" != 0 ] || ! unshare -m true 2>/dev/null; then
        echo "skipped: needs root for a private mount namespace and a tmpfs"
    else
        for kind in full readonly; do echo "-- $kind"; db_fault "$kind"; done
    fi
fi

[ $failed = 0 ] && echo "soak: passed" || { echo "soak: failed"; exit 1; }
