#!/usr/bin/env bash
# The second half of `make bench`: what each trapped call costs, and five real workloads, each
# bare and under supervision in the same run (interleaved rounds, medians, ratios against the
# bare run of this run). Not a timed test: it prints figures.
#
#   Benchmarks/workloads.sh [--quick]     REPEATS=N (default 3)
#
# Per-trap latency, four modes: bare; the floor (Benchmarks/floor.c: a C supervisor that
# answers every notification CONTINUE in sync mode, deciding nothing); agentgate-supervise with
# an allow-all policy; strace -f.
# Workloads, four modes: bare; agentgate-supervise on the built-in default policy; on allow-all;
# strace -f. Workloads: git status in a 20,000-file repository, python importing ten stdlib
# packages, make -j2 of 120 C files, tar -x of 5,000 files, 2,000 fork+execs of /bin/true.
set -euo pipefail
# shellcheck source=supervisor-binary.sh
source "$(dirname "$0")/supervisor-binary.sh"
for tool in cc git make tar strace; do
  command -v "$tool" >/dev/null || { echo "workloads: needs $tool" >&2; exit 2; }
done
python=$(command -v /usr/bin/python3 || command -v python3 || true)
[ -n "$python" ] || { echo "workloads: needs python3" >&2; exit 2; }

repeats=${REPEATS:-3}
git_files=20000 tar_files=5000 c_files=120 execs=2000 opens=20000 connects=5000
if [ "${1:-}" = "--quick" ]; then repeats=1 git_files=2000 tar_files=500 c_files=20 execs=200 opens=2000 connects=500; fi

work=$(mktemp -d /tmp/agentgate-workloads.XXXXXX)
trap 'rm -rf "$work"' EXIT
for program in open-loop exec-loop connect-loop floor; do
  cc -O2 -o "$work/$program" "$here/$program.c"
done
echo hello > "$work/target.txt"
printf 'default: allow\nrules: []\n' > "$work/allow-all.yaml"
mkdir -p "$work/config" # an empty XDG_CONFIG_HOME: the built-in policy, not the user's

echo "setting up: a git repository of $git_files files, $tar_files files to untar, $c_files C files"
"$python" - "$work" "$git_files" "$tar_files" "$c_files" <<'PY'
import os, sys
work, git_files, tar_files, c_files = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def tree(base, count):
    for i in range(count):
        directory = os.path.join(base, "d%03d" % (i // 100))
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, "f%05d.txt" % i), "w") as f:
            f.write("line %d\n" % i)
tree(os.path.join(work, "repo"), git_files)
tree(os.path.join(work, "tarsource"), tar_files)
project = os.path.join(work, "proj")
os.makedirs(project)
with open(os.path.join(project, "common.h"), "w") as f:
    f.write("int helper(int x);\n")
for i in range(1, c_files + 1):
    with open(os.path.join(project, "f%d.c" % i), "w") as f:
        f.write('#include <stdio.h>\n#include <string.h>\n#include <stdlib.h>\n#include "common.h"\n'
                'int f%d(int x) { char b[64]; snprintf(b, sizeof b, "%%d", x); return (int)strlen(b) + helper(x); }\n' % i)
with open(os.path.join(project, "main.c"), "w") as f:
    f.write("int helper(int x) { return x; } int main(void) { return 0; }\n")
with open(os.path.join(project, "Makefile"), "w") as f:
    f.write("OBJS := $(patsubst %.c,%.o,$(wildcard *.c))\nprog: $(OBJS)\n\tcc -o $@ $^\n"
            "%.o: %.c common.h\n\tcc -O1 -c $< -o $@\nclean:\n\trm -f *.o prog\n")
PY
git -C "$work/repo" init -q
git -C "$work/repo" add -A
git -C "$work/repo" -c user.email=bench@localhost -c user.name=bench commit -qm files
tar -C "$work/tarsource" -cf "$work/files.tar" .

cd "$work"
run_mode() { # MODE CMD...: runs CMD in MODE, its output to $work/out
  local mode=$1; shift
  case $mode in
    bare) "$@" ;;
    floor) "$work/floor" -- "$@" ;;
    allow-all) "$bin" -q --policy "$work/allow-all.yaml" --db "$work/allow-all.db" -- "$@" ;;
    default) env -u AGENTGATE_POLICY XDG_CONFIG_HOME="$work/config" "$bin" -q --db "$work/default.db" -- "$@" ;;
    strace) strace -f -qq -o /dev/null "$@" ;;
  esac
}
median() { sort -n | awk '{a[NR]=$1} END {if (NR == 0) print "failed"; else print a[int((NR+1)/2)]}'; }
declare -A results

# Per trap: each program times its own loop and prints µs per call.
per_trap_modes=(bare floor allow-all strace)
per_trap=(open connect exec)
declare -A per_trap_command=(
  [open]="$work/open-loop $work/target.txt $opens"
  [connect]="$work/connect-loop $connects"
  [exec]="$work/exec-loop $execs"
)
for _ in $(seq "$repeats"); do
  for name in "${per_trap[@]}"; do
    for mode in "${per_trap_modes[@]}"; do
      # shellcheck disable=SC2086
      if value=$(run_mode "$mode" ${per_trap_command[$name]} 2>"$work/err"); then
        results[trap,$name,$mode]+="$value "
      else
        echo "per-trap $name under $mode failed: $(tail -3 "$work/err")" >&2
      fi
    done
  done
done

# Workloads: wall time of the whole command, set-up outside the timing.
workload_modes=(bare default allow-all strace)
workloads=(git python make tar exec)
declare -A workload_title=(
  [git]="git status, $git_files files" [python]="python importing ten stdlib packages"
  [make]="make -j2, $c_files C files" [tar]="tar -x, $tar_files files" [exec]="$execs × fork+exec /bin/true"
)
prepare() {
  case $1 in
    make) make -C "$work/proj" clean >/dev/null ;;
    tar) rm -rf "$work/untar"; mkdir "$work/untar" ;;
  esac
}
workload() {
  case $1 in
    git) git -C "$work/repo" status --porcelain ;;
    python) "$python" -c 'import json, csv, sqlite3, decimal, email.parser, http.client, xml.etree.ElementTree, urllib.request, asyncio, logging' ;;
    make) make -C "$work/proj" -j2 ;;
    tar) tar -C "$work/untar" -xf "$work/files.tar" ;;
    exec) "$work/exec-loop" "$execs" ;;
  esac
}
export -f workload 2>/dev/null || true
for _ in $(seq "$repeats"); do
  for name in "${workloads[@]}"; do
    for mode in "${workload_modes[@]}"; do
      prepare "$name"
      start=$(date +%s%N)
      if run_mode "$mode" bash -c "$(declare -f workload); work='$work' python='$python' execs='$execs' workload $name" >/dev/null 2>"$work/err"; then
        end=$(date +%s%N)
        results[work,$name,$mode]+="$(awk -v s="$start" -v e="$end" 'BEGIN {printf "%.4f", (e - s) / 1e9}') "
      else
        echo "$name under $mode failed: $(tail -3 "$work/err")" >&2
      fi
    done
  done
done

med() { tr ' ' '\n' <<< "${results[$1]:-}" | grep -v '^$' | median; }
echo
echo "AgentGate against bare, a C floor and strace -f ($(uname -r), $(nproc) cores, $(date -u +%Y-%m-%d), median of $repeats)"
echo
printf '%-36s %10s %10s %12s %10s\n' "per trapped call, µs" bare floor agentgate "strace -f"
for name in "${per_trap[@]}"; do
  case $name in open) title="open+close ($opens)";; connect) title="TCP connect, loopback ($connects)";; exec) title="fork+exec /bin/true ($execs)";; esac
  printf '%-36s %10s %10s %12s %10s\n' "$title" "$(med "trap,$name,bare")" "$(med "trap,$name,floor")" \
    "$(med "trap,$name,allow-all")" "$(med "trap,$name,strace")"
done
echo
printf '%-40s %9s %20s %20s %14s\n' "workload (seconds, × bare)" bare "agentgate, default" "agentgate, allow-all" "strace -f"
declare -A logsum=([default]=0 [allow-all]=0 [strace]=0)
declare -A counted=([default]=0 [allow-all]=0 [strace]=0)
for name in "${workloads[@]}"; do
  bare=$(med "work,$name,bare")
  row=()
  for mode in default allow-all strace; do
    value=$(med "work,$name,$mode")
    if [ "$value" = failed ] || [ "$bare" = failed ]; then row+=("failed"); continue; fi
    ratio=$(awk -v a="$value" -v b="$bare" 'BEGIN {printf "%.2f", a / b}')
    row+=("$value (${ratio}×)")
    logsum[$mode]=$(awk -v s="${logsum[$mode]}" -v r="$ratio" 'BEGIN {printf "%.6f", s + log(r)}')
    counted[$mode]=$((counted[$mode] + 1))
  done
  printf '%-40s %9s %20s %20s %14s\n' "${workload_title[$name]}" "$bare" "${row[0]}" "${row[1]}" "${row[2]}"
done
geo() { [ "${counted[$1]}" -gt 0 ] && awk -v s="${logsum[$1]}" -v n="${counted[$1]}" 'BEGIN {printf "%.2f", exp(s / n)}' || echo "-"; }
printf '%-40s %9s %20s %20s %14s\n' "geometric mean (×)" "" "$(geo default)×" "$(geo allow-all)×" "$(geo strace)×"
if [ "$(geo default)" != "-" ] && [ "$(geo strace)" != "-" ]; then
  echo "strace -f's geometric mean over agentgate's (default policy): $(awk -v s="$(geo strace)" -v a="$(geo default)" 'BEGIN {printf "%.2f", s / a}')×"
fi
