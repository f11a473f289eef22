#!/usr/bin/env bash
# Installs what ElasticProxy needs to build, test and run its demo on Debian 12, from Debian's
# packages only. Idempotent: does nothing when everything is present.
set -euo pipefail

packages=(
  # build
  cmake g++ make ninja-build pkg-config
  # packaging (`make deb`: dpkg-shlibdeps computes the Depends)
  dpkg-dev
  # libraries (third-party code is only ever linked, never vendored)
  libfmt-dev libspdlog-dev libyaml-cpp-dev nlohmann-json3-dev libcli11-dev
  libcurl4-openssl-dev libssl-dev libpugixml-dev libc-ares-dev libsystemd-dev
  libmicrohttpd-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # fuzzing (libFuzzer: clang + its runtime) and symbolized sanitizer reports (llvm-symbolizer)
  clang libclang-rt-14-dev llvm-14
  # real components the tests and the demo start on loopback
  haproxy etcd-server etcd-client dnsmasq-base wrk socat curl openssl
  # the dashboard's browser tests (tests/browser: Debian's headless chromium, driven by
  # playwright-core from npm, which never downloads a browser; they need Node.js >= 20 with npm,
  # which the machine provides: Debian 12's nodejs is 18)
  chromium chromium-driver
  # the AWS double read by botocore (its service models parse the double's replies)
  python3-botocore
  # real Kubernetes clients that check the Kubernetes API double (tests/support/kubernetes)
  python3 python3-kubernetes
  # benchmark plots (make bench)
  gnuplot-nox
  # make test-haproxy3: scripts/haproxy3.sh checks trixie's signed source index with its keys
  # (building HAProxy 3.0 itself needs only make, gcc and libssl-dev, listed above)
  debian-archive-keyring
)

# kubectl: Debian's kubernetes-client, unless a kubectl is already installed (another package's
# kubectl conflicts with it).
if ! command -v kubectl >/dev/null 2>&1; then packages+=(kubernetes-client); fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts services on install; the tests start their own on loopback.
for svc in haproxy etcd; do
  if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || true
  fi
done
echo "install-deps: done"
