#!/usr/bin/env bash
# Boots systemd as PID 1 in a Debian root of its own and checks, against that real systemd:
# `agentgate-supervise --unit` in a scope and in a service (the unit, its properties, the session
# row's unit, cgroup and invocation id, the audit, `agentgate kill` through cgroup.kill, and the
# errors), the same as an unprivileged user with a user manager, and the units of
# packaging/systemd/.
#
#   scripts/systemd-test.sh BUILD_DIR        (e.g. .build/debug)
#
# Exit 0: passed; 77: can't run here (the reason on stderr); anything else: failed.
#
# The host is never touched: systemd runs in new pid, mount, uts, ipc, net and cgroup
# namespaces, pivoted into the root (scripts/systemd-boot.sh), with its own /tmp and /run and a
# read-only /proc/sys. Whatever happens, the container's init is killed (which ends every process
# in it), its cgroup removed and the root deleted.
set -euo pipefail

bin=$(cd "${1:?usage: systemd-test.sh BUILD_DIR}" && pwd)
repo=$(cd "$(dirname "$0")/.." && pwd)
skip() { echo "systemd-test: skipped: $*" >&2; exit 77; }
fail() {
    echo "systemd-test: FAILED: $*" >&2
    # The container's journal says why, while it is still there.
    if [ -n "${init_pid:-}" ] && kill -0 "$init_pid" 2>/dev/null; then
        echo "systemd-test: the container's journal, last lines:" >&2
        inside journalctl --no-pager -n 40 2>&1 | sed 's/^/  /' >&2
    fi
    exit 1
}
note() { echo "systemd-test: $*" >&2; }

[ "$(id -u)" = 0 ] || skip "needs root (namespaces, a chroot, a delegated cgroup)"
for tool in unshare nsenter pivot_root; do command -v $tool >/dev/null || skip "$tool is not installed"; done
[ -x "$bin/agentgate" ] && [ -x "$bin/agentgate-supervise" ] || fail "no agentgate binaries in $bin"
cgroup_root=$(awk '{ for (i = 1; i <= NF; i++) if ($i == "-") { if ($(i+1) == "cgroup2") { print $5; exit } } }' /proc/self/mountinfo)
[ -n "$cgroup_root" ] || skip "no cgroup2 hierarchy mounted"

# What an earlier run killed outright (SIGKILL: no trap) left: its container's init (known by its
# command and its cgroup, so that a reused pid is left alone), its cgroup and its root.
for stale in /var/tmp/agentgate-systemd-test.*; do
    [ -d "$stale" ] || continue
    owner=$(cat "$stale/script.pid" 2>/dev/null || true)
    [ -n "$owner" ] && kill -0 "$owner" 2>/dev/null && continue
    stale_init=$(cat "$stale/init.pid" 2>/dev/null || true)
    if [ -n "$stale_init" ] && tr '\0' ' ' <"/proc/$stale_init/cmdline" 2>/dev/null | grep -q '^/lib/systemd/systemd ' &&
        grep -q "/agentgate-systemd-test\." "/proc/$stale_init/cgroup" 2>/dev/null; then
        kill -KILL "$stale_init"
        sleep 0.5
    fi
    stale_cgroup=$(cat "$stale/cgroup.path" 2>/dev/null || true)
    case $stale_cgroup in */agentgate-systemd-test.*) [ -d "$stale_cgroup" ] && find "$stale_cgroup" -depth -type d -exec rmdir {} + 2>/dev/null ;; esac
    grep -q " $stale/" /proc/self/mountinfo || rm -rf "$stale"
done

work=$(mktemp -d /var/tmp/agentgate-systemd-test.XXXXXX)
echo $$ >"$work/script.pid"
root=$work/root
own_cgroup=$(awk -F: '$1 == "0" { print $3 }' /proc/self/cgroup)
container_cgroup="$cgroup_root${own_cgroup%/}/agentgate-systemd-test.$$"
echo "$container_cgroup" >"$work/cgroup.path"
init_pid=""
unshare_pid=""

cleanup() {
    local status=$?
    set +e
    if [ -n "$init_pid" ]; then kill -KILL "$init_pid" 2>/dev/null; fi
    if [ -n "$unshare_pid" ]; then kill -KILL "$unshare_pid" 2>/dev/null; wait "$unshare_pid" 2>/dev/null; fi
    # The pid namespace is gone with its init; its cgroups empty out a moment later.
    if [ -d "$container_cgroup" ]; then
        for _ in $(seq 50); do
            find "$container_cgroup" -depth -type d -exec rmdir {} + 2>/dev/null
            [ -d "$container_cgroup" ] || break
            sleep 0.1
        done
        [ -d "$container_cgroup" ] && echo "systemd-test: could not remove $container_cgroup" >&2
    fi
    # Every mount was in the container's mount namespace; refuse to delete through a leftover.
    if grep -q " $work/" /proc/self/mountinfo; then
        echo "systemd-test: mounts remain under $work; not removing it" >&2
    else
        rm -rf "$work"
    fi
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- The root ------------------------------------------------------------------------------
set +e
"$repo/scripts/debian-root.sh" "$root" 2>"$work/debian-root.err"
status=$?
set -e
[ $status = 77 ] && skip "$(cat "$work/debian-root.err")"
[ $status = 0 ] || fail "debian-root.sh exited $status: $(cat "$work/debian-root.err")"

install -m 755 "$bin/agentgate" "$bin/agentgate-supervise" "$root/usr/bin/"
# What the binaries link beyond the root's packages (systemd already brings libseccomp and
# libcap): the host is the same Debian release, so its libraries fit.
for library in $(ldd "$bin/agentgate-supervise" | awk '$3 ~ /^\// { print $3 }'); do
    case $library in /opt/swift/*) continue ;; esac
    [ -e "$root$library" ] || [ -e "$root/usr$library" ] || cp -L "$library" "$root/usr/lib/x86_64-linux-gnu/"
done
# Units that would act on the host's kernel or hardware: masked (their targets are read-only
# anyway), and the ones a container doesn't need, to boot faster.
for unit in systemd-sysctl.service systemd-binfmt.service proc-sys-fs-binfmt_misc.automount \
    systemd-modules-load.service kmod-static-nodes.service systemd-udevd.service systemd-udev-trigger.service \
    systemd-timesyncd.service systemd-networkd.service systemd-resolved.service systemd-firstboot.service \
    systemd-hwdb-update.service systemd-random-seed.service systemd-pstore.service systemd-remount-fs.service \
    getty@tty1.service console-getty.service serial-getty@.service apt-daily.timer apt-daily-upgrade.timer \
    dpkg-db-backup.timer e2scrub_all.timer fstrim.timer systemd-journald-audit.socket; do
    ln -sf /dev/null "$root/etc/systemd/system/$unit"
done
echo agentgate-test >"$root/etc/hostname"
# A user manager needs XDG_RUNTIME_DIR, which pam_systemd (libpam-systemd, not in the root) sets
# at login; for a lingering user's manager, the unit can set it.
mkdir -p "$root/etc/systemd/system/user@.service.d"
printf '[Service]\nEnvironment=XDG_RUNTIME_DIR=/run/user/%%i\n' >"$root/etc/systemd/system/user@.service.d/runtime-dir.conf"
# A user bus, as dbus-user-session (not in the root) would start it: systemd-run --user --wait
# talks to the user manager through it.
mkdir -p "$root/etc/systemd/user/sockets.target.wants"
printf '[Unit]\nDescription=D-Bus User Message Bus Socket\n[Socket]\nListenStream=%%t/bus\n' >"$root/etc/systemd/user/dbus.socket"
printf '[Unit]\nDescription=D-Bus User Message Bus\nRequires=dbus.socket\n[Service]\nExecStart=/usr/bin/dbus-daemon --session --address=systemd: --nofork --nopidfile --systemd-activation --syslog-only\n' \
    >"$root/etc/systemd/user/dbus.service"
ln -s ../dbus.socket "$root/etc/systemd/user/sockets.target.wants/dbus.socket"
chroot "$root" useradd --create-home --uid 1000 --shell /bin/bash tester
mkdir -p "$root/etc/agentgate-test" "$root/var/lib/agentgate-test" "$root/etc/agentgate/sessions"
echo "not for agents" >"$root/etc/agentgate-test/secret"
# Denies the secret only to a process in a unit's cgroup: the `when: cgroup` rule a unit makes useful.
cat >"$root/etc/agentgate-test/policy.yaml" <<'EOF'
version: 2
mode: enforce
default: {exec: allow, fs_read: allow, fs_write: allow, net_egress: deny}
rules:
  - id: secret-in-units
    match: {action: fs_read, target_glob: /etc/agentgate-test/secret}
    when: {cgroup: "/system.slice/ag-*/**"}
    decision: deny
    reason: no secrets for agents in a unit
  - id: secret-in-sessions
    match: {action: fs_read, target_glob: /etc/agentgate-test/secret}
    when: {cgroup: "/agentgate.slice/**"}
    decision: deny
    reason: no secrets for agent sessions
EOF
cp "$root/etc/agentgate-test/policy.yaml" "$root/etc/agentgate/policy.yaml"
# The packaged session's policy also asks a person before one write.
cat >>"$root/etc/agentgate/policy.yaml" <<'EOF'
  - id: needs-approval
    match: {action: fs_write, target_glob: /home/tester/needs-approval}
    decision: ask
    reason: a person approves this write
EOF
# The packaged units, as a package installs them.
cp "$repo"/packaging/systemd/*.service "$repo"/packaging/systemd/*.timer "$repo"/packaging/systemd/*.slice "$root/etc/systemd/system/"

# --- Boot ----------------------------------------------------------------------------------
mkdir "$container_cgroup"
(
    echo $BASHPID >"$container_cgroup/cgroup.procs"
    exec unshare --mount --pid --fork --uts --ipc --net --cgroup --propagation private --kill-child=SIGKILL \
        "$repo/scripts/systemd-boot.sh" "$root"
) </dev/null >"$work/boot.log" 2>&1 &
unshare_pid=$!
for _ in $(seq 100); do
    init_pid=$(cat "/proc/$unshare_pid/task/$unshare_pid/children" 2>/dev/null | awk '{ print $1 }')
    [ -n "$init_pid" ] && break
    sleep 0.05
done
[ -n "$init_pid" ] || fail "the container did not start: $(tail -5 "$work/boot.log")"
echo "$init_pid" >"$work/init.pid"

# A command in the container, as root, with a clean environment. It is not in the container's
# cgroup tree: what must run in a unit goes through `in_unit`.
inside() {
    nsenter --target "$init_pid" --mount --uts --ipc --net --pid --cgroup --root --wd \
        env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME=/root LANG=C.UTF-8 "$@"
}
state=""
for _ in $(seq 300); do
    state=$(inside systemctl is-system-running 2>/dev/null || true)
    case $state in running|degraded) break ;; esac
    kill -0 "$init_pid" 2>/dev/null || fail "systemd exited: $(tail -20 "$work/boot.log")"
    sleep 0.1
done
case $state in running|degraded) ;; *) fail "systemd did not finish booting (state: $state): $(tail -20 "$work/boot.log")" ;; esac
[ "$state" = running ] || note "booted, degraded: $(inside systemctl --failed --no-legend --plain | tr '\n' ';')"
note "systemd $(inside systemctl --version | head -1 | awk '{ print $2 }') booted as PID 1 (host pid $init_pid), state $state"

# For debugging: AGENTGATE_SYSTEMD_TEST_HOLD=SECONDS keeps the booted container that long
# (enter it with nsenter --target PID --all --root --wd) and then cleans up.
if [ -n "${AGENTGATE_SYSTEMD_TEST_HOLD:-}" ]; then
    note "holding the container for ${AGENTGATE_SYSTEMD_TEST_HOLD}s: nsenter --target $init_pid --mount --uts --ipc --net --pid --cgroup --root --wd"
    sleep "$AGENTGATE_SYSTEMD_TEST_HOLD"
    exit 0
fi

# A background job started by the container's systemd (so it runs inside its cgroup tree, where
# systemd-run --scope can move it), output and status in /run/agentgate-test/NAME.{out,status}.
inside mkdir -p -m 1777 /run/agentgate-test
job() { # NAME [systemd-run options] -- COMMAND...
    local name=$1 options=()
    shift
    while [ "$1" != -- ]; do options+=("$1"); shift; done
    shift
    inside systemd-run --quiet --collect --unit "job-$name" --service-type=exec "${options[@]}" \
        /bin/bash -c 'cd /; "$@" >/run/agentgate-test/'"$name"'.out 2>&1 </dev/null; echo $? >/run/agentgate-test/'"$name"'.status' job "$@"
}
# The job's exit status, once it has ended (fails after 30 s).
job_status() {
    for _ in $(seq 300); do
        if inside test -s "/run/agentgate-test/$1.status"; then inside cat "/run/agentgate-test/$1.status"; return; fi
        sleep 0.1
    done
    fail "job $1 did not end: $(inside cat "/run/agentgate-test/$1.out" 2>&1)"
}
job_output() { inside cat "/run/agentgate-test/$1.out"; }
wait_for() { # DESCRIPTION COMMAND...: until COMMAND succeeds in the container (30 s)
    local what=$1; shift
    for _ in $(seq 300); do inside "$@" >/dev/null 2>&1 && return; sleep 0.1; done
    fail "timed out waiting for $what"
}
show() { inside systemctl show -p "$2" --value "$1"; }
db=/var/lib/agentgate-test/audit.db
policy=/etc/agentgate-test/policy.yaml
session_field() { # SESSION KEY (in the session's JSON)
    inside agentgate sessions --db "$db" --json | python3 -c '
import json, sys
for s in json.load(sys.stdin):
    if s["id"] == sys.argv[1]:
        value = s
        for key in sys.argv[2].split("."):
            value = value.get(key, "") if isinstance(value, dict) else ""
        print(value)' "$1" "$2"
}

# Checks a unit started by agentgate-supervise --unit while its agent runs: the properties,
# the session row, the agent's cgroup and the `when: cgroup` rule; then kills the session.
check_running_unit() { # SESSION UNIT KIND
    local session=$1 unit=$2 kind=$3
    wait_for "$unit to run the agent" test -s "/run/agentgate-test/$session.cgroup"
    [ "$(show "$unit" ActiveState)" = active ] || fail "$unit is not active: $(show "$unit" ActiveState)"
    [ "$(show "$unit" TasksMax)" = 77 ] || fail "$unit: TasksMax is $(show "$unit" TasksMax), not 77"
    [ "$(show "$unit" MemoryMax)" = 314572800 ] || fail "$unit: MemoryMax is $(show "$unit" MemoryMax), not 300M"
    [ "$(show "$unit" Delegate)" = yes ] || fail "$unit is not delegated"
    local control_group invocation
    control_group=$(show "$unit" ControlGroup)
    invocation=$(show "$unit" InvocationID)
    [ "$(session_field "$session" unit.name)" = "$unit" ] || fail "session $session: unit is '$(session_field "$session" unit.name)', not $unit"
    [ "$(session_field "$session" unit.cgroup)" = "$control_group" ] ||
        fail "session $session: cgroup '$(session_field "$session" unit.cgroup)', systemd says $control_group"
    [ "$(session_field "$session" unit.invocation_id)" = "$invocation" ] ||
        fail "session $session: invocation id '$(session_field "$session" unit.invocation_id)', systemd says $invocation"
    inside agentgate show --db "$db" "$session" | grep -q "^Unit *$unit (cgroup $control_group, invocation $invocation)" ||
        fail "agentgate show has no Unit line for $unit: $(inside agentgate show --db "$db" "$session" | head -20)"
    # The agent runs in the session's own cgroup below the unit's (Delegate=yes).
    local agent_cgroup
    agent_cgroup=$(inside cat "/run/agentgate-test/$session.cgroup")
    case $agent_cgroup in "0::$control_group/agentgate-"*) ;; *) fail "the agent's cgroup is $agent_cgroup, not below $control_group" ;; esac
    inside grep -q "^denied$" "/run/agentgate-test/$session.secret" || fail "the secret was readable in $unit"
    # agentgate kill ends the whole tree through the session cgroup's cgroup.kill.
    local members
    members=$(inside cat "/sys/fs/cgroup${agent_cgroup#0::}/cgroup.procs" | wc -l)
    [ "$members" -ge 2 ] || fail "expected the agent's tree (sh, sleep) in its cgroup, found $members"
    inside agentgate kill "$session" >/dev/null || fail "agentgate kill $session failed"
    local status
    status=$(job_status "$session")
    [ "$status" = 137 ] || fail "$session: expected exit 137 after agentgate kill, got $status: $(job_output "$session")"
    inside test ! -e "/sys/fs/cgroup${agent_cgroup#0::}" || [ -z "$(inside cat "/sys/fs/cgroup${agent_cgroup#0::}/cgroup.procs")" ] ||
        fail "processes survived agentgate kill in ${agent_cgroup#0::}"
    wait_for "$unit to go away" sh -c "! systemctl is-active --quiet $unit"
    [ "$(session_field "$session" exit_status)" = 137 ] || fail "$session: exit status $(session_field "$session" exit_status) recorded"
    inside agentgate audit --db "$db" --session "$session" | grep -q "agentgate kill" || fail "the kill is not in the audit of $session"
    # (The writer batches: the session's events are all in once it has ended.)
    inside agentgate audit --db "$db" --session "$session" --decision deny --json | grep -Eq '"rule_id" ?: ?"secret-in-units"' ||
        fail "no audited denial by secret-in-units in $session: $(inside agentgate audit --db "$db" --session "$session" --decision deny | tail -5)"
    note "ok: $kind $unit: TasksMax/MemoryMax set, session row = systemctl show (cgroup $control_group, invocation $invocation), agent in ${agent_cgroup#0::}, secret denied by when: cgroup, agentgate kill ended $members processes (exit 137)"
}

agent_script='grep ^0:: /proc/self/cgroup >/run/agentgate-test/$0.cgroup; cat /etc/agentgate-test/secret 2>/dev/null >/dev/null && echo allowed >/run/agentgate-test/$0.secret || echo denied >/run/agentgate-test/$0.secret; sleep 300 & sleep 301; wait'
supervise=(agentgate-supervise --db "$db" --policy "$policy")
limits=(--property MemoryMax=300M --property TasksMax=77)

# --- Scope and service, system manager -----------------------------------------------------
job scope1 -- "${supervise[@]}" --session scope1 --unit ag-scope1 "${limits[@]}" -- /bin/sh -c "$agent_script" scope1
check_running_unit scope1 ag-scope1.scope scope
job service1 -- "${supervise[@]}" --session service1 --unit ag-service1 --service "${limits[@]}" -- /bin/sh -c "$agent_script" service1
check_running_unit service1 ag-service1.service service

# A service's stdout, stderr and exit status reach the caller.
# ... and the caller's environment and working directory reach the agent.
job service2 --setenv=MARK=from-the-caller -- /bin/sh -c 'cd /etc && exec "$@"' sh \
    "${supervise[@]}" --quiet --session service2 --unit ag-service2 --service -- \
    /bin/sh -c 'echo to-stdout; echo to-stderr >&2; echo "mark=$MARK unit=$AGENTGATE_UNIT"; pwd; exit 7'
[ "$(job_status service2)" = 7 ] || fail "service2: exit $(job_status service2), expected 7: $(job_output service2)"
for expected in to-stdout to-stderr "mark=from-the-caller unit=ag-service2.service" "^/etc\$"; do
    job_output service2 | grep -q "$expected" || fail "service2: no '$expected' in what reached the caller: $(job_output service2)"
done
note "ok: a service's stdout, stderr and exit status (7) reach the caller; the caller's environment and directory reach the agent"

# SIGTERM to the agentgate-supervise that was started reaches the agent, as without --unit.
job term1 -- /bin/sh -c '"$@" & echo $! >/run/agentgate-test/term1.pid; wait $!' sh \
    "${supervise[@]}" --quiet --session term1 --unit ag-term1 -- /bin/sh -c 'touch /run/agentgate-test/term1.started; exec sleep 300'
wait_for "term1's agent" test -e /run/agentgate-test/term1.started
inside sh -c 'kill -TERM "$(cat /run/agentgate-test/term1.pid)"'
[ "$(job_status term1)" = 143 ] || fail "term1: exit $(job_status term1) after SIGTERM, expected 143: $(job_output term1)"
wait_for "ag-term1.scope to go away" sh -c "! systemctl is-active --quiet ag-term1.scope"
note "ok: SIGTERM to agentgate-supervise --unit reaches the agent in the scope (exit 143)"

# In a scope the supervisor keeps the caller's terminal: an ask is answered at its prompt. The
# key is typed every second: those before the prompt appears are discarded, as they should be.
cat >"$root/etc/agentgate-test/ask.yaml" <<'EOF'
version: 2
default: {exec: allow, fs_read: allow, fs_write: allow, net_egress: deny}
rules:
  - id: ask-at-the-terminal
    match: {action: fs_write, target_glob: /run/agentgate-test/asked}
    decision: ask
EOF
cat >"$root/usr/local/bin/answer-at-terminal" <<'EOF'
#!/bin/bash
(for _ in $(seq 30); do sleep 1; [ -e /run/agentgate-test/asked ] && break; printf a; done) | script -qec "agentgate-supervise --quiet --db /var/lib/agentgate-test/audit.db \
    --policy /etc/agentgate-test/ask.yaml --session tty1 --unit ag-tty1 -- /bin/sh -c 'echo hi >/run/agentgate-test/asked'" /dev/null
EOF
chmod 755 "$root/usr/local/bin/answer-at-terminal"
job tty1 --setenv=TERM=xterm -- /usr/local/bin/answer-at-terminal
[ "$(job_status tty1)" = 0 ] && inside grep -q hi /run/agentgate-test/asked || fail "the ask at the terminal of a scope: $(job_output tty1 | tail -c 600)"
inside agentgate audit --db "$db" --session tty1 --json | grep -Eq '"answered_via" ?: ?"tty"' || fail "the ask of tty1 was not answered at the terminal"
note "ok: in a scope, an ask is answered at the terminal's prompt"

# --- Errors: each one line, status 2, the agent never runs ---------------------------------
expect_refusal() { # NAME PATTERN ARGS...: exit 2, PATTERN in the output, the agent didn't run
    local name=$1 pattern=$2; shift 2
    job "$name" -- "${supervise[@]}" "$@" -- /bin/sh -c "touch /run/agentgate-test/$name.ran"
    local status
    status=$(job_status "$name")
    [ "$status" = 2 ] || fail "$name: exit $status, expected 2: $(job_output "$name")"
    job_output "$name" | grep -q -- "$pattern" || fail "$name: no '$pattern' in: $(job_output "$name")"
    inside test ! -e "/run/agentgate-test/$name.ran" || fail "$name: the agent ran"
    note "ok: $name refused (exit 2): $(job_output "$name" | tr '\n' ' ')"
}
expect_refusal bad-property "could not start ag-bad.scope" --unit ag-bad --property NoSuchProperty=1
expect_refusal bad-value "could not start ag-bad2.service" --unit ag-bad2 --service --property MemoryMax=lots
inside systemd-run --quiet --unit ag-busy --collect /bin/sleep 300
expect_refusal name-in-use "could not start ag-busy.service" --unit ag-busy --service
inside systemctl stop ag-busy.service
expect_refusal no-user-manager "no user manager reachable" --unit ag-nouser --user
# Inside a unit already: the agent of a --unit session tries to start another.
job nested -- "${supervise[@]}" --session nested --unit ag-nested -- \
    agentgate-supervise --db /var/lib/agentgate-test/nested.db --unit ag-inner -- /bin/true
[ "$(job_status nested)" = 2 ] && job_output nested | grep -q "already running in unit ag-nested.scope" ||
    fail "nested --unit: $(job_status nested): $(job_output nested)"
note "ok: --unit inside a --unit session refused: $(job_output nested | grep already | head -1)"

# --- An unprivileged user's manager --------------------------------------------------------
as_tester() { inside runuser -u tester -- env XDG_RUNTIME_DIR=/run/user/1000 HOME=/home/tester "$@"; }
if inside loginctl enable-linger tester 2>"$work/linger.err"; then
    user_ready=""
    for _ in $(seq 200); do
        if [ "$(show user@1000.service ActiveState)" = active ] && inside test -S /run/user/1000/systemd/private; then user_ready=1; break; fi
        sleep 0.1
    done
    if [ -n "$user_ready" ]; then
        job user1 --uid=tester --setenv=XDG_RUNTIME_DIR=/run/user/1000 --setenv=HOME=/home/tester -- \
            agentgate-supervise --policy "$policy" --session user1 --unit ag-user1 --property TasksMax=55 -- \
            /bin/sh -c 'grep ^0:: /proc/self/cgroup >/tmp/user1.cgroup; sleep 300'
        wait_for "the user's scope" test -s /tmp/user1.cgroup
        user_unit_state=$(as_tester systemctl --user show -p ActiveState --value ag-user1.scope)
        user_tasks=$(as_tester systemctl --user show -p TasksMax --value ag-user1.scope)
        user_cgroup=$(as_tester systemctl --user show -p ControlGroup --value ag-user1.scope)
        [ "$user_unit_state" = active ] && [ "$user_tasks" = 55 ] || fail "the user's scope: state $user_unit_state, TasksMax $user_tasks"
        agent_cgroup=$(inside cat /tmp/user1.cgroup)
        case $agent_cgroup in "0::$user_cgroup/agentgate-"*) ;; *) fail "the user's agent is in $agent_cgroup, not below $user_cgroup" ;; esac
        recorded=$(as_tester agentgate sessions --json | python3 -c 'import json,sys; s=[x for x in json.load(sys.stdin) if x["id"]=="user1"][0]; print(s["unit"]["name"], s["unit"]["cgroup"])')
        [ "$recorded" = "ag-user1.scope $user_cgroup" ] || fail "the user's session row: $recorded"
        as_tester agentgate kill user1 >/dev/null || fail "agentgate kill user1 as tester"
        [ "$(job_status user1)" = 137 ] || fail "user1: exit $(job_status user1) after kill: $(job_output user1)"
        note "ok: user manager: scope $user_cgroup with TasksMax 55, agent in ${agent_cgroup#0::}, recorded in tester's database, killed"
        if inside test -S /run/user/1000/bus; then
            job user2 --uid=tester --setenv=XDG_RUNTIME_DIR=/run/user/1000 --setenv=HOME=/home/tester -- \
                agentgate-supervise --quiet --policy "$policy" --session user2 --unit ag-user2 --service --property TasksMax=44 -- \
                /bin/sh -c 'echo user-service-out; grep ^0:: /proc/self/cgroup; exit 5'
            [ "$(job_status user2)" = 5 ] || fail "user2: exit $(job_status user2), expected 5: $(job_output user2)"
            job_output user2 | grep -q user-service-out || fail "user2's output did not reach the caller: $(job_output user2)"
            job_output user2 | grep -q "^0::/user.slice/user-1000.slice/user@1000.service/app.slice/ag-user2.service/agentgate-" ||
                fail "user2's agent was not in its session cgroup in the user's service: $(job_output user2)"
            recorded=$(as_tester agentgate sessions --json | python3 -c 'import json,sys; s=[x for x in json.load(sys.stdin) if x["id"]=="user2"][0]; print(s["unit"]["name"], s["exit_status"])')
            [ "$recorded" = "ag-user2.service 5" ] || fail "the user's service session row: $recorded"
            note "ok: user manager: a service, its output and exit status (5) back to the caller, recorded in tester's database"
        else
            note "skipped --user --service: no user bus at /run/user/1000/bus"
        fi
    else
        note "skipped the user-manager case: user@1000.service did not come up ($(show user@1000.service ActiveState))"
    fi
else
    note "skipped the user-manager case: loginctl enable-linger failed: $(cat "$work/linger.err")"
fi

# --- The packaged units --------------------------------------------------------------------
cat >"$root/usr/local/bin/nightly-agent" <<'EOF'
#!/bin/sh
grep ^0:: /proc/self/cgroup >"$HOME/nightly.cgroup"
id -un >"$HOME/nightly.user"
cat /etc/agentgate-test/secret >/dev/null 2>&1 && echo allowed >"$HOME/nightly.secret" || echo denied >"$HOME/nightly.secret"
(echo written >"$HOME/needs-approval") 2>/dev/null && echo approved >"$HOME/nightly.approval" || echo refused >"$HOME/nightly.approval"
exec sleep 300
EOF
chmod 755 "$root/usr/local/bin/nightly-agent"
cat >"$root/etc/agentgate/sessions/nightly.env" <<'EOF'
AGENTGATE_USER=tester
AGENTGATE_POLICY=/etc/agentgate/policy.yaml
AGENTGATE_COMMAND=/usr/local/bin/nightly-agent --nightly
EOF
inside systemctl daemon-reload
inside systemctl start agentgate-session@nightly.service || fail "agentgate-session@nightly did not start: $(inside journalctl -u agentgate-session@nightly --no-pager | tail -20)"
# The agent writes these one after the other: wait for the last one it writes before its ask.
wait_for "the nightly session's agent" test -s /home/tester/nightly.secret
unit=agentgate-session@nightly.service
[ "$(show $unit Slice)" = agentgate.slice ] || fail "$unit runs in $(show $unit Slice)"
[ "$(inside cat /home/tester/nightly.user)" = tester ] || fail "the nightly agent ran as $(inside cat /home/tester/nightly.user)"
session_cgroup=$(inside cat /home/tester/nightly.cgroup)
case $session_cgroup in "0::/agentgate.slice/$unit/agentgate-"*) ;;
    *) fail "the supervisor did not make its session cgroup under $unit: the agent is in $session_cgroup ($(inside journalctl -u $unit --no-pager | tail -5))" ;;
esac
inside grep -q denied /home/tester/nightly.secret || fail "the nightly agent read the secret"
# The ask waits for the user's `agentgate approvals` / `agentgate approve ID`, from outside.
ask_id=""
for _ in $(seq 300); do
    ask_id=$(inside runuser -u tester -- agentgate approvals --json | python3 -c 'import json,sys; print(next((json.loads(l)["id"] for l in sys.stdin if l.strip()), ""))')
    [ -n "$ask_id" ] && break
    sleep 0.1
done
[ -n "$ask_id" ] || fail "no pending ask of the nightly session in agentgate approvals"
inside runuser -u tester -- agentgate approve "$ask_id" >/dev/null || fail "agentgate approve $ask_id as tester"
wait_for "the approved write" grep -q approved /home/tester/nightly.approval
nightly=$(inside runuser -u tester -- agentgate sessions --json | python3 -c 'import json,sys; print([x for x in json.load(sys.stdin) if x["agent"]=="nightly"][-1]["id"])')
inside runuser -u tester -- agentgate kill "$nightly" >/dev/null || fail "agentgate kill of the nightly session, as tester"
wait_for "the nightly session to end" sh -c "! systemctl is-active --quiet $unit"
note "ok: agentgate-session@nightly ran nightly-agent as tester in agentgate.slice, its session cgroup ${session_cgroup#0::}, ask $ask_id approved with agentgate approve, killed by tester with agentgate kill"

inside systemctl start agentgate-clean.timer
[ "$(show agentgate-clean.timer ActiveState)" = active ] || fail "agentgate-clean.timer is not active"
inside mkdir -p /var/lib/agentgate
inside cp "$db" /var/lib/agentgate/agentgate.db
inside systemctl start agentgate-clean.service || fail "agentgate-clean.service failed: $(inside journalctl -u agentgate-clean --no-pager | tail -10)"
[ "$(show agentgate-clean.service Result)" = success ] || fail "agentgate-clean.service: $(show agentgate-clean.service Result)"
note "ok: agentgate-clean.timer active, agentgate-clean.service ran (Result=success)"
note "passed"
