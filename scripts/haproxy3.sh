#!/usr/bin/env bash
# Builds a second HAProxy, the one of Debian 13 (trixie), for tests and benchmarks next to the
# system's 2.6 (docs/haproxy-runtime.md, "Versions"). Prints the binary's path on stdout.
#
# The source comes the Debian way and from nowhere else: `apt-get source --download-only haproxy`
# against trixie's deb-src, under a private apt configuration (own sources.list, lists, cache and
# status; the machine's apt sources, lists and settings are neither read nor changed). apt checks
# the Release signature with the trixie keys of debian-archive-keyring and each file's checksum.
# The upstream tarball (haproxy_<v>.orig.tar.gz) is built with
# `make TARGET=linux-glibc USE_OPENSSL=1` into a cache directory that survives `make clean`:
#   ${EP_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/elasticproxy}/haproxy-<upstream version>/haproxy
# A second run prints the path at once (no network). Options:
#   --refresh   ask apt again for the newest trixie version (rebuilds only if it changed)
#   --quiet     no progress on stderr
# Environment: EP_DEBIAN_MIRROR overrides the archive URI (default: the URI of the machine's own
# Debian source, so the same mirror or proxy is used); EP_HAPROXY3_SUITE (default trixie).
set -euo pipefail

refresh=0
quiet=0
for arg in "$@"; do
  case "$arg" in
    --refresh) refresh=1 ;;
    --quiet) quiet=1 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "haproxy3.sh: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
  esac
done

say() { if [ "$quiet" -eq 0 ]; then echo "haproxy3.sh: $*" >&2; fi; }
die() { echo "haproxy3.sh: error: $*" >&2; exit 1; }

suite="${EP_HAPROXY3_SUITE:-trixie}"
cache="${EP_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/elasticproxy}"
mkdir -p "$cache"

# Newest built binary of the wanted major (3.x) in the cache, if any.
cached_binary() {
  local best
  best=$(ls -d "$cache"/haproxy-3.* 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$best" ] && [ -x "$best/haproxy" ]; then echo "$best/haproxy"; fi
}

if [ "$refresh" -eq 0 ]; then
  found=$(cached_binary)
  if [ -n "$found" ]; then echo "$found"; exit 0; fi
fi

# Serialise concurrent runs (two test jobs asking at once build once).
exec 9>"$cache/.haproxy3.lock"
flock 9
if [ "$refresh" -eq 0 ]; then
  found=$(cached_binary)
  if [ -n "$found" ]; then echo "$found"; exit 0; fi
fi

# ---- the archive URI: the machine's own Debian source unless overridden ----
mirror="${EP_DEBIAN_MIRROR:-}"
if [ -z "$mirror" ]; then
  # deb822 (.sources): the URIs of a stanza whose Suites name a release without -security.
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    mirror=$(awk '
      /^[[:space:]]*$/ { if (uri != "" && main) { print uri; exit } uri=""; main=0; next }
      /^URIs:/ { uri=$2 }
      /^Suites:/ { for (i = 2; i <= NF; i++) if ($i !~ /-security$/ && $i !~ /-updates$/) main=1 }
      END { if (uri != "" && main) print uri }' "$f" | grep -v -- '-security' | head -n 1 || true)
    [ -n "$mirror" ] && break
  done
fi
if [ -z "$mirror" ]; then
  # one-line format: "deb [opts] URI suite components"
  mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    awk '$1 == "deb" || $1 == "deb-src" { for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) { print $i; break } }' |
    grep -v -- '-security' | head -n 1 || true)
fi
[ -n "$mirror" ] || die "no Debian archive URI found in /etc/apt/sources.list{,.d}; set EP_DEBIAN_MIRROR"

keyring=""
for k in "/usr/share/keyrings/debian-archive-$suite-stable.gpg" /usr/share/keyrings/debian-archive-keyring.gpg; do
  if [ -f "$k" ]; then keyring="$k"; break; fi
done
[ -n "$keyring" ] || die "no Debian archive keyring for $suite (install debian-archive-keyring)"
# trixie's Release is signed by its automatic and stable keys; give apt every trixie key file.
keys=$(ls /usr/share/keyrings/debian-archive-"$suite"-*.gpg 2>/dev/null | grep -v security | paste -sd, - || true)
[ -n "$keys" ] || keys="$keyring"

command -v apt-get >/dev/null || die "apt-get not found (this script needs Debian's apt)"
command -v make >/dev/null && command -v gcc >/dev/null || die "make and gcc are needed (scripts/install-deps.sh)"
[ -f /usr/include/openssl/ssl.h ] || die "OpenSSL headers missing (apt-get install libssl-dev, scripts/install-deps.sh)"

# ---- private apt configuration ----
apt_root="$cache/apt-$suite"
mkdir -p "$apt_root"/{etc/apt.conf.d,etc/preferences.d,etc/trusted.gpg.d,lists/partial,cache/archives/partial,state}
touch "$apt_root/state/status"
cat > "$apt_root/etc/sources.list" <<EOF
deb-src [signed-by=$keys] $mirror $suite main
EOF
cat > "$apt_root/apt.conf" <<EOF
Dir::Etc "$apt_root/etc";
Dir::Etc::main "$apt_root/etc/apt.conf";
Dir::Etc::Parts "$apt_root/etc/apt.conf.d";
Dir::Etc::sourcelist "$apt_root/etc/sources.list";
Dir::Etc::sourceparts "-";
Dir::Etc::preferences "$apt_root/etc/preferences";
Dir::Etc::preferencesparts "$apt_root/etc/preferences.d";
Dir::Etc::trusted "$apt_root/etc/trusted.gpg";
Dir::Etc::trustedparts "$apt_root/etc/trusted.gpg.d";
Dir::State "$apt_root/state";
Dir::State::lists "$apt_root/lists";
Dir::State::status "$apt_root/state/status";
Dir::Cache "$apt_root/cache";
Dir::Cache::archives "$apt_root/cache/archives";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Debug::NoLocking "true";
APT::Sandbox::User "root";
Acquire::Languages "none";
Acquire::IndexTargets::deb-src::Sources::DefaultEnabled "true";
EOF
touch "$apt_root/etc/apt.conf"
export APT_CONFIG="$apt_root/apt.conf"

say "apt-get update ($suite deb-src, private lists in $apt_root)"
apt-get -q update -o Debug::NoLocking=true >"$apt_root/update.log" 2>&1 ||
  { cat "$apt_root/update.log" >&2; die "apt-get update of the private $suite source list failed"; }
if grep -qE '^(W|E): ' "$apt_root/update.log"; then
  cat "$apt_root/update.log" >&2
  die "apt-get update reported warnings or errors (signature or checksum); refusing to build"
fi

deb_version=$(apt-cache showsrc haproxy 2>/dev/null | awk '/^Version:/ { print $2 }' | sort -V | tail -n 1)
[ -n "$deb_version" ] || die "no haproxy source package in $suite"
upstream=${deb_version#*:}
upstream=${upstream%-*}
dest="$cache/haproxy-$upstream"
if [ -x "$dest/haproxy" ]; then echo "$dest/haproxy"; exit 0; fi

work="$cache/src-haproxy-$deb_version"
rm -rf "$work"
mkdir -p "$work"
say "apt-get source --download-only haproxy=$deb_version"
# Only the upstream tarball is built (no Debian patches: this HAProxy is for tests and benchmarks).
# Some archive mirrors and proxies serve the .orig tarball but not the .dsc or .debian.tar.xz of a
# point release; apt still checks every file it does fetch against the signed Sources index, so a
# failure that leaves the tarball in place is accepted and the tarball is checked again below.
if ! (cd "$work" && apt-get -q source --download-only "haproxy=$deb_version" >"$work/source.log" 2>&1); then
  if grep -q 'Hash Sum mismatch\|Hashes of expected file' "$work/source.log"; then
    cat "$work/source.log" >&2; die "apt-get source: checksum mismatch"
  fi
  say "apt-get source fetched only part of the source package (see $work/source.log); using the upstream tarball"
fi
tarball=$(ls "$work"/haproxy_"$upstream".orig.tar.* 2>/dev/null | head -n 1 || true)
[ -n "$tarball" ] || { cat "$work/source.log" >&2; die "no upstream tarball haproxy_$upstream.orig.tar.* in $work"; }
# The tarball's SHA-256 and size as listed in trixie's Sources index, whose signature apt-get update
# verified with the trixie archive keys: a truncated or altered file is never built.
want=$(apt-cache showsrc haproxy 2>/dev/null |
  awk -v name="$(basename "$tarball")" '/^Checksums-Sha256:/ { f=1; next } /^[^ ]/ { f=0 } f && $3 == name { print $1; exit }')
have=$(sha256sum "$tarball" | awk '{ print $1 }')
[ -n "$want" ] && [ "$want" = "$have" ] ||
  die "SHA-256 of $(basename "$tarball") ($have) does not match trixie's Sources index (${want:-none})"
say "$(basename "$tarball"): SHA-256 matches the signed Sources index"

mkdir -p "$work/src"
tar -xf "$tarball" -C "$work/src" --strip-components=1
jobs=$(nproc 2>/dev/null || echo 2)
say "building HAProxy $upstream (make TARGET=linux-glibc USE_OPENSSL=1, -j$jobs)"
start=$(date +%s)
(cd "$work/src" && nice -n 5 make -j"$jobs" TARGET=linux-glibc USE_OPENSSL=1 >"$work/build.log" 2>&1) ||
  { tail -n 40 "$work/build.log" >&2; die "HAProxy build failed (log: $work/build.log)"; }
say "built in $(( $(date +%s) - start )) s"

rm -rf "$dest".tmp.*
tmp="$dest.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp"
cp "$work/src/haproxy" "$tmp/haproxy"
echo "$deb_version" > "$tmp/debian-version"
"$tmp/haproxy" -v 2>&1 | sed -n 1p >&2
rm -rf "$dest"
mv "$tmp" "$dest"
rm -rf "$work"
echo "$dest/haproxy"
