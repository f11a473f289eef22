build-bench/bench/ep_bench_e2e convergence --n 200 --n-paced 30 --sources file,consul,etcd,consul-paced --out bench/data
