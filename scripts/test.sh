#!/usr/bin/env bash
# Every test (`make test`): the Swift test suites as root, the supervisor suites again as an
# unprivileged user, the dashboard in headless Chromium, the Debian package installed on a clean
# root, and each fuzz target briefly.
#
# The package's static binary is built on the side while the suites run: they run one test at
# a time and leave a core mostly idle, and the build (its own scratch path, one job, at idle
# priority) would otherwise add minutes to CI. Each phase prints when it started.
set -euo pipefail
cd "$(dirname "$0")/.."
swift=${SWIFT:-swift}
jobs=${JOBS:-$(nproc)}
started=$SECONDS
phase() { echo "== test.sh [$(( SECONDS - started )) s] $*"; }

phase "building the test suites"
"$swift" build --build-tests -j "$jobs"

package_dir=.build-deb/debug-package
mkdir -p "$package_dir"
package_log=$package_dir/build.log
phase "building the package's binary on the side (log: $package_log)"
# SCHED_IDLE (chrt --idle): it runs only on a core nothing else wants, and gives way at once,
# so the race tests, which need both cores, still race (nice alone left them losing every race).
idle=(nice -n 19)
command -v chrt >/dev/null && idle=(chrt --idle 0 nice -n 19)
( AGENTGATE_DEB_CONFIGURATION=debug JOBS=1 SWIFT="$swift" "${idle[@]}" scripts/build-deb.sh "$package_dir" ) \
    >"$package_log" 2>&1 &
package_pid=$!
# Never leave the side build running when a phase fails.
trap 'kill -- "$package_pid" 2>/dev/null || true' EXIT

phase "swift test"
"$swift" test --skip-build
phase "the supervisor suites as an unprivileged user"
scripts/test-unprivileged.sh .build/debug

phase "the dashboard in headless Chromium"
DASHBOARD_SCREENSHOT="${TMPDIR:-/tmp}/agentgate-dashboard-test.png" scripts/dashboard-test.sh .build/debug || [ $? = 77 ]

phase "waiting for the package's binary"
if ! wait "$package_pid"; then
    trap - EXIT
    echo "test.sh: building the package failed:" >&2
    tail -n 60 "$package_log" >&2
    exit 1
fi
trap - EXIT
tail -n 3 "$package_log"
phase "installing the package on a clean Debian root"
scripts/deb-install-test.sh "$package_dir"/agentgate_*_amd64.deb || [ $? = 77 ]

phase "each fuzz target briefly"
FUZZ_BUILD_PATH=.build FUZZ_SECONDS=4 FUZZ_FRESH=1 FUZZ_OPTIMIZE=0 SWIFT="$swift" scripts/fuzz.sh || [ $? = 77 ]
phase "done"
