#pragma once
// The one setting that picks the HAProxy every test and benchmark runs (docs/haproxy-runtime.md,
// "Versions"): $EP_HAPROXY when set and not empty, otherwise `haproxy` from PATH (the system's,
// 2.6 on Debian 12). `make test-haproxy3` sets EP_HAPROXY to the HAProxy 3.0 that
// scripts/haproxy3.sh builds. Everything that starts or names HAProxy — HaproxyFixture, the
// master-worker fixture, configs handed to the daemon (`haproxy.binary`), the benchmarks — asks
// here, so one variable switches the whole run.

#include <string>

namespace ep::test {

const std::string& haproxy_binary();

// Version of haproxy_binary(), read once from `<binary> -v` ("HAProxy version 3.0.11-…").
// {0, 0} when the binary does not run.
struct HaproxyVersion {
  int major = 0;
  int minor = 0;
  bool at_least(int ma, int mi) const { return major > ma || (major == ma && minor >= mi); }
  std::string text() const { return std::to_string(major) + "." + std::to_string(minor); }
};
const HaproxyVersion& haproxy_version();

// The pure parts, for tests: the binary for a given $EP_HAPROXY value (nullptr = unset), and the
// version in `haproxy -v` output.
std::string haproxy_binary_from(const char* env);
HaproxyVersion parse_haproxy_version(const std::string& haproxy_v_output);

}  // namespace ep::test
