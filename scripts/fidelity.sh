#!/usr/bin/env bash
# The differential fidelity suite: CPython's own regression tests for the modules that exercise
# trapped syscalls, run bare and then under agentgate-supervise with a policy that allows
# everything. Every test that passes bare and fails supervised is a difference from the kernel
# (the only difference the supervisor may make is a policy denial, and this policy denies
# nothing), and is reported. A failure is confirmed by running that test again, both ways,
# before it is reported, so a flaky test isn't taken for a regression.
#
#   scripts/fidelity.sh [BUILD_DIR] [MODULE...]     (make fidelity)
#
# Exit status 0 when there are no regressions. The report is also written to
# $FIDELITY_OUT (default: .build/fidelity/report.txt).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$(cd "${1:-$root/.build/debug}" && pwd); shift || true
python=/usr/bin/python3.11
modules=("$@")
if [ ${#modules[@]} -eq 0 ]; then
    modules=(test_os test_posix test_shutil test_tempfile test_pathlib test_glob test_tarfile test_zipfile
             test_fileio test_socket test_subprocess test_fcntl test_mmap test_stat test_compileall test_venv
             test_asyncio.test_unix_events test_pty test_signal)
fi
if [ ! -d /usr/lib/python3.11/test ] || [ ! -f /usr/lib/python3.11/test/test_os.py ]; then
    sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
    echo "fidelity: installing libpython3.11-testsuite (CPython's regression tests)"
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq libpython3.11-testsuite >/dev/null
fi
out=${FIDELITY_OUT:-$root/.build/fidelity/report.txt}
work=$(mktemp -d /tmp/agentgate-fidelity.XXXXXX)
[ -n "${FIDELITY_KEEP:-}" ] || trap 'rm -rf "$work"' EXIT
mkdir -p "$(dirname "$out")" "$work/run"
cat > "$work/allow-all.yaml" <<'YAML'
version: 2
default: allow
allow_unsupervised: [io_uring, open_by_handle_at, mount, namespaces, seccomp, kernel, raw_sockets, cgroups,
                     net_admin, host, fanotify, keyring, realtime, anonymous_exec]
YAML
supervise=("$bin/agentgate-supervise" -q --policy "$work/allow-all.yaml" --db "$work/audit.db" --)
# Tests that hang bare on some machines, and would take their whole module's results with them
# when the timeout ends it: AF_VSOCK servers wait for ever for a client where vsock exists but
# no peer answers (VMs).
ignored=(--ignore '*VSOCK*')
# One worker per core; every test module in its own process, as regrtest does with -j.
jobs=$(nproc)
run() { # run NAME [supervise...] :: regrtest arguments
    local name=$1; shift
    local prefix=()
    while [ "$1" != "::" ]; do prefix+=("$1"); shift; done; shift
    (cd "$work/run" && env -u PYTHONPATH TMPDIR="$work/run" "${prefix[@]}" "$python" -m test -j "$jobs" \
        --timeout 600 "${ignored[@]}" --junit-xml "$work/$name.xml" "$@" >"$work/$name.log" 2>&1)
}
summarize() { # junit xml → "test_id status" lines
    "$python" - "$1" <<'PY'
import sys, xml.etree.ElementTree as ET
for case in ET.parse(sys.argv[1]).iter("testcase"):
    name = ".".join(part for part in (case.get("classname"), case.get("name")) if part)
    status = "pass"
    for child in case:
        if child.tag in ("failure", "error"): status = "fail"; break
        if child.tag == "skipped": status = "skip"; break
    print(name, status)
PY
}
started=$(date +%s)
echo "== bare: ${modules[*]}"
run bare :: "${modules[@]}"
echo "== supervised (allow-everything policy)"
run supervised "${supervise[@]}" :: "${modules[@]}"
summarize "$work/bare.xml" | sort >"$work/bare.txt"
summarize "$work/supervised.xml" | sort >"$work/supervised.txt"
# Passed bare, didn't pass supervised (failed, errored, or never ran).
join -a1 -e missing -o 0,1.2,2.2 "$work/bare.txt" "$work/supervised.txt" \
    | awk '$2 == "pass" && $3 != "pass" && $3 != "skip" { print $1 }' >"$work/candidates.txt"
confirmed=()
if [ -s "$work/candidates.txt" ]; then
    echo "== $(wc -l <"$work/candidates.txt") candidate(s); running each again, both ways"
    while read -r test; do
        id=${test#test.}
        module=$(echo "$test" | cut -d. -f2)
        rm -f "$work/again-bare.xml" "$work/again-sup.xml"
        (cd "$work/run" && env -u PYTHONPATH "$python" -m test --junit-xml "$work/again-bare.xml" -m "${test##*.}" "$module" >/dev/null 2>&1)
        (cd "$work/run" && env -u PYTHONPATH "${supervise[@]}" "$python" -m test --junit-xml "$work/again-sup.xml" -m "${test##*.}" "$module" >/dev/null 2>&1)
        bare_again=$(summarize "$work/again-bare.xml" 2>/dev/null | grep -F "$test " | awk '{print $2}' | sort -u | head -1)
        sup_again=$(summarize "$work/again-sup.xml" 2>/dev/null | grep -F "$test " | awk '{print $2}' | sort -u | head -1)
        if [ "$bare_again" = pass ] && [ "$sup_again" != pass ] && [ "$sup_again" != skip ]; then confirmed+=("$test"); fi
    done <"$work/candidates.txt"
fi
{
    echo "AgentGate fidelity: CPython $($python -c 'import platform; print(platform.python_version())') regression tests, bare vs supervised"
    echo "date: $(date -u +%Y-%m-%dT%H:%MZ)  kernel: $(uname -r)  user: $(id -un)  time: $(( $(date +%s) - started )) s"
    echo "modules: ${modules[*]}"
    echo "tests: $(wc -l <"$work/bare.txt") bare ($(grep -c ' pass$' "$work/bare.txt") passed), $(wc -l <"$work/supervised.txt") supervised ($(grep -c ' pass$' "$work/supervised.txt") passed)"
    echo "regressions (pass bare, fail supervised, confirmed by a second run): ${#confirmed[@]}"
    for test in "${confirmed[@]}"; do echo "  $test"; done
    flaky=$(( $(wc -l <"$work/candidates.txt") - ${#confirmed[@]} ))
    if [ "$flaky" -gt 0 ]; then
        echo "not confirmed on a second run (flaky): $flaky"
        printf '%s\n' "${confirmed[@]}" | grep -vxFf - "$work/candidates.txt" | sed 's/^/  /'
    fi
} | tee "$out"
if [ ${#confirmed[@]} -gt 0 ]; then
    cp "$work/supervised.log" "$(dirname "$out")/supervised.log"
    echo "fidelity: the supervised run's log is in $(dirname "$out")/supervised.log"
    exit 1
fi
