#!/usr/bin/env bash
# Runs the supervisor test suites again as an unprivileged user: developers run AgentGate as
# themselves, so everything that works without root is shown to work that way. Tests that
# need root say so and are skipped. `make test` runs this after the first pass; when that
# pass already ran unprivileged, there is nothing to add.
set -euo pipefail
build=${1:-.build/debug}
uid=${AGENTGATE_TEST_UID:-65534}
if [ "$(id -u)" != 0 ]; then
    echo "test-unprivileged: the tests already ran as uid $(id -u), unprivileged"
    exit 0
fi
command -v setpriv >/dev/null || { echo "test-unprivileged: needs setpriv (util-linux)" >&2; exit 1; }
# The checkout may sit where the user can't reach (/root): the test binary, the two binaries it
# runs, and the repository's files the tests read are copied out.
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/agentgate-unprivileged.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp "$build/AgentGatePackageTests.xctest" "$build/agentgate-supervise" "$build/agentgate" "$work/"
# The hooks' fast path, beside agentgate as it is installed (scripts/build-hook.sh builds it).
[ -x "$build/agentgate-hook" ] || "$root/scripts/build-hook.sh" "$build"
cp "$build/agentgate-hook" "$work/"
mkdir "$work/repository"
tar -C "$root" --exclude=./.build --exclude=./.git -cf - . | tar -C "$work/repository" -xf -
mkdir "$work/home"
chown "$uid:$uid" "$work/home"
chmod 755 "$work"
cd "$work/home"
echo "== the supervisor test suites again, as uid $uid (no capabilities, no groups)"
setpriv --reuid="$uid" --regid="$uid" --clear-groups --inh-caps=-all \
    env HOME="$work/home" TMPDIR=/tmp AGENTGATE_TEST_REPOSITORY="$work/repository" \
    "$work/AgentGatePackageTests.xctest" --testing-library swift-testing --filter AgentGateSupervisorTests
