build-bench/bench/ep_bench_e2e churn --seconds 60 --interval-ms 100 --modes runtime,slots,config,naive --out bench/data
