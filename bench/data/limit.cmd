build-bench/bench/ep_bench_e2e haproxy-limit --max 10000
