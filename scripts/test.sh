#!/usr/bin/env bash
# Every test (`make test`): the Swift test suites as root, the supervisor suites again as an
# unprivileged user, the dashboard in headless Chromium, the Debian package installed on a clean
# root, and each fuzz target briefly.
#
# The passes run side by side, in three processes: each process runs its tests two at a time
# (a thread per core), and most supervisor tests spend their time waiting on a child, so one
# process alone keeps the machine about half busy. The adversarial suite, whose tests run one at
# a time, is a process of its own: sharing one with the rest, it waited for a thread behind them
# and took as long as all the rest together. Each phase prints when it started.
set -euo pipefail
cd "$(dirname "$0")/.."
swift=${SWIFT:-swift}
jobs=${JOBS:-$(nproc)}
started=$SECONDS
phase() { echo "== test.sh [$(( SECONDS - started )) s] $*"; }

phase "building the test suites"
"$swift" build --build-tests -j "$jobs"
scripts/build-hook.sh .build/debug

# Passes started in the background: each in a process group of its own (setsid), stopped when
# this script fails or is interrupted, its output in a log (kept in .build/test-logs) printed
# when it has ended.
background_pids=() background_logs=() background_names=()
logs=.build/test-logs
rm -rf "$logs" && mkdir -p "$logs"
trap 'for pid in "${background_pids[@]}"; do kill -- -"$pid" 2>/dev/null || true; done' EXIT
alongside() {
    local name=$1; shift
    background_names+=("$name")
    background_logs+=("$logs/${#background_pids[@]}.log")
    setsid -w "$@" >"${background_logs[-1]}" 2>&1 &
    background_pids+=($!)
}

phase "swift test; alongside, the adversarial suite and the supervisor suites as an unprivileged user (printed after)"
alongside "the adversarial suite" .build/debug/AgentGatePackageTests.xctest --testing-library swift-testing \
    --filter 'AgentGateSupervisorTests\.AdversarialTests'
alongside "the supervisor suites as an unprivileged user" scripts/test-unprivileged.sh .build/debug
failed=()
"$swift" test --skip-build --skip 'AgentGateSupervisorTests\.AdversarialTests' 2>&1 | tee "$logs/swift-test.log" \
    || failed+=("swift test")
for i in "${!background_pids[@]}"; do
    status=0
    wait "${background_pids[$i]}" || status=$?
    phase "${background_names[$i]} (ran alongside)"
    cat "${background_logs[$i]}"
    [ "$status" = 0 ] || failed+=("${background_names[$i]}")
done
background_pids=()
if [ "${#failed[@]}" != 0 ]; then
    # The failed tests' issues again, last: a CI page that shows only the end of the output
    # still says what failed and why (each issue with the lines of its message).
    phase "the issues the failed tests recorded"
    sed 's/\x1b\[[0-9;]*m//g' "$logs/swift-test.log" "${background_logs[@]}" | awk '
        /recorded an issue/ { keep = 1; lines = 0; print; next }
        keep && /^(±|↳)/ && lines < 200 { lines++; print; next }
        { keep = 0 }' | head -c 60000
    printf 'test.sh: failed: %s\n' "${failed[@]}" >&2
    exit 1
fi

phase "the dashboard in headless Chromium"
DASHBOARD_SCREENSHOT="${TMPDIR:-/tmp}/agentgate-dashboard-test.png" scripts/dashboard-test.sh .build/debug || [ $? = 77 ]

# The package's static binary, built from this build's objects (only the executable's own
# module is compiled again).
package_dir=.build-deb/debug-package
phase "building the package (its binary from .build's objects)"
AGENTGATE_DEB_CONFIGURATION=debug AGENTGATE_DEB_SCRATCH=.build JOBS="$jobs" SWIFT="$swift" \
    scripts/build-deb.sh "$package_dir"
phase "installing the package on a clean Debian root"
scripts/deb-install-test.sh "$package_dir"/agentgate_*_amd64.deb || [ $? = 77 ]

phase "each fuzz target briefly"
FUZZ_BUILD_PATH=.build FUZZ_SECONDS=4 FUZZ_FRESH=1 FUZZ_OPTIMIZE=0 SWIFT="$swift" scripts/fuzz.sh || [ $? = 77 ]
phase "done"
