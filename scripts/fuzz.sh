#!/usr/bin/env bash
# Runs every fuzz target (Sources/agentgate-fuzz) under libFuzzer with AddressSanitizer for
# FUZZ_SECONDS each (default 60), and prints per target: executions, corpus size, crashes,
# hangs, the slowest input in seconds (libFuzzer notes inputs of 1 s or more), peak RSS. Exit 1
# on any crash or hang; the input is kept in BUILD/fuzz/artifacts/TARGET/ (replay it without
# the sanitizer: `.build/debug/agentgate-fuzz TARGET FILE`).
#
#   scripts/fuzz.sh [TARGET...]     FUZZ_SECONDS=N  FUZZ_TIMEOUT=S  FUZZ_FRESH=1  FUZZ_OPTIMIZE=0
#
# The corpus grows in BUILD/fuzz/corpus/TARGET across runs, seeded by scripts/fuzz-seeds.py.
# FUZZ_FRESH=1 starts from the seeds alone (CI does, so a run's result doesn't depend on history).
set -euo pipefail
cd "$(dirname "$0")/.."
SWIFT=${SWIFT:-swift}
SECONDS_PER_TARGET=${FUZZ_SECONDS:-60}
# Its own build directory by default, so the ordinary build's objects stay as they are; CI
# passes FUZZ_BUILD_PATH=.build to reuse every dependency object `make test` built (only the
# fuzzed modules are rebuilt, instrumented), and rebuilds nothing else afterwards.
BUILD=${FUZZ_BUILD_PATH:-.build-fuzz}
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(policy shell glob cases redact fallback sockaddr)

# A crash in Swift code ends in a trap: libFuzzer reports it; Swift's backtracer would only
# add seconds per crash.
export SWIFT_BACKTRACE=enable=no
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:handle_abort=1:allocator_may_return_null=1}

# libFuzzer without its main(): agentgate-fuzz has its own, which starts the driver.
toolchain=$(dirname "$(readlink -f "$(command -v swiftc)")")/..
library=$(ls "$toolchain"/lib/clang/*/lib/linux/libclang_rt.fuzzer_no_main-$(uname -m).a 2>/dev/null | head -1)
[ -n "$library" ] || { echo "fuzz: skipped: no libFuzzer (libclang_rt.fuzzer_no_main) in the Swift toolchain at $toolchain"; exit 77; }
export AGENTGATE_FUZZ=$library
# FUZZ_OPTIMIZE=0 builds the fuzzed modules unoptimized: a third of the compile time, a tenth
# of the executions per second (CI's short run).
export AGENTGATE_FUZZ_OPTIMIZE=${FUZZ_OPTIMIZE:-1}

started=$(date +%s)
mkdir -p "$BUILD"
if ! "$SWIFT" build --build-path "$BUILD" --product agentgate-fuzz >"$BUILD/fuzz-build.log" 2>&1; then
    tail -40 "$BUILD/fuzz-build.log"
    echo "fuzz: the sanitizer build failed (log: $BUILD/fuzz-build.log)" >&2
    exit 1
fi
built=$(date +%s)
binary=$("$SWIFT" build --build-path "$BUILD" --show-bin-path)/agentgate-fuzz

rm -rf "$BUILD/fuzz/seeds"
python3 scripts/fuzz-seeds.py "$BUILD/fuzz/seeds" >/dev/null

run_target() {
    local target=$1 corpus="$BUILD/fuzz/corpus/$1" artifacts="$BUILD/fuzz/artifacts/$1" log="$BUILD/fuzz/logs/$1.log"
    [ "${FUZZ_FRESH:-0}" = 1 ] && rm -rf "$corpus"
    rm -rf "$artifacts"; mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
    local dictionary=()
    [ -f "fuzz/dictionaries/$target.dict" ] && dictionary=(-dict="fuzz/dictionaries/$target.dict")
    local status=0
    # An input over FUZZ_TIMEOUT seconds (default 10) is a hang. Instrumentation and ASan make
    # the code 3-10 times slower, and a busy 2-core machine stalls a process for seconds, so 1 s
    # here would report the machine; the slowest input of the run is printed instead, for a
    # second look in the plain build. The seeds directory is read, never written.
    "$binary" "$target" "$corpus" "$BUILD/fuzz/seeds/$target" "${dictionary[@]}" \
        -max_total_time="$SECONDS_PER_TARGET" -timeout="${FUZZ_TIMEOUT:-10}" -rss_limit_mb=2048 -max_len=16384 \
        -report_slow_units=1 -print_final_stats=1 -artifact_prefix="$artifacts/" >"$log" 2>&1 || status=$?
    local executions peak crashes hangs slowest
    executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    peak=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
    slowest=$(sed -n 's/^Slowest unit: \([0-9]*\) s:.*/\1/p' "$log" | tail -1)
    crashes=$(find "$artifacts" -name 'crash-*' -o -name 'oom-*' | wc -l)
    hangs=$(find "$artifacts" -name 'timeout-*' | wc -l)  # (slow-unit-*: inputs of 1 s or more, kept to look at)
    printf '%-9s %12s %8s %8s %6s %9s %8s %s\n' "$target" "${executions:-?}" "$(ls "$corpus" | wc -l)" \
        "$crashes" "$hangs" "${slowest:-0}" "${peak:-?}" "$([ $status = 0 ] && echo ok || echo "FAILED: $log")"
    [ $status = 0 ]
}

echo "fuzz: built in $((built - started)) s; ${SECONDS_PER_TARGET} s per target"
printf '%-9s %12s %8s %8s %6s %9s %8s %s\n' target executions corpus crashes hangs "slowest s" "rss MB" result
failed=0
for target in "${TARGETS[@]}"; do
    run_target "$target" || failed=1
done
echo "fuzz: done in $(( $(date +%s) - started )) s"
if [ $failed = 1 ]; then
    for log in "$BUILD"/fuzz/logs/*.log; do
        grep -q -E 'ERROR: (libFuzzer|AddressSanitizer)|deadly signal|invariant failed|Fatal error' "$log" || continue
        echo "--- $log"; grep -E -A12 'ERROR:|invariant failed|Fatal error' "$log" | head -40
    done
    exit 1
fi
