# Sourced by the benchmark scripts: sets `here`, `root` and `bin`, the agentgate-supervise to
# measure ($AGENTGATE_SUPERVISE, else the release build, else the debug build).
here=$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)
root=$(cd "$here/.." && pwd)
bin=${AGENTGATE_SUPERVISE:-}
if [ -z "$bin" ]; then
  for candidate in "$root/.build/release/agentgate-supervise" "$root/.build/debug/agentgate-supervise"; do
    [ -x "$candidate" ] && { bin=$candidate; break; }
  done
fi
[ -n "$bin" ] || { echo "build first: make release" >&2; exit 2; }
