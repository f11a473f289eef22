#include "discovery/dns/options.h"

#include <arpa/inet.h>

#include <charconv>

#include "discovery/dns/parse.h"

namespace ep::discovery::dns {
namespace {

bool is_ip(const std::string& s, int family) {
  unsigned char buf[16];
  return ::inet_pton(family, s.c_str(), buf) == 1;
}

bool valid_port(std::string_view p) {
  unsigned v = 0;
  auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
  return ec == std::errc() && end == p.data() + p.size() && v >= 1 && v <= 65535;
}

}  // namespace

std::string normalize_server(const std::string& text) {
  if (is_ip(text, AF_INET)) return text + ":53";
  if (is_ip(text, AF_INET6)) return "[" + text + "]:53";
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string::npos) return "";
    const std::string ip = text.substr(1, close - 1);
    if (!is_ip(ip, AF_INET6)) return "";
    if (close + 1 == text.size()) return "[" + ip + "]:53";
    if (text[close + 1] != ':' || !valid_port(std::string_view(text).substr(close + 2))) return "";
    return text;
  }
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos) return "";
  if (!is_ip(text.substr(0, colon), AF_INET) ||
      !valid_port(std::string_view(text).substr(colon + 1)))
    return "";
  return text;
}

std::optional<Options> options_from_node(const ConfigNode& node, Diagnostics& diag) {
  const size_t errors_before = diag.errors().size();
  MapReader r(node, diag, "dns");
  if (!r.valid()) return std::nullopt;
  Options o;
  r.string("name", o.name, true);
  r.string_list("servers", o.servers);
  std::string other = "drop";
  r.one_of("other_priorities", other, {"drop", "backup"});
  o.backup_other_priorities = other == "backup";
  std::string family = "any";
  r.one_of("family", family, {"any", "ipv4", "ipv6"});
  o.family = family == "ipv4" ? Family::kIpv4 : family == "ipv6" ? Family::kIpv6 : Family::kAny;
  r.positive_duration("ttl_floor", o.ttl_floor);
  r.positive_duration("ttl_ceiling", o.ttl_ceiling);
  r.positive_duration("timeout", o.timeout);
  r.integer("tries", o.tries, 1, 10);
  r.positive_duration("retry_interval", o.retry_interval);
  r.positive_duration("max_retry_interval", o.max_retry_interval);
  r.integer("empty_confirmations", o.empty_confirmations, 1, 100);
  r.integer("edns_payload", o.edns_payload, 512, 65535);
  const bool known = r.finish();

  o.name = normalize_name(o.name);
  if (const ConfigNode* n = node.find("name"); n != nullptr) {
    if (o.name.empty() || o.name.find_first_of(" \t/\\") != std::string::npos ||
        o.name.find("..") != std::string::npos || o.name.size() > 253)
      diag.error(n->mark, "dns.name '" + n->scalar + "' is not a DNS name");
  }
  for (auto& s : o.servers) {
    const std::string norm = normalize_server(s);
    if (norm.empty()) {
      diag.error(node.find("servers")->mark,
                 "dns.servers: '" + s + "' is not ip, ip:port or [ipv6]:port");
    }
    s = norm;
  }
  for (auto [key, value] : {std::pair{"ttl_floor", o.ttl_floor},
                            {"ttl_ceiling", o.ttl_ceiling},
                            {"timeout", o.timeout},
                            {"retry_interval", o.retry_interval},
                            {"max_retry_interval", o.max_retry_interval}}) {
    if (const ConfigNode* n = node.find(key); n != nullptr && value.count() <= 0)
      diag.error(n->mark, std::string("dns.") + key + " must be greater than 0");
  }
  // Only when both are given: `retry_interval: 5s` alone raises the cap with it (see dns_source).
  if (const ConfigNode* n = node.find("max_retry_interval");
      n != nullptr && o.max_retry_interval < o.retry_interval)
    diag.error(n->mark, "dns.max_retry_interval must not be smaller than retry_interval");
  if (o.ttl_ceiling < o.ttl_floor)
    diag.error(node.mark, "dns: ttl_ceiling must not be smaller than ttl_floor");
  if (!known || diag.errors().size() != errors_before) return std::nullopt;
  return o;
}

}  // namespace ep::discovery::dns
