#include "fuzz/fuzz_support.h"

#include <arpa/inet.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "discovery/guard.h"
#include "haproxy/runtime/commands.h"
#include "reconcile/policy.h"

namespace ep::fuzz {

void check(bool cond, const char* what, const char* file, int line) {
  if (cond) return;
  std::fprintf(stderr, "invariant failed: %s at %s:%d\n", what, file, line);
  std::abort();
}

namespace {

bool is_ip_literal(const std::string& address) {
  unsigned char buf[16];
  return inet_pton(AF_INET, address.c_str(), buf) == 1 ||
         inet_pton(AF_INET6, address.c_str(), buf) == 1;
}

bool safe_name_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == ':' || c == '-';
}

bool single_line(const std::string& command) {
  return command.find_first_of(std::string_view("\r\n\0", 3)) == std::string::npos;
}

void check_spec(const ServerSpec& spec, const reconcile::BackendPolicy& policy) {
  EP_FUZZ_CHECK(is_ip_literal(spec.address));
  EP_FUZZ_CHECK(spec.address.find_first_of(std::string_view(" \t\r\n;\0", 6)) ==
                std::string::npos);
  EP_FUZZ_CHECK(spec.port >= 1);
  EP_FUZZ_CHECK(spec.weight >= 0 && spec.weight <= 256);
  EP_FUZZ_CHECK(!spec.name.empty());
  EP_FUZZ_CHECK(spec.name.size() <= 100 + policy.name_prefix.size());
  for (char c : spec.name) EP_FUZZ_CHECK(safe_name_char(c));

  auto add = haproxy::cmd::add_server(policy.name, spec.name, spec.address, spec.port, spec.weight,
                                      spec.backup, policy.server_options);
  EP_FUZZ_CHECK(add.ok());
  EP_FUZZ_CHECK(single_line(*add));
  auto addr = haproxy::cmd::set_addr(policy.name, spec.name, spec.address, spec.port);
  EP_FUZZ_CHECK(addr.ok());
  EP_FUZZ_CHECK(single_line(*addr));
  auto del = haproxy::cmd::del_server(policy.name, spec.name);
  EP_FUZZ_CHECK(del.ok());
  EP_FUZZ_CHECK(single_line(*del));
}

std::vector<reconcile::BackendPolicy> policies() {
  std::vector<reconcile::BackendPolicy> out;
  reconcile::BackendPolicy plain;
  plain.name = "be_app";
  plain.server_options = "check inter 2s";
  out.push_back(plain);
  reconcile::BackendPolicy overridden = plain;
  overridden.name_prefix = "svc_";
  overridden.port = 8080;
  overridden.weight = 10;
  out.push_back(overridden);
  return out;
}

}  // namespace

void check_endpoints(const std::vector<Endpoint>& endpoints) {
  static const std::vector<reconcile::BackendPolicy> kPolicies = policies();
  for (const auto& policy : kPolicies) {
    for (const auto& endpoint : endpoints) {
      auto spec = discovery::validate_endpoint(endpoint, policy);
      if (spec) check_spec(*spec, policy);
    }
    auto all = discovery::validate_all(endpoints, policy);
    for (size_t i = 0; i < all.servers.size(); ++i) {
      check_spec(all.servers[i], policy);
      if (i > 0) EP_FUZZ_CHECK(all.servers[i - 1].name < all.servers[i].name);
    }
    EP_FUZZ_CHECK(all.servers.size() + all.rejected.size() <= endpoints.size());
  }
}

}  // namespace ep::fuzz
