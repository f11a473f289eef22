build-bench/bench/ep_bench_e2e server-kinds --seconds 10
