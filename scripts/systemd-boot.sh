#!/usr/bin/env bash
# Runs as PID 1 of the new pid namespace that scripts/systemd-test.sh makes (new mount, uts, ipc,
# net and cgroup namespaces too): mounts what systemd needs in ROOT, pivots into it, unmounts
# the host's root and execs systemd. From then on systemd sees only ROOT: its own /tmp and /run
# (tmpfs), a read-only /sys and /proc/sys (so nothing it does reaches the host's kernel
# settings), and a cgroup2 mount of the sub-cgroup the test delegated to it.
#
#   scripts/systemd-boot.sh ROOT
set -euo pipefail
root=$1

mount --make-rprivate /
mount --bind "$root" "$root"
mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
# Kernel settings are the host's: read-only, so systemd-sysctl and binfmt can't change them.
mount --bind "$root/proc/sys" "$root/proc/sys"
mount -o remount,bind,ro "$root/proc/sys"
mount --bind /proc/sysrq-trigger "$root/proc/sysrq-trigger" 2>/dev/null && mount -o remount,bind,ro "$root/proc/sysrq-trigger" || true
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$root/sys"
# The cgroup namespace's root is the sub-cgroup the test made: systemd manages only that.
mount -t cgroup2 -o nosuid,nodev,noexec,nsdelegate cgroup2 "$root/sys/fs/cgroup"
mount -t tmpfs -o mode=755,nosuid,nodev tmpfs "$root/run"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/tmp"
mount -t tmpfs -o mode=755,nosuid tmpfs "$root/dev"
for device in null zero full random urandom tty; do
    touch "$root/dev/$device"
    mount --bind "/dev/$device" "$root/dev/$device"
done
mkdir -p "$root/dev/pts" "$root/dev/shm" "$root/dev/mqueue"
mount -t devpts -o newinstance,ptmxmode=0666,mode=620,gid=5 devpts "$root/dev/pts"
ln -s pts/ptmx "$root/dev/ptmx"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/dev/shm"
ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"
ln -s /proc/self/fd/1 "$root/dev/stdout"
ln -s /proc/self/fd/2 "$root/dev/stderr"
# The toolchain's Swift runtime, which a debug build links, at the same path, read-only.
if [ -d /opt/swift ]; then
    mkdir -p "$root/opt/swift"
    mount --bind /opt/swift "$root/opt/swift"
    mount -o remount,bind,ro "$root/opt/swift"
fi

cd "$root"
mkdir -p .host-root
pivot_root . .host-root
cd /
umount -l /.host-root
rmdir /.host-root
export container=agentgate-test
exec /lib/systemd/systemd --log-target=console --log-level=notice
