build-bench/bench/ep_bench_e2e scale --backends 1000 --servers 10 --consul 1000 --changes 1000 --idle-seconds 60 --out bench/data
