#!/usr/bin/env bash
# Supervisor overhead, measured against a bare run in the same run. Not a timed test: it prints
# ratios. Usage: Benchmarks/run.sh [--quick]   (needs a built .build/release or .build/debug)
set -euo pipefail
# shellcheck source=supervisor-binary.sh
source "$(dirname "$0")/supervisor-binary.sh"

opens=${OPENS:-20000}
files=${FILES:-120}
repeats=${REPEATS:-3}
if [ "${1:-}" = "--quick" ]; then opens=5000; files=40; repeats=1; fi

work=$(mktemp -d /tmp/agentgate-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
cc -O2 -o "$work/open-loop" "$here/open-loop.c"
echo "hello" > "$work/target.txt"
cat > "$work/policy.yaml" <<POLICY
default: deny
rules:
  - match: {action: fs_write, target_glob: "$work/**"}
    decision: allow
  - match: {action: fs_write, target_glob: "/dev/null"}
    decision: allow
  - match: {action: fs_write, target_glob: "/tmp/**"}
    decision: allow
  - match: {action: fs_read}
    decision: allow
  - match: {action: exec}
    decision: allow
POLICY

# A small C project: $files translation units, one header, a Makefile.
mkdir -p "$work/proj"
echo 'int helper(int x);' > "$work/proj/common.h"
for i in $(seq 1 "$files"); do
  cat > "$work/proj/f$i.c" <<C
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include "common.h"
int f$i(int x) { char b[64]; snprintf(b, sizeof b, "%d", x); return (int)strlen(b) + helper(x); }
C
done
echo 'int helper(int x) { return x; } int main(void) { return 0; }' > "$work/proj/main.c"
{
  printf 'OBJS := $(patsubst %%.c,%%.o,$(wildcard *.c))\n'
  printf 'prog: $(OBJS)\n\tcc -o $@ $^\n'
  printf '%%.o: %%.c common.h\n\tcc -O1 -c $< -o $@\n'
  printf 'clean:\n\trm -f *.o prog\n'
} > "$work/proj/Makefile"

sup() { "$bin" -q --policy "$work/policy.yaml" --db "$work/bench.db" "$@"; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
seconds() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N); awk -v s="$s" -v e="$e" 'BEGIN {printf "%.3f\n", (e - s) / 1e9}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
build() { make -C "$work/proj" clean >/dev/null; "$@" make -C "$work/proj" -j2 >/dev/null 2>&1; }

declare -A modes=(
  ["sync, two-step"]="--wakeup sync --fd-injection two-step"
  ["sync, atomic"]="--wakeup sync --fd-injection atomic"
  ["default, two-step"]="--wakeup default --fd-injection two-step"
  ["default, atomic"]="--wakeup default --fd-injection atomic"
  ["sync, atomic, 2 threads"]="--wakeup sync --fd-injection atomic --threads 2"
  ["default, atomic, 2 threads"]="--wakeup default --fd-injection atomic --threads 2"
)
order=("sync, two-step" "sync, atomic" "default, two-step" "default, atomic" "sync, atomic, 2 threads" "default, atomic, 2 threads")
# MODES="sync, atomic|default, atomic" limits the run to those rows.
if [ -n "${MODES:-}" ]; then IFS='|' read -r -a order <<< "$MODES"; fi

bare_open=$(for _ in $(seq "$repeats"); do "$work/open-loop" "$work/target.txt" "$opens"; done | median)
bare_make=$(for _ in $(seq "$repeats"); do seconds build; done | median)
echo "AgentGate overhead ($(uname -r), $(nproc) cores, $opens opens, make -j2 of $files C files, median of $repeats)"
echo
echo "| mode (wake-up, fd injection) | µs/open bare | µs/open supervised | open ratio | make -j2 bare (s) | make -j2 supervised (s) | make ratio |"
echo "|---|---|---|---|---|---|---|"
for mode in "${order[@]}"; do
  flags=${modes[$mode]}
  # shellcheck disable=SC2086
  sup_open=$(for _ in $(seq "$repeats"); do sup $flags -- "$work/open-loop" "$work/target.txt" "$opens"; done | median)
  # shellcheck disable=SC2086
  sup_make=$(for _ in $(seq "$repeats"); do seconds build sup $flags --; done | median)
  printf '| %s | %s | %s | %s× | %s | %s | %s× |\n' "$mode" "$bare_open" "$sup_open" \
    "$(ratio "$sup_open" "$bare_open")" "$bare_make" "$sup_make" "$(ratio "$sup_make" "$bare_make")"
done

# Start-up: policy load time (agentgate-policy-bench), and `agentgate hook claude-code` and
# `agentgate-supervise -- /bin/true` against bare /bin/true, medians of 20 interleaved runs.
bindir=$(dirname "$bin")
echo
[ -x "$bindir/agentgate-policy-bench" ] && "$bindir/agentgate-policy-bench" --load-only
hook_input='{"session_id":"bench","transcript_path":"/tmp/x","cwd":"/tmp","hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{"command":"git status && ls -la | head"}}'
hook() { printf '%s' "$hook_input" | "$bindir/agentgate" hook claude-code --no-record; }
startup_bare=() startup_sup=() startup_hook=()
for _ in $(seq 20); do
  startup_bare+=("$(seconds /bin/true)")
  startup_sup+=("$(seconds "$bin" -q --db "$work/startup.db" -- /bin/true)")
  [ -x "$bindir/agentgate" ] && startup_hook+=("$(seconds hook)")
done
ms() { printf '%s\n' "$@" | median | awk '{printf "%.1f", $1 * 1000}'; }
echo "start-up: /bin/true bare $(ms "${startup_bare[@]}") ms, under agentgate-supervise (built-in policy) $(ms "${startup_sup[@]}") ms"
[ ${#startup_hook[@]} -gt 0 ] && echo "agentgate hook claude-code (built-in policy, a Bash call): $(ms "${startup_hook[@]}") ms"
true
