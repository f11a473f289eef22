#!/usr/bin/env bash
# The figures quoted in README.md and docs/*.md that come from tests (not from ep_bench_e2e):
# runs each figure-printing test, keeps its whole output in <data>/figures_<name>.log and prints a
# Markdown table of the figure lines the test printed (bench/run.sh --steps figures renders it as
# a section of RESULTS.md; make bench-figures).
#
#   bench/figures.sh --build DIR --data DIR [--only a,b]
#
# A figure line is a line of the test's stdout matching the entry's pattern; a test that printed
# none, or failed, is reported as such in the table (never silently dropped).
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
build=""
data=""
only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build="$(cd "$2" && pwd)"; shift ;;
    --data) data="$2"; shift ;;
    --only) only="$2"; shift ;;
    *) echo "usage: bench/figures.sh --build DIR --data DIR [--only a,b]" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$build" ] && [ -n "$data" ] || { echo "figures.sh: --build and --data are required" >&2; exit 2; }
mkdir -p "$data"
rel() { local p="$1"; echo "${p#"$root"/}"; }

# name ; environment (or -) ; test binary under the build dir ; gtest filter ; figure pattern (ERE) ; quoted in
figures=(
"consul_frozen;EP_FROZEN_TRIALS=10;tests/integration/consul/consul_source_test;*FrozenAgent*:*Sigstop*;^(frozen agent|SIGSTOP);docs/consul.md (A frozen agent)"
"consul_frozen_e2e;-;tests/integration/consul_e2e/consul_haproxy_e2e_test;*FrozenAgent*;^frozen agent;docs/consul.md (A frozen agent)"
"consul_shared_frozen;-;tests/integration/consul/consul_shared_watch_test;*Frozen*;^shared hub, frozen;docs/consul.md (A frozen agent)"
"consul_latency;-;tests/integration/consul/consul_source_test;*RegistrationLatencyOverFiftyChanges*;^registration -> sink;docs/consul.md (watch modes table)"
"consul_shared_latency;-;tests/integration/consul/consul_shared_watch_test;*LatencyOverFiftyRegistrations*:*TwoHundredServices*;^shared hub;docs/consul.md (watch modes table)"
"consul_churn;-;tests/integration/consul_e2e/consul_churn_e2e_test;*;^churn at defaults;docs/consul.md (Rate limiting)"
"etcd_sigstop;-;tests/integration/etcd/etcd_source_test;*Sigstop*:*PutToSinkLatency*;^etcd ;docs/etcd.md (Failure behaviour, Figures)"
"dns_sigstop;-;tests/integration/dns/dns_source_test;DnsSourceStopped*;^dnsmasq SIGSTOP;docs/dns.md (A frozen resolver)"
"etcd_e2e;-;tests/integration/etcd/etcd_dns_haproxy_e2e_test;*EtcdAndDnsSourcesDriveHaproxy*;^etcd put -> HAProxy;docs/etcd.md (Figures)"
"k8s_watch_latency;-;tests/integration/kubernetes_e2e/kubernetes_haproxy_e2e_test;*FigureWatchEventToHaproxyLatency*;^FIGURE;docs/kubernetes.md (Figures)"
"k8s_shared_watch;-;tests/integration/kubernetes/kubernetes_source_test;*ServicesOfOneNamespaceShareOneWatch*;^FIGURE;docs/kubernetes.md (Figures)"
"aws_sqs_to_sink;-;tests/integration/aws/aws_asg_source_test;*MessageToPublishLatency*;^SQS message;docs/aws.md"
"aws_sigstop;-;tests/integration/aws/aws_asg_source_test;AsgSourceStopped.*;^AWS double SIGSTOP;docs/aws.md (A frozen endpoint)"
"aws_sqs_to_haproxy;-;tests/integration/aws_e2e/aws_haproxy_e2e_test;*MessageToHaproxyConvergenceLatency*:*LaunchHookLatency*:*TerminateHookCompletionLatency*:*TerminateHookLatencyWithASessionInFlight*;(^SQS message|hook message ->);README.md (AWS), docs/aws.md"
"reload_under_load;-;tests/integration/reload/reload_integration_test;*UnderLoad*;^\\[figure\\];docs/config-management.md (Figures)"
"reload_burst;-;tests/integration/reload/reload_e2e_test;*Burst*;^\\[figure\\];docs/config-management.md (Figures)"
"runtime_thousand_adds;-;tests/integration/haproxy_runtime/haproxy_runtime_integration_test;*ThousandAddsInOneApply*;took [0-9.]+ ms;docs/haproxy-runtime.md"
"fault_table;-;tests/integration/faults/fault_suite_test;*;^FAULT-ROW;docs/hardening.md (Fault table)"
"config_render;-;tests/unit/haproxy_config/haproxy_config_writer_test;*ThousandServersRenderValidateWriteTiming*;^1000 servers;README.md (config management), docs/config-management.md"
)

want() { [ -z "$only" ] || [[ ",$only," == *",$1,"* ]]; }
md_escape() { sed -e 's/|/\\|/g'; }

echo "| figure | printed by the test (verbatim) | command | result |"
echo "|---|---|---|---|"
for entry in "${figures[@]}"; do
  IFS=';' read -r name envs bin filter pattern where <<< "$entry"
  want "$name" || continue
  log="$data/figures_$name.log"
  exe="$build/$bin"
  cmd="$(rel "$exe") --gtest_filter='$filter'"
  [ "$envs" != - ] && cmd="$envs $cmd"
  echo "figures.sh: $name: $cmd" >&2
  t0=$(date +%s)
  if [ ! -x "$exe" ]; then
    echo "$exe is not built" > "$log"; rc=127
  else
    # shellcheck disable=SC2086
    (cd "$build" && if [ "$envs" != - ]; then env $envs "$exe" --gtest_filter="$filter"; else "$exe" --gtest_filter="$filter"; fi) > "$log" 2>&1
    rc=$?
  fi
  secs=$(( $(date +%s) - t0 ))
  lines="$(grep -E "$pattern" "$log" | sed -e 's/[[:space:]]*$//' | md_escape | awk 'NR > 1 { printf "<br>" } { printf "%s", $0 }')"
  [ -n "$lines" ] || lines="*(no figure printed)*"
  if [ $rc = 0 ]; then result="passed, $secs s"; else result="**exit $rc** (see data/figures_$name.log), $secs s"; fi
  echo "| \`$name\` — $where | $lines | \`$(echo "$cmd" | md_escape)\` | $result |"
done
