bench/figures.sh --build build-bench --data bench/data
