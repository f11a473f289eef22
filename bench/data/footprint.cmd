build-bench/bench/ep_bench_e2e footprint --idle-seconds 60 --servers 10000
