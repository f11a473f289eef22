build-bench/bench/ep_bench_hotpaths --benchmark_min_time=0.5 --benchmark_format=console --benchmark_counters_tabular=true
