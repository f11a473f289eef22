#!/usr/bin/env bash
# Installs the freshly built elasticproxy .deb into this system with apt (so its declared
# dependencies are what gets installed), checks the installed files, runs the binary on the
# shipped configuration, and purges the package again. Needs root (or sudo): meant for CI's
# throwaway machines.
set -euo pipefail

dir=${1:?usage: test-deb.sh <directory with the .deb>}
deb=$(ls -1t "$dir"/elasticproxy_*.deb | head -n 1)
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

fail() { echo "test-deb: FAIL: $*" >&2; exit 1; }
step() { echo "test-deb: $*"; }

step "package: $deb"
dpkg-deb --field "$deb" Package Version Depends Recommends | sed 's/^/  /'
depends=$(dpkg-deb --field "$deb" Depends)
case "$depends" in *libc6*) ;; *) fail "Depends does not list libc6: shlibdeps did not run" ;; esac
dpkg-deb --contents "$deb" | awk '{print $6}' > /tmp/test-deb.contents
for f in ./usr/bin/elasticproxy ./usr/lib/systemd/system/elasticproxy.service \
         ./usr/share/man/man8/elasticproxy.8.gz ./etc/elasticproxy/elasticproxy.yaml \
         ./usr/share/doc/elasticproxy/examples/haproxy.cfg.example; do
  grep -qx "$f" /tmp/test-deb.contents || fail "$f missing from the package"
done

if dpkg-query -W -f='${Status}' elasticproxy 2>/dev/null | grep -q "install ok installed"; then
  step "removing an elasticproxy already installed"
  $SUDO apt-get purge -y -qq elasticproxy >/dev/null
fi

cleanup() { $SUDO apt-get purge -y -qq elasticproxy >/dev/null 2>&1 || true; }
trap cleanup EXIT

step "installing with apt (declared dependencies only)"
$SUDO apt-get install -y -qq --no-install-recommends "$(realpath "$deb")" >/dev/null

command -v elasticproxy >/dev/null || fail "elasticproxy not on PATH after install"
[ "$(command -v elasticproxy)" = /usr/bin/elasticproxy ] || fail "not installed to /usr/bin"
version=$(elasticproxy --version)
step "elasticproxy --version: $version"
case "$version" in "elasticproxy $(dpkg-deb --field "$deb" Version)"*) ;; *) fail "version mismatch" ;; esac
ldd /usr/bin/elasticproxy | grep -q "not found" && fail "unresolved shared libraries: $(ldd /usr/bin/elasticproxy | grep 'not found')"

step "elasticproxy check -c /etc/elasticproxy/elasticproxy.yaml"
elasticproxy check -c /etc/elasticproxy/elasticproxy.yaml || fail "the shipped configuration does not validate"
step "elasticproxy check on every installed example and every yaml block of the installed docs"
"$(dirname "$0")/../scripts/check-examples.sh" /usr/bin/elasticproxy \
  /usr/share/doc/elasticproxy/examples /usr/share/doc/elasticproxy || fail "a shipped example or doc snippet does not validate"
getent passwd elasticproxy >/dev/null || fail "the elasticproxy user was not created"
man -w elasticproxy >/dev/null 2>&1 || [ -f /usr/share/man/man8/elasticproxy.8.gz ] || fail "man page missing"
if command -v systemd-analyze >/dev/null; then
  # Unit syntax (the service's binary and paths exist now).
  systemd-analyze verify /usr/lib/systemd/system/elasticproxy.service 2>&1 | grep -v "^$" | sed 's/^/  /' || true
fi

step "removing"
$SUDO apt-get purge -y -qq elasticproxy >/dev/null
trap - EXIT
[ ! -e /usr/bin/elasticproxy ] || fail "binary left behind after purge"
[ ! -e /etc/elasticproxy/elasticproxy.yaml ] || fail "configuration left behind after purge"
step "OK"
