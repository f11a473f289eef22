EP_HAPROXY=$(scripts/haproxy3.sh) build-bench/bench/ep_bench_e2e churn --seconds 60 --interval-ms 100 --modes runtime,slots --out bench/data/churn3
