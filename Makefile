# ElasticProxy: the two quick-start commands are `make demo` and `make test`.
BUILD ?= build
BENCH_BUILD ?= build-bench
# Tests and the demo: -O1 without debug info compiles about twice as fast as -O2 -g and keeps
# assertions on. Benchmarks build separately with full optimisation (make bench).
BUILD_FLAGS ?= -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-O1
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
# Reuse compiled objects across build trees when ccache is installed (optional).
ifneq ($(shell command -v ccache 2>/dev/null),)
CMAKE_FLAGS += -DCMAKE_CXX_COMPILER_LAUNCHER=ccache
endif

.PHONY: all deps configure build test test-unit test-integration demo bench bench-quick clean format deb test-deb

all: build

deps:
	@./scripts/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD) -G Ninja $(BUILD_FLAGS) $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

# The whole suite: unit and integration tests (real HAProxy, etcd, dnsmasq on loopback).
test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 300

test-unit: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -L unit

test-integration: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -L integration

# A real HAProxy on loopback, local backends, a built-in load, and ElasticProxy scaling the
# backend in and out through the file source. Prints requests sent / failed at the end.
demo: build
	@$(BUILD)/src/app/elasticproxy demo

# Benchmarks (docs/benchmarks.md): Release build in $(BENCH_BUILD), then bench/run.sh measures
# convergence, churn under wrk load (runtime vs config vs naive reloads), bulk scale, footprint and
# hot paths, and writes bench/RESULTS.md + PNG plots. bench-quick: the same, shorter (< 3 min once
# built), results in $(BENCH_BUILD)/bench-quick/.
bench: deps
	@cmake -S . -B $(BENCH_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DEP_BUILD_BENCH=ON -DEP_BUILD_TESTS=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BENCH_BUILD) -j $(JOBS) --target ep_bench_e2e ep_bench_hotpaths elasticproxy
	@bench/run.sh --build $(BENCH_BUILD)

bench-quick: deps
	@cmake -S . -B $(BENCH_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DEP_BUILD_BENCH=ON -DEP_BUILD_TESTS=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BENCH_BUILD) -j $(JOBS) --target ep_bench_e2e ep_bench_hotpaths elasticproxy
	@bench/run.sh --quick --build $(BENCH_BUILD)

# Debian package (CPack; Depends from dpkg-shlibdeps): $(BUILD)/deb/elasticproxy_<version>_<arch>.deb.
# Reuses the normal build directory (only the install prefix changes: /usr), so after `make
# build` or `make test` it only links and packs.
deb: deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_SKIP_INSTALL_ALL_DEPENDENCY=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) --target elasticproxy ep_manpage
	@rm -f $(BUILD)/deb/*.deb
	@cd $(BUILD) && cpack -G DEB >/dev/null && ls -1 $(CURDIR)/$(BUILD)/deb/*.deb

# Installs the .deb into this system (root; CI's throwaway machine), runs `elasticproxy --version`
# and `elasticproxy check` on the shipped configuration, and purges it again.
test-deb: deb
	@packaging/test-deb.sh $(BUILD)/deb

format:
	@find src tests bench fuzz -name '*.h' -o -name '*.cc' | xargs clang-format -i

clean:
	@rm -rf $(BUILD) $(BENCH_BUILD)
