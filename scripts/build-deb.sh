#!/usr/bin/env bash
# Builds the Debian package agentgate_VERSION_amd64.deb (`make deb`): one static binary,
# /usr/bin/agentgate, that is also /usr/bin/agentgate-supervise (a symlink: it dispatches on
# the name it was run by), the policies, /etc/agentgate/policy.yaml as a conffile, the systemd
# units, man pages and shell completions generated from the argument parser.
#
#   scripts/build-deb.sh [OUTDIR]          (default OUTDIR: .build-deb)
#
# The binary is built with --static-swift-stdlib in its own scratch path (.build-deb), so it
# needs no Swift toolchain where it is installed; the build fails if ldd shows any library
# outside Debian's standard paths, or any Swift runtime library.
# AGENTGATE_DEB_CONFIGURATION=debug builds the same static binary unoptimized (CI, cheaper).
# AGENTGATE_DEB_SCRATCH=.build builds it in the ordinary scratch path, reusing its objects
# (`make test`: ~40 s instead of a whole second build); see "shared scratch path" below.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
out=$(mkdir -p "${1:-.build-deb}" && cd "${1:-.build-deb}" && pwd)
configuration=${AGENTGATE_DEB_CONFIGURATION:-release}
scratch=${AGENTGATE_DEB_SCRATCH:-.build-deb}
swift=${SWIFT:-swift}
jobs=${JOBS:-$(nproc)}

fail() { echo "build-deb: $*" >&2; exit 1; }
for tool in dpkg-deb dpkg-shlibdeps python3 gzip strip ldd man groff; do
    command -v "$tool" >/dev/null || fail "needs $tool (apt-get install dpkg-dev binutils python3)"
done

# Bound immediately and relocations read-only (full RELRO), as Debian's hardening flags link.
flags=(-c "$configuration" --static-swift-stdlib --scratch-path "$scratch"
       -Xlinker -z -Xlinker now -Xlinker -z -Xlinker relro)
bin_dir=$("$swift" build "${flags[@]}" --show-bin-path)
# A shared scratch path. Every module compiled for a static binary names the static libraries
# in its objects (autolink entries), and the compiler's incremental build doesn't see the switch
# either way: an object compiled for one kind of link stays there for the other, which then
# fails. So everything is brought up to date for the plain (dynamic) link first, and only the
# executable's own module is compiled for the static one: its objects go before that build and
# again after it, and the next plain build compiles them again.
# Any scratch path but the package's own (.build-deb) counts as shared.
shared=1
mkdir -p "$scratch"
[ "$(cd "$scratch" && pwd -P)" = "$(pwd -P)/.build-deb" ] && shared=0
forget_executable_objects() { rm -f "$bin_dir"/agentgate.build/*.o; }
kept=$(mktemp -d)
generated=
# Also when the static build fails or is interrupted: its objects must not stay.
trap 'rm -rf "$kept" ${generated:+"$generated"}; [ "$shared" = 0 ] || forget_executable_objects' EXIT
if [ "$shared" = 1 ]; then
    "$swift" build -c "$configuration" --scratch-path "$scratch" --product agentgate -j "$jobs"
    forget_executable_objects
fi
echo "== swift build ${flags[*]}"
start=$(date +%s)
"$swift" build "${flags[@]}" --product agentgate -j "$jobs"
echo "build-deb: built in $(( $(date +%s) - start )) s"
bin=$bin_dir/agentgate
if [ "$shared" = 1 ]; then
    # Packaged from a copy: the next plain build replaces the binary in place.
    cp "$bin" "$kept/agentgate"
    bin=$kept/agentgate
fi

# Only Debian's libraries: each one ldd resolves must be in the standard multiarch paths (or
# the dynamic loader), and no Swift runtime may be among them.
libraries=$(ldd "$bin") || fail "ldd $bin failed"
bad=$(printf '%s\n' "$libraries" | awk '
    /linux-vdso\.so/ { next }
    /not found/ { print; next }
    /libswift|libFoundation|lib_FoundationICU|libdispatch|libBlocksRuntime/ { print; next }
    { path = ($2 == "=>") ? $3 : $1
      if (path !~ /^\/(usr\/)?lib(64)?\/(x86_64-linux-gnu\/)?[^\/]+$/) print }')
[ -z "$bad" ] || fail "$bin links libraries that are not Debian's:
$bad"

version=$("$bin" --version)
[[ $version =~ ^[0-9][0-9A-Za-z.+~-]*$ ]] || fail "unexpected version \"$version\" from $bin --version"
package=agentgate_${version}_amd64
stage="$out/$package"
rm -rf "$stage" "$out"/agentgate_*_amd64.deb
mkdir -p "$stage/DEBIAN"
echo "== staging $package"

# The program, stripped as dh_strip would (Swift's reflection metadata lives in its own sections
# and stays), and its second name.
install -D -m 0755 "$bin" "$stage/usr/bin/agentgate"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$stage/usr/bin/agentgate"
stripped=$(stat -c %s "$stage/usr/bin/agentgate")
ln -s agentgate "$stage/usr/bin/agentgate-supervise"
# The hooks' fast path, a static C program (scripts/build-hook.sh).
scripts/build-hook.sh "$kept"
install -D -m 0755 "$kept/agentgate-hook" "$stage/usr/bin/agentgate-hook"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$stage/usr/bin/agentgate-hook"

# Policies: the profiles and their case files; the system's policy as a conffile.
mkdir -p "$stage/usr/share/agentgate"
cp -r policies "$stage/usr/share/agentgate/policies"
install -D -m 0644 packaging/debian/policy.yaml "$stage/etc/agentgate/policy.yaml"
echo /etc/agentgate/policy.yaml >"$stage/DEBIAN/conffiles"

# systemd units, as packaging/systemd has them.
for unit in packaging/systemd/*; do
    install -D -m 0644 "$unit" "$stage/usr/lib/systemd/system/$(basename "$unit")"
done

# Man pages and completions, from the argument parser of the binary being packaged. The
# program's name picks the command, so agentgate-supervise is run through a link of that name.
generated=$(mktemp -d)
ln -s "$bin" "$generated/agentgate"
ln -s "$bin" "$generated/agentgate-supervise"
date=$(git log -1 --format=%cs 2>/dev/null || date -u +%F)
man="$stage/usr/share/man"
mkdir -p "$man/man1" "$man/man5"
for name in agentgate agentgate-supervise; do
    "$generated/$name" --experimental-dump-help >"$generated/$name.json"
    python3 packaging/debian/manpage.py "$generated/$name.json" --version "$version" --date "$date" \
        >"$generated/$name.1"
    # bash-completion sources its files: no #! line (lintian: bash-completion-with-hashbang).
    "$generated/$name" --generate-completion-script bash | sed '1{/^#!/d}' >"$generated/$name.bash"
    "$generated/$name" --generate-completion-script zsh >"$generated/$name.zsh"
    "$generated/$name" --generate-completion-script fish >"$generated/$name.fish"
    install -D -m 0644 "$generated/$name.bash" "$stage/usr/share/bash-completion/completions/$name"
    install -D -m 0644 "$generated/$name.zsh" "$stage/usr/share/zsh/vendor-completions/_$name"
    install -D -m 0644 "$generated/$name.fish" "$stage/usr/share/fish/vendor_completions.d/$name.fish"
    install -m 0644 "$generated/$name.1" "$man/man1/$name.1"
done
sed -e "s/@VERSION@/$version/g" packaging/debian/agentgate-policy.5 >"$man/man5/agentgate-policy.5"
for page in "$man"/man1/*.1 "$man"/man5/*.5; do
    warnings=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null) || fail "man -l $page failed: $warnings"
    warnings+=$(groff -ww -z -man -Tutf8 "$page" 2>&1)
    [ -z "$warnings" ] || fail "man -l $page warns:
$warnings"
    gzip -9n "$page"
done

# Documentation, where lintian looks for it.
doc="$stage/usr/share/doc/agentgate"
install -D -m 0644 packaging/debian/copyright "$doc/copyright"
install -m 0644 README.md "$doc/README.md"
changed=$(git log -1 --format=%cD 2>/dev/null || date -u -R)
maintainer=$(sed -n 's/^Maintainer: //p' packaging/debian/control.in)
# The version has no Debian revision (the package is native), so its changelog is changelog.gz.
printf 'agentgate (%s) unstable; urgency=medium\n\n  * Built from commit %s by scripts/build-deb.sh.\n\n -- %s  %s\n' \
    "$version" "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" "$maintainer" "$changed" |
    gzip -9n >"$doc/changelog.gz"
# Yams bundles libyaml, linked in statically like every Swift package.
install -D -m 0644 packaging/debian/lintian-overrides "$stage/usr/share/lintian/overrides/agentgate"

# Everything root's, nothing writable but by the owner.
chmod -R u=rwX,go=rX "$stage"
chmod 0755 "$stage/usr/bin/agentgate"

# Depends: what dpkg-shlibdeps derives from the binary's libraries (libc6, libgcc-s1,
# libstdc++6, libseccomp2, libcap2, libsqlite3-0), checked to name the ones it must.
shlibs=$(mktemp -d)
mkdir "$shlibs/debian"
printf 'Source: agentgate\n\nPackage: agentgate\nArchitecture: amd64\n' >"$shlibs/debian/control"
depends=$(cd "$shlibs" && dpkg-shlibdeps -O "$stage/usr/bin/agentgate" 2>"$shlibs/log") ||
    { cat "$shlibs/log" >&2; rm -rf "$shlibs"; fail "dpkg-shlibdeps failed"; }
rm -rf "$shlibs"
depends=${depends#shlibs:Depends=}
for required in libc6 libseccomp2 libcap2 libsqlite3-0; do
    [[ ", $depends" == *", $required "* || ", $depends," == *", $required,"* ]] ||
        fail "Depends ($depends) does not name $required"
done

# Installed-Size as dpkg-gencontrol counts it: KiB per file rounded up, 1 per directory or link.
installed_size=$(cd "$stage" && find . -path ./DEBIAN -prune -o -printf '%y %s\n' |
    awk '$1 == "f" { kib += int(($2 + 1023) / 1024); next } { kib += 1 } END { print kib }')
sed -e "s/@VERSION@/$version/" -e "s/@INSTALLED_SIZE@/$installed_size/" -e "s/@DEPENDS@/$depends/" \
    packaging/debian/control.in >"$stage/DEBIAN/control"
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) \
    >"$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/"*

deb="$out/$package.deb"
# xz as Debian ships packages; the unoptimized CI build only goes to the install test, and xz
# spends a minute on its 117 MB binary where gzip -1 takes seconds.
compression=(-Zxz)
[ "$configuration" = debug ] && compression=(-Zgzip -z1)
dpkg-deb --root-owner-group "${compression[@]}" --build "$stage" "$deb" >/dev/null
rm -rf "$stage"
echo "build-deb: $deb: $(( $(stat -c %s "$deb") / 1024 )) KiB; /usr/bin/agentgate $(( stripped / 1024 )) KiB" \
    "($(( $(stat -c %s "$bin") / 1024 )) KiB before strip), Installed-Size $installed_size KiB"
echo "build-deb: Depends: $depends"
