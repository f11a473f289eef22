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

.PHONY: all deps configure build test test-unit test-integration test-browser dashboard-screenshot dashboard-figures test-haproxy3 haproxy3 demo bench bench-quick bench-scale bench-figures fault-table bench-haproxy3 clean format deb test-deb

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

# The dashboard in Debian's headless chromium against a real daemon and HAProxy (tests/browser);
# screenshots and timings land in $(BUILD)/tests/browser/artifacts.
test-browser: build
	@cd $(BUILD) && ctest --output-on-failure -L browser

# docs/dashboard.png (README, docs/dashboard.md) is the browser test's screenshot; the figures
# table in docs/dashboard.md (page weight, first render at 1,000 x 10) is written from the same
# run's timings.json (tests/browser/figures.mjs). Like bench-figures, on the Release build (what
# ships); `make test-browser` runs the same tests on the Debug build.
dashboard-figures: deps
	@cmake -S . -B $(BENCH_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DEP_BUILD_BENCH=ON -DEP_BUILD_TESTS=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BENCH_BUILD) -j $(JOBS) --target elasticproxy ep_consul_double
	@cd $(BENCH_BUILD) && ctest --output-on-failure -L browser
	@cp $(BENCH_BUILD)/tests/browser/artifacts/dashboard.png docs/dashboard.png
	@node tests/browser/figures.mjs $(BENCH_BUILD)/tests/browser/artifacts/timings.json docs/dashboard.md Release

dashboard-screenshot: dashboard-figures

# The version matrix (docs/haproxy-runtime.md, "Versions"): `make test` runs everything on the
# system's HAProxy (2.6 on Debian 12); test-haproxy3 runs the integration tests that start an
# HAProxy (label integration-haproxy: every test linking its fixture; the others, sources against
# their doubles, cannot depend on the HAProxy) again on Debian 13's HAProxy 3.0, fetched with apt-get source and built once into ~/.cache/elasticproxy by
# scripts/haproxy3.sh (about 2 minutes the first time). EP_HAPROXY is the one setting that picks
# the HAProxy of the tests and benchmarks; `make haproxy3` only prints the 3.0 binary's path.
haproxy3: deps
	@./scripts/haproxy3.sh

test-haproxy3: build
	@hp="$$(./scripts/haproxy3.sh)" && echo "test-haproxy3: $$("$$hp" -v 2>&1 | sed -n 1p)" && \
	  cd $(BUILD) && EP_HAPROXY="$$hp" ctest --output-on-failure -j $(JOBS) --timeout 300 -L haproxy

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

# The scale section alone (about 2 minutes once built): re-runs bench/run.sh's "scale" step, keeps
# the other sections' data and re-renders bench/RESULTS.md.
bench-scale: deps
	@cmake -S . -B $(BENCH_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DEP_BUILD_BENCH=ON -DEP_BUILD_TESTS=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BENCH_BUILD) -j $(JOBS) --target ep_bench_e2e elasticproxy
	@bench/run.sh --steps scale --build $(BENCH_BUILD)

# The figures README.md and docs/*.md quote from tests (bench/RESULTS.md section 7, a few minutes
# once built): bench/figures.sh runs the figure-printing tests, keeps their output in
# bench/data/figures_*.log and writes the table; the other sections keep their data.
FIGURE_TESTS = consul_source_test consul_shared_watch_test consul_haproxy_e2e_test consul_churn_e2e_test \
	etcd_source_test dns_source_test kubernetes_source_test kubernetes_haproxy_e2e_test aws_asg_source_test \
	aws_haproxy_e2e_test haproxy_config_writer_test etcd_dns_haproxy_e2e_test \
	reload_integration_test reload_e2e_test haproxy_runtime_integration_test fault_suite_test
bench-figures: deps
	@cmake -S . -B $(BENCH_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DEP_BUILD_BENCH=ON -DEP_BUILD_TESTS=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BENCH_BUILD) -j $(JOBS) --target elasticproxy $(FIGURE_TESTS)
	@bench/run.sh --steps figures --build $(BENCH_BUILD)
	@bench/fault_table.sh

# Only the fault suite: runs it (its output kept in bench/data/figures_fault_table.log) and writes
# the fault table of docs/hardening.md from that log (bench/fault_table.sh).
fault-table: deps
	@cmake -S . -B $(BENCH_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DEP_BUILD_BENCH=ON -DEP_BUILD_TESTS=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BENCH_BUILD) -j $(JOBS) --target elasticproxy fault_suite_test
	@bench/figures.sh --build $(BENCH_BUILD) --data bench/data --only fault_table >/dev/null
	@bench/fault_table.sh

# HAProxy 3.0 next to the system's: the bulk step (bench/RESULTS.md section 3) and the same cases
# on scripts/haproxy3.sh's HAProxy 3.0 (section 3a), in one run, each with the bare-client floor;
# section 3s puts both side by side against the targets; the bulk crossover (3c); and section 2's
# churn on 3.0 (2a). Other sections keep their data.
# QUICK=1: bench-quick's smaller cases, results in $(BENCH_BUILD)/bench-quick/.
bench-haproxy3: deps
	@cmake -S . -B $(BENCH_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DEP_BUILD_BENCH=ON -DEP_BUILD_TESTS=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BENCH_BUILD) -j $(JOBS) --target ep_bench_e2e elasticproxy
	@EP_HAPROXY3="$$(./scripts/haproxy3.sh)" bench/run.sh $(if $(QUICK),--quick) --steps bulk,bulk3,bulkx,churn3 --build $(BENCH_BUILD)

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

# ---- Hardening: sanitizers and fuzzing (docs/hardening.md) ----
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
FUZZ_BUILD ?= build-fuzz
# Sanitized builds: -O1 with line tables only (readable stack traces, quick compile).
SAN_BUILD_FLAGS ?= -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1"
# Deadlines in the tests are multiplied by this under sanitizers (tests/support/time_scale.h).
SAN_TIME_SCALE ?= 3
# Left out of the sanitizer runs: tests that measure a figure, hold a request for a minute or sit
# out a 30-second outage (they print latencies or wait on the clock; the code they drive is covered
# by the rest of the suite: the short outage and recovery tests of each source) and the browser
# tests (JavaScript in chromium; the daemon they start is covered). They all run in `make test`.
# Empty it to run everything: make test-tsan SAN_EXCLUDE=
SAN_EXCLUDE ?= -LE browser -E '^(ConsulChurnE2E\.|AwsE2E\.ASixtySecond|AwsE2E\.LaunchHookLatency|AwsE2E\.TerminateHookCompletionLatency|AwsE2E\.TerminateHookLatencyWithASessionInFlight|KubernetesE2E\.Figure|ConsulE2E\.RegistrationToHaproxyLatency|ConsulE2E\.ConsulOutageOf30Seconds|KubernetesE2E\.ApiServerDownFor30Seconds)'

# fuzz-smoke: seconds per target (all targets in parallel, JOBS at a time); fuzz: long runs.
FUZZ_SMOKE_SECONDS ?= 30
FUZZ_SECONDS ?= 600

.PHONY: test-asan test-tsan fuzz-build fuzz-smoke fuzz

# ASan + UBSan (any UB aborts), the whole suite including the integration tests.
test-asan: deps
	@cmake -S . -B $(ASAN_BUILD) -G Ninja $(SAN_BUILD_FLAGS) -DEP_SANITIZE=address,undefined \
	  -DCMAKE_CXX_FLAGS="-fno-sanitize-recover=undefined" $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	@cd $(ASAN_BUILD) && EP_TEST_TIME_SCALE=$(SAN_TIME_SCALE) \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS) --timeout 600 $(SAN_EXCLUDE)

# ThreadSanitizer over the whole suite (the daemon itself built with TSan for the end-to-end
# tests). setarch -R (no ASLR) keeps GCC 12's TSan clear of shadow-mapping failures on kernels
# with high mmap randomisation. Known benign reports would go to fuzz/tsan.supp (none so far).
test-tsan: deps
	@cmake -S . -B $(TSAN_BUILD) -G Ninja $(SAN_BUILD_FLAGS) -DEP_SANITIZE=thread $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(TSAN_BUILD) -j $(JOBS)
	@cd $(TSAN_BUILD) && EP_TEST_TIME_SCALE=$(SAN_TIME_SCALE) \
	  TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$(CURDIR)/fuzz/tsan.supp \
	  setarch -R ctest --output-on-failure -j $(JOBS) --timeout 600 $(SAN_EXCLUDE)

# libFuzzer targets (clang, ASan + UBSan), one per parser; seed corpora from tests/testdata.
fuzz-build: deps
	@cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" \
	  -DCMAKE_CXX_COMPILER=clang++ -DEP_BUILD_FUZZ=ON -DEP_BUILD_TESTS=OFF $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS) --target ep_fuzzers

fuzz-smoke: fuzz-build
	@fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SMOKE_SECONDS) $(JOBS)

# The summary of a long run is kept (bench/data/fuzz-summary.txt, committed) and the fuzzing table
# of docs/hardening.md is written from it (fuzz/summary_table.sh); a failed run keeps neither.
fuzz: fuzz-build
	@fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(JOBS)
	@{ echo "# date: $$(date -u '+%Y-%m-%d %H:%M UTC')"; echo "# seconds: $(FUZZ_SECONDS)"; \
	  echo "# jobs: $(JOBS)"; echo "# niceness: $$(nice)"; echo "# commit: $$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"; \
	  cat $(FUZZ_BUILD)/fuzz-summary.txt; } > bench/data/fuzz-summary.txt
	@fuzz/summary_table.sh
