#!/usr/bin/env bash
# Builds agentgate-hook (Sources/agentgate-hook/agentgate-hook.c) into DIR, beside agentgate:
# a static C program, so an agent's hook starts without the Swift runtime or the loader's work
# (SwiftPM would link the Swift runtime into it, so it is built here, by the Makefile, the tests
# and the package). `agentgate hook install` uses it when it is there.
#
#   scripts/build-hook.sh DIR      CC=cc
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:?usage: scripts/build-hook.sh DIR}
cc=${CC:-cc}
mkdir -p "$dir"
source=Sources/agentgate-hook/agentgate-hook.c
flags=(-O2 -Wall -Wextra -Werror -D_FORTIFY_SOURCE=2 -fstack-protector-strong)
if ! "$cc" "${flags[@]}" -static -o "$dir/agentgate-hook.new" "$source" 2>/dev/null; then
    # No static libc (libc6-dev has one on Debian): linked dynamically, still without Swift.
    echo "build-hook: no static libc; agentgate-hook is linked dynamically" >&2
    "$cc" "${flags[@]}" -o "$dir/agentgate-hook.new" "$source"
fi
mv "$dir/agentgate-hook.new" "$dir/agentgate-hook"
