bench/figures.sh --build build-dev --data bench/data
