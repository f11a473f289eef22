#include "support/haproxy/haproxy_binary.h"

#include <cstdio>
#include <cstdlib>
#include <regex>

namespace ep::test {

std::string haproxy_binary_from(const char* env) {
  return std::string(env != nullptr && *env != '\0' ? env : "haproxy");
}

HaproxyVersion parse_haproxy_version(const std::string& out) {
  HaproxyVersion v;
  std::smatch m;
  static const std::regex re(R"(HA-?Proxy version (\d+)\.(\d+))");
  if (std::regex_search(out, m, re)) {
    v.major = std::stoi(m[1].str());
    v.minor = std::stoi(m[2].str());
  }
  return v;
}

const std::string& haproxy_binary() {
  static const std::string binary = haproxy_binary_from(std::getenv("EP_HAPROXY"));
  return binary;
}

const HaproxyVersion& haproxy_version() {
  static const HaproxyVersion version = [] {
    std::string cmd = "'" + haproxy_binary() + "' -v 2>/dev/null";
    FILE* p = ::popen(cmd.c_str(), "r");
    if (p == nullptr) return HaproxyVersion{};
    std::string out;
    char buf[256];
    while (std::fgets(buf, sizeof buf, p) != nullptr) out += buf;
    ::pclose(p);
    return parse_haproxy_version(out);
  }();
  return version;
}

}  // namespace ep::test
