#!/usr/bin/env bash
# Runs every benchmark and writes RESULTS.md + PNG plots from what the run measured.
#
#   bench/run.sh [--quick] [--build DIR] [--tests-build DIR] [--out DIR] [--steps a,b] [--render-only]
#
# Full (make bench): n = 200 convergence samples per source, 60 s of churn per mode, 60 s of idle
# CPU; writes bench/RESULTS.md and bench/*.png. Quick (make bench-quick, < 3 minutes once built):
# fewer samples, 10 s of churn, 15 s of idle CPU; writes <build>/bench-quick/RESULTS.md unless
# --out is given. The binaries must be built (the Makefile targets do that).
# --steps scale (make bench-scale): runs only the listed steps, keeps the other steps' data and
# re-renders RESULTS.md; every section carries the commit, time and load of its own run.
# --steps figures (make bench-figures): the figures README.md and docs/*.md quote from tests —
# bench/figures.sh runs the figure-printing tests of --tests-build (default: --build) and writes
# data/figures.md (+ data/figures_<name>.log, each test's whole output); section 7 of RESULTS.md.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
quick=0
render_only=0
steps=""
build="$root/build-bench"
tests_build=""
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --build) build="$(cd "$2" && pwd)"; shift ;;
    --tests-build) tests_build="$(cd "$2" && pwd)"; shift ;;
    --out) out="$2"; shift ;;
    --render-only) render_only=1 ;;  # rebuild RESULTS.md and plots from <out>/data
    --steps) steps="$2"; shift ;;
    *) echo "usage: bench/run.sh [--quick] [--build DIR] [--tests-build DIR] [--out DIR] [--steps a,b] [--render-only]" >&2; exit 2 ;;
  esac
  shift
done
want() { [ -z "$steps" ] || [[ ",$steps," == *",$1,"* ]]; }
if [ -z "$out" ]; then
  if [ $quick = 1 ]; then out="$build/bench-quick"; else out="$here"; fi
fi
mkdir -p "$out"
out="$(cd "$out" && pwd)"
# Raw data (tables, samples, step logs) next to RESULTS.md: the plots' sources.
data="$out/data"
mkdir -p "$data"

e2e="$build/bench/ep_bench_e2e"
hot="$build/bench/ep_bench_hotpaths"
ep="$build/src/app/elasticproxy"
[ -n "$tests_build" ] || tests_build="$build"
for b in "$e2e" "$hot" "$ep"; do
  [ "$steps" = figures ] && [ "$b" != "$ep" ] && continue  # figures runs tests only
  [ "$b" = "$hot" ] && [ -n "$steps" ] && [[ ",$steps," != *",hotpaths,"* ]] && continue
  [ -x "$b" ] || { echo "run.sh: $b is not built (make bench or make bench-quick)" >&2; exit 1; }
done
# The HAProxy measured: $EP_HAPROXY (e.g. scripts/haproxy3.sh's 3.0), else the system's.
haproxy_bin="${EP_HAPROXY:-haproxy}"
command -v "$haproxy_bin" >/dev/null || { echo "run.sh: $haproxy_bin not found (make deps)" >&2; exit 1; }
for t in wrk etcd gnuplot; do
  command -v "$t" >/dev/null || { echo "run.sh: $t not installed (make deps)" >&2; exit 1; }
done

if [ $quick = 1 ]; then
  label="quick (make bench-quick)"
  conv_n=30; conv_paced=5; churn_s=10; kinds_s=3; idle_s=15; hot_min=0.05; limit=5000
  cases=floor-dynamic:1000,direct-dynamic:1000,dynamic:1000,floor-slots:1000,direct-slots:1000,slots:1000; boot=1000x10; repeat=3
  scale_idle=20; scale_changes=200
else
  label="full (make bench)"
  conv_n=200; conv_paced=30; churn_s=60; kinds_s=10; idle_s=60; hot_min=0.5; limit=10000
  cases=floor-dynamic:1000,direct-dynamic:1000,dynamic:1000,floor-slots:1000,direct-slots:1000,slots:1000,floor-dynamic:10000,direct-dynamic:10000,dynamic:10000,floor-slots:10000,direct-slots:10000,slots:10000,direct-dynamic-reload:10000; boot=1000x10; repeat=3
  scale_idle=60; scale_changes=1000
fi

# Paths in RESULTS.md are relative to the repository, so the commands can be pasted.
rel() { local p="$1"; echo "${p#"$root"/}"; }
cmd_text() { local s=""; for a in "$@"; do s+="$(rel "$a") "; done; echo "${s% }"; }

commit_now() {
  local c
  c="$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  if [ -n "$(git -C "$root" status --porcelain --untracked-files=no -- . ':!bench/data' \
             ':!bench/RESULTS.md' ':!bench/*.png' 2>/dev/null || true)" ]; then
    c="$c (with uncommitted changes)"
  fi
  echo "$c"
}

# A whole run, or --steps into an output directory that has no run yet (make bench-haproxy3
# QUICK=1 on a fresh build tree): start the run's records.
fresh=0
if [ $render_only = 0 ] && { [ -z "$steps" ] || [ ! -s "$data/started" ]; }; then
  fresh=1
  rm -f "$data"/*
  c="$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  if [ -n "$(git -C "$root" status --porcelain --untracked-files=no -- . ':!bench/data' \
             ':!bench/RESULTS.md' ':!bench/*.png' 2>/dev/null || true)" ]; then
    c="$c (with uncommitted changes)"
  fi
  echo "$c" > "$data/commit"
  cut -d' ' -f1-3 /proc/loadavg > "$data/load_start"
  date -u '+%Y-%m-%d %H:%M:%S UTC' > "$data/started"
  date +%s > "$data/t_start"
fi

# Each step: the exact command (for RESULTS.md) and its stdout (a Markdown table).
run_step() {
  local name="$1"; shift
  want "$name" || return 0
  rm -f "$data/$name".* "$data/${name}"_*
  local l0; l0="$(cut -d' ' -f1-3 /proc/loadavg)"
  local s0; s0="$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "run.sh: $name: $(cmd_text "$@")" >&2
  cmd_text "$@" > "$data/$name.cmd"
  local t0=$(date +%s)
  if ! "$@" > "$data/$name.md" 2> "$data/$name.err"; then
    echo "run.sh: $name exited non-zero (see the table; stderr below)" >&2
    tail -20 "$data/$name.err" >&2
    echo "" >> "$data/$name.md"
    echo "*(this step exited non-zero; stderr: $(tail -1 "$data/$name.err" | cut -c1-200))*" >> "$data/$name.md"
  fi
  echo "$(( $(date +%s) - t0 ))" > "$data/$name.secs"
  echo "commit $(commit_now), $label, started $s0, load average $l0 → $(cut -d' ' -f1-3 /proc/loadavg)" \
    > "$data/$name.machine"
}

if [ $render_only = 0 ]; then
run_step hotpaths "$hot" --benchmark_min_time="$hot_min" --benchmark_format=console --benchmark_counters_tabular=true
run_step convergence "$e2e" convergence --n "$conv_n" --n-paced "$conv_paced" --sources file,consul,etcd,consul-paced --out "$data"
run_step bulk "$e2e" bulk --cases "$cases" --repeat "$repeat" --bootstrap "$boot" --summary "$data/bulk.sum"
# Section 3c: where one reload beats `add server` (the default haproxy.reload.bulk_threshold).
run_step bulkx "$e2e" bulk --cases direct-dynamic:1000,direct-dynamic-reload:1000,direct-dynamic:2000,direct-dynamic-reload:2000,direct-dynamic:4000,direct-dynamic-reload:4000 --bulk-threshold 1 --repeat "$repeat" --bootstrap none
# HAProxy 3.0 next to the system's (make bench-haproxy3): the same bulk cases in the same run,
# with EP_HAPROXY pointing at $EP_HAPROXY3 (scripts/haproxy3.sh's build). Skipped when unset.
if [ -n "${EP_HAPROXY3:-}" ] && want bulk3; then
  hav3="$("$EP_HAPROXY3" -v 2>/dev/null | sed -n 1p)"
  [ -n "$hav3" ] || { echo "run.sh: EP_HAPROXY3=$EP_HAPROXY3 does not run" >&2; exit 1; }
  run_step bulk3 env EP_HAPROXY="$EP_HAPROXY3" "$e2e" bulk --cases "$cases" --repeat "$repeat" --bootstrap "$boot" --summary "$data/bulk3.sum"
  echo "$hav3" > "$data/bulk3.haproxy"
  echo "EP_HAPROXY=\$(scripts/haproxy3.sh) $(rel "$e2e") bulk --cases $cases --repeat $repeat --bootstrap $boot --summary $(rel "$data")/bulk3.sum" \
    > "$data/bulk3.cmd"
fi
# Churn on HAProxy 3.0 (make bench-haproxy3): section 2's runtime and slot modes, same load.
if [ -n "${EP_HAPROXY3:-}" ] && want churn3; then
  hav3="$("$EP_HAPROXY3" -v 2>/dev/null | sed -n 1p)"
  [ -n "$hav3" ] || { echo "run.sh: EP_HAPROXY3=$EP_HAPROXY3 does not run" >&2; exit 1; }
  rm -rf "$data/churn3"
  mkdir -p "$data/churn3"
  run_step churn3 env EP_HAPROXY="$EP_HAPROXY3" "$e2e" churn --seconds "$churn_s" --interval-ms 100 --modes runtime,slots --out "$data/churn3"
  echo "$hav3" > "$data/churn3.haproxy"
  echo "EP_HAPROXY=\$(scripts/haproxy3.sh) $(rel "$e2e") churn --seconds $churn_s --interval-ms 100 --modes runtime,slots --out $(rel "$data")/churn3" \
    > "$data/churn3.cmd"
  for f in "$data"/churn3/*.log; do [ -f "$f" ] && gzip -9f "$f"; done
fi
run_step limit "$e2e" haproxy-limit --max "$limit"
run_step footprint "$e2e" footprint --idle-seconds "$idle_s" --servers 10000
run_step churn "$e2e" churn --seconds "$churn_s" --interval-ms 100 --modes runtime,slots,config,naive --out "$data"
run_step kinds "$e2e" server-kinds --seconds "$kinds_s"
run_step scale "$e2e" scale --backends 1000 --servers 10 --consul 1000 --changes "$scale_changes" \
  --idle-seconds "$scale_idle" --out "$data"
# The figures the docs quote from tests (make bench-figures): one Debug or Release test build.
run_step figures "$here/figures.sh" --build "$tests_build" --data "$data"

# Step logs are compressed, except the figures' (small, and linked from the docs).
for f in "$data"/*.log; do [ -f "$f" ] && [[ "$f" != */figures_*.log ]] && gzip -9f "$f"; done
if [ $fresh = 1 ]; then
  cut -d' ' -f1-3 /proc/loadavg > "$data/load_end"
  echo $(( $(date +%s) - $(cat "$data/t_start") )) > "$data/total"
fi
fi
load_start="$(cat "$data/load_start")"
load_end="$(cat "$data/load_end")"
started="$(cat "$data/started")"
total="$(cat "$data/total")"

# ---- plots -------------------------------------------------------------------------------------
plot_conv=""
for s in file consul etcd consul-paced; do
  f="$data/convergence_$s.dat"
  [ -s "$f" ] || continue
  case $s in file) t="file (inotify)";; consul) t="Consul double";; etcd) t="etcd (real)";;
    consul-paced) t="Consul double, default rate limit, 1.1 s apart";; esac
  [ $s = consul ] && t="Consul double, rate limit relaxed"
  plot_conv+="${plot_conv:+, }'$f' using 1:2 with steps lw 2 title '$t'"
done
if [ -n "$plot_conv" ]; then
  gnuplot <<EOF
set terminal pngcairo size 800,480 noenhanced
set output '$out/convergence_cdf.png'
set title 'Convergence latency: change at the source -> HAProxy confirms (CDF)'
set xlabel 'milliseconds (log scale)'
set ylabel 'fraction of changes'
set logscale x
set grid
set key bottom right
set yrange [0:1.02]
plot $plot_conv
EOF
fi
if [ -s "$data/churn.dat" ] && [ "$(grep -vc '^#' "$data/churn.dat")" -gt 0 ]; then
  gnuplot <<EOF
set terminal pngcairo size 1200,420 noenhanced
set output '$out/churn.png'
set multiplot layout 1,3 title 'Churn: backend set changes every 100 ms for ${churn_s} s under wrk load'
set style data histograms
set style fill solid 0.8 border -1
set boxwidth 0.6
set grid y
set yrange [0:*]
unset key
set title 'failed requests (non-2xx + socket errors)'
plot '$data/churn.dat' using 2:xtic(1) lc rgb '#c0392b'
set title 'p99 latency (ms)'
plot '$data/churn.dat' using 3:xtic(1) lc rgb '#2c7fb8'
set title 'requests served (thousands)'
plot '$data/churn.dat' using (\$6/1000):xtic(1) lc rgb '#31a354'
unset multiplot
EOF
fi

tl_active=""; tl_5xx=""
for m in runtime slots config naive; do
  f="$data/churn_${m}_timeline.dat"
  [ -s "$f" ] || continue
  tl_active+="${tl_active:+, }'$f' using 1:3 with steps title '$m'"
  tl_5xx+="${tl_5xx:+, }'$f' using 1:2 with lines lw 2 title '$m'"
done
if [ -n "$tl_active" ]; then
  gnuplot <<EOF
set terminal pngcairo size 1000,600 noenhanced
set output '$out/churn_timeline.png'
set multiplot layout 2,1 title 'Churn over time (HAProxy show stat, sampled every 100 ms)'
set grid
set key outside right
set ylabel 'UP servers in backend'
set yrange [0:*]
plot $tl_active
set xlabel 'seconds since the load started'
set ylabel '5xx answered by HAProxy (cumulative)'
plot $tl_5xx
unset multiplot
EOF
fi

# ---- RESULTS.md --------------------------------------------------------------------------------
cores="$(nproc)"
cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
mem="$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
hav="$("$haproxy_bin" -v 2>/dev/null | sed -n 1p || true)"
etv="$(etcd --version 2>/dev/null | sed -n 1p || true)"
wrv="$(wrk --version 2>&1 | sed -n 1p | cut -d' ' -f1-2 || true)"
epv="$("$ep" --version 2>/dev/null | sed -n 1p || true)"
# The commit measured: recorded when the run starts (outputs of earlier runs do not count as
# changes).
if [ ! -s "$data/commit" ]; then
  c="$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  if [ -n "$(git -C "$root" status --porcelain --untracked-files=no -- . ':!bench/data' \
             ':!bench/RESULTS.md' ':!bench/*.png' 2>/dev/null || true)" ]; then
    c="$c (with uncommitted changes)"
  fi
  echo "$c" > "$data/commit"
fi
commit="$(cat "$data/commit")"
dirty=""

# Section 3 (make bench-haproxy3): HAProxy 2.6 and 3.0 side by side, each ElasticProxy time next
# to the bare-client floor of the same run (data/bulk.sum, data/bulk3.sum: "<mode> <add|remove>
# <n> <ep|floor> <ms> <ok>"), with the targets of issue 15.
bulk_side_by_side() {
  [ -s "$data/bulk.sum" ] || return 0
  echo "## 3s. Bulk scale: HAProxy 2.6 and 3.0 side by side, next to the bare-client floor"
  echo ""
  echo "From the timed rows of sections 3 and 3a (median of the repeats; the run lines and load"
  echo "averages are theirs). *Floor*: a bare client (\`ep_bench_e2e bulk\` case \`floor-<mode>\`)"
  echo "sends the minimum commands for the same change on one connection, 500 per write, to a fresh"
  echo "HAProxy of the same config, timed the same way (until the bench's 5 ms poll of \`act\` sees"
  echo "it): slots \`set server <b>/<s> addr <ip> port <p>\` + \`state ready\` per server, removal"
  echo "\`state maint\`; dynamic \`add server\` + \`state ready\`, removal \`state maint\` + \`del"
  echo "server\`. *dynamic-reload*: dynamic mode with config management (template, config, master CLI;"
  echo "\`update: auto\`) and the default \`haproxy.reload.bulk_threshold\`: the 10,000 are one rendered,"
  echo "validated, confirmed reload instead of \`add server\` each (no floor: compare with the dynamic"
  echo "floor above it); its removal is \`del server\` at runtime."
  echo "÷ = ElasticProxy ÷ floor. Targets (issue 15): 10,000 added ≤ 1 s on 3.0 and"
  echo "≤ 2.5 s on 2.6, 10,000 removed ≤ 1 s, ElasticProxy ÷ floor ≤ 1.5× in slot mode; 1,000 ≤ 100 ms."
  echo ""
  echo "| change | 2.6 ElasticProxy ms | 2.6 floor ms | 2.6 ÷ | 3.0 ElasticProxy ms | 3.0 floor ms | 3.0 ÷ | targets |"
  echo "|---|---|---|---|---|---|---|---|"
  awk '
    FNR == 1 { v = (FILENAME ~ /bulk3\.sum$/) ? "3" : "2" }
    { k = $1 " " $2 " " $3; ms[v, k, $4] = $5; ok[v, k, $4] = $6; if (!(k in seen)) { seen[k] = 1; order[++n] = k } }
    function cell(v, k, w) { return ((v, k, w) in ms) ? (ok[v, k, w] == 1 ? ms[v, k, w] : "FAILED " ms[v, k, w]) : "–" }
    function ratio(v, k) { return ((v, k, "ep") in ms && (v, k, "floor") in ms && ms[v, k, "floor"] > 0) ? sprintf("%.2f×", ms[v, k, "ep"] / ms[v, k, "floor"]) : "–" }
    function verdict(v, k, limit, m) {
      if (!((v, k, "ep") in ms)) return ""
      m = (ok[v, k, "ep"] == 1 && ms[v, k, "ep"] <= limit) ? "met" : "**missed**"
      return (v == "3" ? "3.0" : "2.6") " ≤ " limit " ms: " m
    }
    function rverdict(v, k, r) {
      if (!((v, k, "ep") in ms && (v, k, "floor") in ms && ms[v, k, "floor"] > 0)) return ""
      r = ms[v, k, "ep"] / ms[v, k, "floor"]
      return (v == "3" ? "3.0" : "2.6") " ÷ ≤ 1.5: " (r <= 1.5 ? "met" : "**missed**")
    }
    END {
      for (i = 1; i <= n; ++i) {
        k = order[i]; split(k, p, " ")
        big = p[3] + 0 >= 10000
        l2 = !big ? 100 : (p[2] == "add" ? 2500 : 1000)
        l3 = !big ? 100 : 1000
        t = verdict("2", k, l2); t3 = verdict("3", k, l3)
        if (t3 != "") t = t (t == "" ? "" : "; ") t3
        if (p[1] == "dynamic" && big && p[2] == "add") {
          # Runtime commands only (no config management): the add server floor beside it is
          # above the target whatever the client; the default path with config management is
          # one reload (row dynamic-reload), which the target applies to.
          t = "target applies to the default path, one reload (row dynamic-reload): `add server` alone, the floor, is above it"
        }
        if (p[1] == "slots" && big) {
          r2 = rverdict("2", k); r3 = rverdict("3", k)
          if (r2 != "") t = t "; " r2
          if (r3 != "") t = t "; " r3
        }
        printf "| %s servers %s, %s | %s | %s | %s | %s | %s | %s | %s |\n", p[3], (p[2] == "add" ? "added" : "removed"), p[1], \
          cell("2", k, "ep"), cell("2", k, "floor"), ratio("2", k), cell("3", k, "ep"), cell("3", k, "floor"), ratio("3", k), t
      }
    }' "$data/bulk.sum" $( [ -s "$data/bulk3.sum" ] && echo "$data/bulk3.sum")
  echo ""
}

section() {  # name title explanation
  local name="$1" title="$2" text="$3"
  echo "## $title"
  echo ""
  if [ ! -s "$data/$name.md" ]; then  # a --steps run into a fresh directory
    echo "*(not measured in this directory: \`bench/run.sh --steps $name\`)*"
    echo ""
    return 0
  fi
  echo "$text"
  echo ""
  echo '```'
  cat "$data/$name.cmd"
  echo '```'
  echo ""
  if [ -s "$data/$name.machine" ]; then
    echo "*Run: $(cat "$data/$name.machine"); $cores × $cpu; $hav.*"
    echo ""
  fi
  if [ "$name" = hotpaths ]; then
    echo '```'
    grep -v '^\*\*\*' "$data/$name.md" || true
    echo '```'
  else
    cat "$data/$name.md"
  fi
  echo ""
  echo "*($(cat "$data/$name.secs") s)*"
  echo ""
}

{
  echo "# ElasticProxy benchmark results"
  echo ""
  echo "Generated by \`bench/run.sh\` — $label — on $started. Do not edit by hand: every"
  echo "figure below was measured by the commands shown (see [docs/benchmarks.md](../docs/benchmarks.md))."
  echo ""
  echo "| machine | |"
  echo "|---|---|"
  echo "| CPU | $cpu, $cores cores ($(nproc --all) online) |"
  echo "| memory | $mem |"
  echo "| load average (1/5/15 min) at start → end | $load_start → $load_end (shared machine: other work ran concurrently) |"
  echo "| kernel | $(uname -r) |"
  echo "| HAProxy | $hav |"
  echo "| etcd | $etv |"
  echo "| wrk | $wrv |"
  echo "| elasticproxy | $epv, commit $commit$dirty, Release build |"
  echo "| total run time | $total s |"
  echo ""
  echo "## Headline (ratios between modes in this run)"
  echo ""
  if [ -s "$data/churn_headline.txt" ] && [ -n "$(tr -d '[:space:]' < "$data/churn_headline.txt")" ]; then
    sed 's/^/- /' "$data/churn_headline.txt"
  else
    echo "- Churn: no runtime/naive pair completed in this run (see the churn table)."
  fi
  grep -s '^| ' "$data/convergence.md" | grep -v '^| source' | awk -F'|' \
    '{gsub(/^ +| +$/,"",$2); gsub(/^ +| +$/,"",$5); gsub(/^ +| +$/,"",$6); printf "- Convergence, %s: p50 %s ms, p99 %s ms\n", $2, $5, $6}' || true
  grep -s '^| ' "$data/bulk.md" | grep -v '^| change' | grep -v '^|---' | awk -F'|' '
    function trim(x) { gsub(/^ +| +$/, "", x); return x }
    { what = trim($2); wall = trim($3); sub(/ \(.*/, "", wall); cmds = trim($4); conns = trim($7); tgt = trim($8)
      if (cmds == "–") printf "- Bulk, %s: %s ms%s\n", what, wall, (tgt == "" ? "" : " (target " tgt ")")
      else printf "- Bulk, %s: %s runtime commands over %s connections\n", what, cmds, conns }' || true
  echo ""
  if [ -f "$out/convergence_cdf.png" ]; then echo "![convergence latency CDF](convergence_cdf.png)"; echo ""; fi
  if [ -f "$out/churn.png" ]; then echo "![churn errors and latency by mode](churn.png)"; echo ""; fi
  if [ -f "$out/churn_timeline.png" ]; then echo "![churn over time: UP servers and 5xx by mode](churn_timeline.png)"; echo ""; fi

  section convergence "1. Convergence latency" \
"A change made at the discovery source (file rewritten by atomic rename; Consul double: service
registered/deregistered; real etcd: key put/deleted through its gateway) until HAProxy's admin
socket lists (or no longer lists) the server. The bench polls \`show servers state\` every 1 ms,
so each sample includes up to ~1 ms of polling and the source's own delivery time. Changes
alternate add / remove of one server, 15–35 ms apart. The Consul source paces itself by default
(\`min_interval\` 100 ms + jitter, a token bucket of 5 refilled once a second), so back-to-back
changes are measured with that relaxed (\`min_interval: 0s, jitter: 0s, burst: 1000, refill: 1ms\`),
and separately with the defaults and changes 1.1 s apart (n = $conv_paced)."

  section churn "2. Zero-error churn under load" \
"\`wrk\` (keep-alive connections, 2 threads, 16 connections) through a real HAProxy 2.6
(master-worker, \`retries 3\`, \`option redispatch\`) to loopback HTTP backends, while one backend
joins or leaves every 100 ms (live set 3–6). A leaving backend is stopped (its listener and
connections closed) only once HAProxy no longer lists it, i.e. after it was drained and removed.
Reloads and old processes come from the master CLI (\`show proc\`, sampled every 100 ms). *naive* is
a script that rewrites haproxy.cfg and sends SIGUSR2 to the master on every change, no debounce.
Slot mode: the backend declares 64 \`server-template\` slots and the daemon re-addresses them.
New servers are health-gated (\`check inter 300ms rise 1\`): they take traffic after their first
check passes. When a mode had failed requests, the daemon's and HAProxy's logs of that run are kept
in \`data/churn_<mode>_*.log.gz\`, and \`churn_timeline.png\` shows when the backend had no UP server."

  if [ -s "$data/churn3.md" ]; then
  section churn3 "2a. Zero-error churn on HAProxy 3.0 (make bench-haproxy3)" \
"Section 2's runtime and slot cases (same load, same change every 100 ms, same health-gated
servers) against $(cat "$data/churn3.haproxy" 2>/dev/null || echo "HAProxy 3.0"), built from Debian 13's source
package by scripts/haproxy3.sh (the run line below names the system HAProxy of the other
sections). Target (issue 15): 0 failed requests and 0 reloads in both. When a mode had failed
requests, its logs are kept in \`data/churn3/\`."
  fi

  section kinds "2b. HAProxy alone: throughput by kind of server" \
"Why the churn table's throughput differs by mode: the same wrk load (2 threads, 16 connections)
through one HAProxy server pointing at the same loopback backend, declared three ways. The
\`connect\` and \`reuse\` columns of \`show stat\` show whether HAProxy reuses its connections to the
backend."

  bulk_side_by_side
  section bulk "3. Bulk scale" \
"One file change adds (then removes) N servers to one backend — dynamic mode (\`add server\` /
\`del server\`), slot mode (a \`server-template\` re-addressed with \`set server\`) or dynamic mode
with config management, where an addition over \`haproxy.reload.bulk_threshold\` is one reload
(rows *one reload over bulk_threshold*) — and a daemon
start with B backends × S servers (static sources, dynamic mode). Each case runs twice, each time
with a fresh HAProxy and daemon. *No counting proxy* rows time the change until HAProxy reports every
server active (or gone) — the \`act\` column of the BACKEND row of \`show stat <backend> 2 -1\`,
polled every 5 ms — repeated (add, remove) n times: median (min, max); after each removal the
bench waits, untimed, until the daemon has sent all of it (placeholder addresses, \`del server\`),
so every addition starts from a quiet daemon; these are the times to
compare with the targets. The other rows put a counting proxy on the daemon's admin
socket path to count what the daemon sends: commands (split on unescaped \`;\` and newlines,
\`prompt\`/\`quit\` not counted), bytes each way and connections; their wall time runs to the last
byte of the apply (read-back included) and includes the proxy's extra hop on every round trip, so
it is longer. The bench's own reads go directly to HAProxy and are never counted."

  if [ -s "$data/bulk3.md" ]; then
  section bulk3 "3a. Bulk scale on HAProxy 3.0, same cases (make bench-haproxy3)" \
"The cases of section 3, in the same run, against $(cat "$data/bulk3.haproxy" 2>/dev/null || echo "HAProxy 3.0"),
built from Debian 13's source package by scripts/haproxy3.sh (the run line below names the system
HAProxy of the other sections). Compare row by row with section 3."
  fi

  section limit "3b. HAProxy alone: dynamic servers in one backend" \
"Without ElasticProxy: \`add server\` straight to HAProxy's admin socket, 100 per connection, into
one backend. HAProxy 2.6's cost per \`add server\` grows with the number of servers already in the
backend, which bounds any runtime client's bulk time at this scale."

  section bulkx "3c. Bulk crossover: \`add server\` or one reload (haproxy.reload.bulk_threshold)" \
"N servers added to one dynamic backend of one server, by runtime commands (\`add server\`, rows
*dynamic: add server*) and, with config management and \`bulk_threshold: 1\`, by one rendered,
validated (\`haproxy -c\`), confirmed reload (rows *one reload over bulk_threshold*), timed like
section 3's no-counting-proxy rows (median of the repeats). The reload's cost (two parses of the
config, the master's re-exec) grows with N about linearly; \`add server\`'s grows faster, with the
backend's size (section 3b). The default, \`bulk_threshold: auto\`, reloads only over 1,000
additions and when the reload is predicted faster (its model is fitted to these rows), so
ordinary changes keep 0 reloads (docs/haproxy-runtime.md, \"Bulk additions by reload\")."

  section footprint "4. Footprint" \
"RSS from /proc/<pid>/status (VmRSS) after convergence; idle CPU from /proc/<pid>/stat
utime+stime over the interval, scaled to one hour."

  section hotpaths "5. Hot paths (Google Benchmark)" \
"Pure functions on 10,000-server inputs, in process. BM_Diff/10000/k: desired vs HAProxy with k
servers replaced; BM_ParseServersState: a 10,000-row HAProxy 2.6 reply; BM_BuildAddBatch: the
add/enable-health/ready commands for 10,000 servers joined into ≤ 16,000-byte writes;
BM_RenderTemplate: a haproxy.cfg with 10,000 server lines; BM_StatusJson/1000: the dashboard's
/status?compact for 1,000 backends × 10 servers (bytes: the document's size)."
  if [ -s "$data/scale.md" ]; then
  section scale "6. Scale: 1,000 file backends × 10 servers + 1,000 Consul services, one daemon" \
"One daemon, one HAProxy 2.6: 1,000 backends with a \`file\` source each (10 servers per file) and
1,000 backends on the Consul double (one instance each; even ones \`watch: service\`, odd ones
\`watch: shared\`), default \`resync_interval\` (10 s) and metrics on. Threads: entries of
/proc/<pid>/task after convergence and after the idle window, against a daemon with 10 + 10
backends and one with one backend. Start: from spawning the daemon until the BACKEND rows of
HAProxy's \`show stat -1 2 -1\` (polled every 5 ms) count every server active. Change: one server
added to / removed from one file backend by atomic rename, then \`show servers state <backend>\`
polled every 0.2 ms until it is listed (active) / gone — 1,000 changes 15–35 ms apart (200 in
bench-quick), and the same against a daemon with that one backend only; the two scenes are
measured in turns (four blocks each), the other one stopped (SIGSTOP) meanwhile. Memory: /proc/<pid>/smaps_rollup (Rss; Private_Clean +
Private_Dirty) after the idle window. Idle CPU: utime + stime from /proc/<pid>/stat over the idle
window (no discovery change; several resyncs fall in it), extrapolated to one hour. Progress with
timestamps: \`data/scale.log.gz\`; samples: \`data/scale_*_changes.dat\`; daemon logs (warn level):
\`data/scale_*_daemon.log.gz\`. See docs/benchmarks.md."
  fi
  section figures "7. Figures quoted in the docs (from tests)" \
"The figures that README.md and docs/*.md quote from tests (Consul frozen agent and SIGSTOP,
Consul churn at the defaults, etcd SIGSTOP and put → HAProxy, Kubernetes watch event → HAProxy and
one watch per namespace, AWS SQS message → HAProxy and lifecycle hooks, reloads under load and a
burst, the HAProxy runtime 1,000-add apply, the fault table, config render): each figure-printing
test is run by \`bench/figures.sh\` and the lines it printed are quoted verbatim, with the exact
command; each test's whole output is in \`data/figures_<name>.log\`. These tests run the doubles
and a real HAProxy on loopback; the build type is the tests' (see the commands)."
} > "$out/RESULTS.md"

echo "run.sh: wrote $out/RESULTS.md ($total s)" >&2
