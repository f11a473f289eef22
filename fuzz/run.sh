#!/usr/bin/env bash
# Runs every fuzzer in <build>/fuzz for <seconds> each, <jobs> at a time, and prints executions
# per target. Seeds: tests/testdata (copied into <build>/fuzz-seeds/<target>) plus the saved
# regression inputs in fuzz/corpus/<target>. The growing corpus lives in
# <build>/fuzz-corpus/<target>, crash inputs in <build>/fuzz-artifacts/. Exits 1 on any crash,
# leak, timeout or failed invariant.
# Usage: fuzz/run.sh <build-dir> <seconds-per-target> <parallel-jobs> [target...]
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:?build dir} seconds=${2:?seconds} jobs=${3:-2}
shift 3 || true
td=tests/testdata

# target -> seed globs (relative to tests/testdata or the repository).
declare -A seeds=(
  [config_yaml]="$td/config/*.yaml examples/*.yaml packaging/elasticproxy.yaml"
  [ep2]="$td/ep2/*.conf"
  [file_sd]="$td/file/* examples/web.json"
  [consul]="$td/consul/*"
  [etcd_json]="$td/etcd/*"
  [etcd_stream]="$td/etcd/watch_*.txt"
  [kubernetes]="$td/kubernetes/*"
  [aws_xml]="$td/aws/*.xml"
  [aws_json]="$td/aws/*.json"
  [dns]="$td/dns/*.bin"
  [haproxy_show_info]="$td/haproxy/show_info_*"
  [haproxy_servers_state]="$td/haproxy/servers_state_*"
  [haproxy_show_stat]="$td/haproxy/show_stat_*"
  [haproxy_replies]=""
  [admin_socket]="$td/haproxy/prompt_session_*"
  [ops_http]=""
  [template]="$td/templates/*.tmpl examples/haproxy.cfg.tmpl"
)

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for bin in "$build"/fuzz/*_fuzzer; do
    [ -x "$bin" ] && targets+=("$(basename "$bin" _fuzzer)")
  done
fi
if [ ${#targets[@]} -eq 0 ]; then
  echo "fuzz: no fuzzers in $build/fuzz (make fuzz-build)" >&2
  exit 1
fi

mkdir -p "$build/fuzz-logs" "$build/fuzz-artifacts"
for t in "${targets[@]}"; do
  mkdir -p "$build/fuzz-seeds/$t" "$build/fuzz-corpus/$t"
  for f in ${seeds[$t]:-}; do
    [ -f "$f" ] && cp -f "$f" "$build/fuzz-seeds/$t/$(echo "$f" | tr / _)"
  done
done

run_one() {
  local build=$1 seconds=$2 t=$3
  local extra=()
  [ -d "fuzz/corpus/$t" ] && extra+=("fuzz/corpus/$t")
  [ -f "fuzz/dict/$t.dict" ] && extra=("-dict=fuzz/dict/$t.dict" "${extra[@]}")
  "$build/fuzz/${t}_fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -max_len=65536 -print_final_stats=1 -artifact_prefix="$build/fuzz-artifacts/$t-" \
    "$build/fuzz-corpus/$t" "$build/fuzz-seeds/$t" "${extra[@]}" \
    >"$build/fuzz-logs/$t.log" 2>&1
  echo $? >"$build/fuzz-logs/$t.rc"
}
export -f run_one

echo "fuzz: ${#targets[@]} targets x ${seconds}s, $jobs at a time (logs: $build/fuzz-logs)"
printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'run_one "$@"' _ "$build" "$seconds" {}

status=0
summary="$build/fuzz-summary.txt"
printf '%-24s %12s %8s %8s %s\n' target executions exec/s corpus result | tee "$summary"
for t in "${targets[@]}"; do
  log="$build/fuzz-logs/$t.log"
  rc=$(cat "$build/fuzz-logs/$t.rc" 2>/dev/null || echo 99)
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | awk '{print $2}' | tail -1)
  rate=$(grep -oE 'stat::average_exec_per_sec: +[0-9]+' "$log" | awk '{print $2}' | tail -1)
  corpus=$(ls "$build/fuzz-corpus/$t" | wc -l)
  result=ok
  if [ "$rc" != 0 ]; then
    result="FAILED (rc $rc): $(grep -m1 -E 'ERROR: |invariant failed|runtime error' "$log")"
    status=1
  fi
  printf '%-24s %12s %8s %8s %s\n' "$t" "${execs:-?}" "${rate:-?}" "$corpus" "$result" | tee -a "$summary"
done
if [ $status -ne 0 ]; then
  echo "fuzz: crash inputs in $build/fuzz-artifacts/; reproduce with $build/fuzz/<target>_fuzzer <file>" >&2
fi
exit $status
