#!/usr/bin/env bash
# Installs the Debian package on a clean Debian root (scripts/debian-root.sh) with apt, so its
# Depends are resolved from Debian's mirror; runs the installed programs there as root and as
# an unprivileged user; then purges it and checks that it uninstalled cleanly.
#
#   scripts/deb-install-test.sh DEB
#
# Runs in a mount namespace of its own (unshare), with the root as its / (pivot_root), with its own /proc,
# /sys, /dev and /tmp: nothing is mounted on the host's tree, and when the namespace ends its
# mounts go with it. systemd is not booted. Exit status 77 means "can't here" (not root, no
# Debian root, mirror unreachable), with the reason on stderr.
set -euo pipefail
deb=${1:?usage: deb-install-test.sh DEB}
repo=$(cd "$(dirname "$0")/.." && pwd)
uid=${AGENTGATE_TEST_UID:-65534}

skip() { echo "deb-install-test: skipped: $*" >&2; exit 77; }
fail() { echo "deb-install-test: FAIL: $*" >&2; exit 1; }

[ -f "$deb" ] || fail "$deb: no such file"
deb=$(cd "$(dirname "$deb")" && pwd)/$(basename "$deb")
[ "$(id -u)" = 0 ] || skip "needs root (mounts, pivot_root, apt-get in the root)"
command -v unshare >/dev/null || skip "needs unshare (util-linux)"

work=$(mktemp -d /var/tmp/agentgate-deb-test.XXXXXX)
trap 'rm -rf --one-file-system "$work"' EXIT
root=$work/root
status=0
"$repo/scripts/debian-root.sh" "$root" || status=$?
[ "$status" = 77 ] && skip "no Debian root (debian-root.sh said why above)"
[ "$status" = 0 ] || fail "debian-root.sh exited $status"

cp /etc/resolv.conf "$root/etc/resolv.conf"
cp "$deb" "$root/var/tmp/"
install -m 0755 /dev/stdin "$root/var/tmp/inside.sh" <<'INSIDE'
#!/bin/bash
# Runs inside the chroot. $1: the package file; $2: the unprivileged uid.
set -euo pipefail
deb=$1 uid=$2
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 PATH=/usr/sbin:/usr/bin:/sbin:/bin
fail() { echo "deb-install-test: FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }

step "apt-get update"
apt-get update -qq >/tmp/apt.log 2>&1 || { tail -5 /tmp/apt.log; exit 77; }

# What the package ships, to check after the purge that none of it is left.
dpkg-deb --fsys-tarfile "$deb" | tar -t | sed -e 's|^\./|/|' -e 's|/$||' | grep -v '^/\?$' >/tmp/package-paths
# Those already there (directories shared with other packages) may stay after the purge.
while read -r path; do
    if [ -e "$path" ] || [ -L "$path" ]; then echo "$path"; fi
done </tmp/package-paths >/tmp/present-before
while read -r path; do
    [ -d "$path" ] && [ ! -L "$path" ] || fail "$path is there before the package is installed"
done </tmp/present-before
step "apt-get install $deb"
before=$(dpkg-query -W -f '${Package}\n' | sort)
apt-get install -y -q --no-install-recommends "$deb" >/tmp/apt.log 2>&1 || { cat /tmp/apt.log; fail "apt-get install"; }
grep -E '^(Setting up|Unpacking) ' /tmp/apt.log | sed 's/^/   /'
added=$(comm -13 <(echo "$before") <(dpkg-query -W -f '${Package}\n' | sort) | tr '\n' ' ')
echo "   packages added: $added"
[ "$(dpkg-query -W -f '${Status}' agentgate)" = "install ok installed" ] || fail "agentgate is not installed"

step "the installed binary needs only Debian's libraries"
if ldd /usr/bin/agentgate | grep -E 'not found|libswift|libFoundation'; then fail "ldd /usr/bin/agentgate"; fi
[ "$(readlink /usr/bin/agentgate-supervise)" = agentgate ] || fail "/usr/bin/agentgate-supervise is not a link to agentgate"
[ -x /usr/bin/agentgate-hook ] || fail "/usr/bin/agentgate-hook is missing"
# Outside a session it runs /usr/bin/agentgate's hook, which blocks what it can't read (exit 2).
hook_status=0; echo 'not json' | agentgate-hook claude-code >/dev/null 2>&1 || hook_status=$?
[ "$hook_status" = 2 ] || fail "agentgate-hook claude-code on bad input exited $hook_status, not 2"
version=$(dpkg-query -W -f '${Version}' agentgate)
[ "$(agentgate --version)" = "$version" ] || fail "agentgate --version is not $version"
[ "$(agentgate-supervise --version)" = "$version" ] || fail "agentgate-supervise --version is not $version"
# grep without -q reads to the end: with -q it may exit first, and pipefail takes the writer's SIGPIPE for a failure.
agentgate-supervise --help | grep -- '--policy' >/dev/null || fail "agentgate-supervise --help does not describe agentgate-supervise"
agentgate --help | grep 'SUBCOMMANDS' >/dev/null || fail "agentgate --help does not list subcommands"
for file in /usr/share/man/man1/agentgate.1.gz /usr/share/man/man1/agentgate-supervise.1.gz \
    /usr/share/man/man5/agentgate-policy.5.gz /usr/share/bash-completion/completions/agentgate-supervise \
    /usr/share/zsh/vendor-completions/_agentgate /usr/share/fish/vendor_completions.d/agentgate.fish \
    /usr/lib/systemd/system/agentgate-session@.service /usr/share/doc/agentgate/copyright; do
    [ -s "$file" ] || fail "$file is missing"
done
for name in agentgate agentgate-supervise; do
    bash -c "source /usr/share/bash-completion/completions/$name && complete -p $name" >/dev/null ||
        fail "the bash completion for $name does not load"
done
grep -qx /etc/agentgate/policy.yaml /var/lib/dpkg/info/agentgate.conffiles || fail "/etc/agentgate/policy.yaml is not a conffile"

# A case file for the shipped /etc/agentgate/policy.yaml: it includes the built-in policy.
cat >/tmp/etc-policy-cases.yaml <<'CASES'
policy: /etc/agentgate/policy.yaml
variables: {PWD: /home/dev/project, HOME: /home/dev, TMPDIR: /tmp}
cases:
  - {name: ssh keys stay private, action: fs_read, target: $HOME/.ssh/id_rsa, expect: deny, rule: ssh-keys}
  - {name: the project is writable, action: fs_write, target: $PWD/a.txt, expect: allow, rule: project}
  - {name: cloud metadata is denied, action: net_egress, target: "169.254.169.254:80", expect: deny, rule: cloud-metadata}
CASES
chmod 0644 /tmp/etc-policy-cases.yaml

run_checks() {
    local who=$1; shift
    step "as $who: agentgate-supervise -- true"
    "$@" agentgate-supervise --db /tmp/home-$who/audit.db -- true || fail "agentgate-supervise -- true as $who"
    step "as $who: agentgate-supervise -- cat /etc/agentgate/policy.yaml (the policy in force is not readable)"
    if "$@" agentgate-supervise -q --db /tmp/home-$who/audit.db --policy /etc/agentgate/policy.yaml \
        -- cat /etc/agentgate/policy.yaml >/dev/null 2>&1; then
        fail "a supervised command read the policy file in force as $who"
    fi
    step "as $who: agentgate sessions"
    "$@" agentgate sessions --db /tmp/home-$who/audit.db | grep true >/dev/null || fail "no session recorded as $who"
    step "as $who: agentgate policy test /usr/share/agentgate/policies/tests"
    "$@" agentgate policy test /usr/share/agentgate/policies/tests | sed -n 1p
    step "as $who: agentgate policy test (the shipped /etc/agentgate/policy.yaml)"
    "$@" agentgate policy test /tmp/etc-policy-cases.yaml | sed -n 1p
    "$@" agentgate policy lint /etc/agentgate/policy.yaml >/dev/null || fail "agentgate policy lint /etc/agentgate/policy.yaml as $who"
}
mkdir -p /tmp/home-root /tmp/home-user
chown "$uid:$uid" /tmp/home-user
run_checks root env HOME=/tmp/home-root
run_checks user setpriv --reuid="$uid" --regid="$uid" --clear-groups --inh-caps=-all env HOME=/tmp/home-user

step "apt-get purge agentgate"
apt-get purge -y -q agentgate >/tmp/apt.log 2>&1 || { cat /tmp/apt.log; fail "apt-get purge agentgate"; }
[ -z "$(dpkg-query -W -f '${Status}' agentgate 2>/dev/null)" ] || fail "agentgate is still known to dpkg: $(dpkg-query -W -f '${Status}' agentgate)"
left=""
while read -r path; do
    grep -qxF -- "$path" /tmp/present-before && continue
    if [ -e "$path" ] || [ -L "$path" ]; then left="$left $path"; fi
done </tmp/package-paths
[ -z "$left" ] || fail "left after purge:$left"
[ ! -e /etc/agentgate ] || fail "/etc/agentgate is left after purge"
dpkg --audit >/tmp/audit.log 2>&1 && [ ! -s /tmp/audit.log ] || { cat /tmp/audit.log; fail "dpkg --audit"; }
apt-get check -qq || fail "apt-get check"
echo "   purged: none of the package's $(wc -l </tmp/package-paths) paths is left, conffile gone, dpkg --audit clean"
INSIDE

echo "== in a clean Debian root ($root), in a mount namespace of its own"
# Private propagation: the mounts below are the namespace's alone. pivot_root rather than a
# plain chroot: the kernel refuses user namespaces to a chrooted process, and the supervisor
# run as a user needs one for its DNS forwarder.
unshare --mount --propagation private -- /bin/bash -euo pipefail -c '
    root=$1
    mount --bind "$root" "$root"
    mount -t proc proc "$root/proc"
    mount -t sysfs sysfs "$root/sys"
    mount -t tmpfs -o mode=0755,size=64m dev "$root/dev"
    for node in null zero full random urandom tty; do
        touch "$root/dev/$node"
        mount --bind "/dev/$node" "$root/dev/$node"
    done
    mkdir -p "$root/dev/pts" "$root/dev/shm" "$root/.old-root"
    ln -s /proc/self/fd "$root/dev/fd"
    mount -t tmpfs -o mode=1777,size=256m tmp "$root/tmp"
    mount -t tmpfs -o mode=1777 shm "$root/dev/shm"
    cd "$root"
    pivot_root . .old-root
    umount -l /.old-root
    rmdir /.old-root
    cd /
    exec /var/tmp/inside.sh "/var/tmp/$2" "$3"
' inside "$root" "$(basename "$deb")" "$uid" || {
    status=$?
    [ "$status" = 77 ] && skip "apt-get update in the root failed (no network to Debian's mirror?)"
    fail "exit $status inside the root"
}
echo "deb-install-test: ok"
