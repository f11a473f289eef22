#include "discovery/consul/options.h"

#include <fmt/format.h>

#include <cctype>
#include <cstdlib>

#include "core/log.h"
#include "core/secrets.h"
#include "os/address.h"

namespace ep::discovery::consul {
namespace {

bool env_true(const std::optional<std::string>& v) {
  if (!v) return false;
  std::string s;
  for (char c : *v) s += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s == "1" || s == "true" || s == "yes" || s == "on";
}

bool env_false(const std::optional<std::string>& v) {
  if (!v) return false;
  std::string s;
  for (char c : *v) s += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s == "0" || s == "false" || s == "no" || s == "off";
}

std::string resolve(const SourceContext& context, const std::string& path) {
  if (path.empty()) return path;
  std::filesystem::path p(path);
  if (p.is_absolute() || context.base_dir.empty()) return path;
  return (context.base_dir / p).string();
}

bool has_control(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

}  // namespace

const char* to_string(HealthPolicy policy) {
  switch (policy) {
    case HealthPolicy::kPassing:
      return "passing";
    case HealthPolicy::kWarning:
      return "warning";
    case HealthPolicy::kAny:
      return "any";
  }
  return "?";
}

EnvLookup process_env() {
  return [](std::string_view name) -> std::optional<std::string> {
    const char* v = std::getenv(std::string(name).c_str());
    if (v == nullptr || *v == '\0') return std::nullopt;
    return std::string(v);
  };
}

Result<Address> parse_address(std::string_view text, bool default_https) {
  if (text.empty()) return Error::invalid("the Consul address is empty");
  if (has_control(text) || text.find(' ') != std::string_view::npos) {
    return Error::invalid("the Consul address contains spaces or control characters");
  }
  Address out;
  if (text.rfind("unix://", 0) == 0) {
    std::string path(text.substr(7));
    if (path.empty() || path[0] != '/') {
      return Error::invalid("a unix:// Consul address needs an absolute socket path, got '" +
                            std::string(text) + "'");
    }
    if (path.size() >= 108) {
      return Error::invalid("the unix socket path is longer than 107 bytes: '" + path + "'");
    }
    out.unix_socket = path;
    out.base_url = "http://localhost";
    return out;
  }
  std::string scheme = default_https ? "https" : "http";
  std::string_view rest = text;
  if (auto p = text.find("://"); p != std::string_view::npos) {
    scheme = std::string(text.substr(0, p));
    rest = text.substr(p + 3);
    if (scheme != "http" && scheme != "https") {
      return Error::invalid("unsupported scheme '" + scheme +
                            "' in the Consul address (use http://, https:// or unix://)");
    }
  }
  while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.empty() || rest.find_first_of("/?#@") != std::string_view::npos) {
    return Error::invalid("the Consul address must be host[:port], got '" + std::string(text) +
                          "'");
  }
  std::string host_port(rest);
  std::string_view port;
  if (host_port[0] == '[') {
    const size_t close = host_port.find(']');
    if (close == std::string::npos) return Error::invalid("unbalanced '[' in the Consul address");
    std::string_view after = std::string_view(host_port).substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return Error::invalid("the Consul address must be [ipv6]:port");
      port = after.substr(1);
    }
  } else {
    const size_t colon = host_port.find(':');
    if (colon != std::string::npos && host_port.find(':', colon + 1) != std::string::npos) {
      return Error::invalid("an IPv6 Consul address needs brackets, e.g. [" + host_port + "]:8500");
    }
    if (colon != std::string::npos) port = std::string_view(host_port).substr(colon + 1);
    if (colon == 0) return Error::invalid("the Consul address has no host");
  }
  if (port.data() == nullptr) {
    host_port += scheme == "https" ? ":8501" : ":8500";
  } else {
    long value = 0;
    for (char c : port) {
      if (!std::isdigit(static_cast<unsigned char>(c)) || value > 65535) {
        value = -1;
        break;
      }
      value = value * 10 + (c - '0');
    }
    if (port.empty() || value < 1 || value > 65535) {
      return Error::invalid("the Consul address has an invalid port '" + std::string(port) + "'");
    }
  }
  out.base_url = scheme + "://" + host_port;
  return out;
}

std::string Options::agent_key() const {
  const size_t token_hash = std::hash<std::string>{}(token);
  return fmt::format("{}|{}|{}|{}|{}|{}|{}|{}|{:x}|{}|{}|{}|{}|{}", base_url, unix_socket, ca_file,
                     cert_file, key_file, tls_verify, datacenter, ns, token_hash, token_file,
                     partition, stale, wait.count(), min_interval.count());
}

std::optional<Options> parse_options(const ConfigNode& node, Diagnostics& diag,
                                     const SourceContext& context, const EnvLookup& env) {
  MapReader r(node, diag, "consul");
  if (!r.valid()) return std::nullopt;
  Options o;

  // Agent address: config, else CONSUL_HTTP_ADDR, else 127.0.0.1:8500.
  std::string address = env("CONSUL_HTTP_ADDR").value_or("127.0.0.1:8500");
  const bool address_from_config = r.has("address");
  r.string("address", address);
  {
    auto a = parse_address(address, env_true(env("CONSUL_HTTP_SSL")));
    if (!a) {
      const ConfigNode* n = node.find("address");
      diag.error(n != nullptr ? n->mark : node.mark,
                 "consul.address" +
                     std::string(address_from_config ? "" : " (from CONSUL_HTTP_ADDR)") + ": " +
                     a.error().message);
    } else {
      o.base_url = a->base_url;
      o.unix_socket = a->unix_socket;
    }
  }
  o.address_text = address;

  if (r.string("service", o.service, true) && node.find("service") != nullptr) {
    if (o.service.empty() || has_control(o.service) ||
        o.service.find_first_of("/?#") != std::string::npos) {
      diag.error(node.find("service")->mark,
                 "consul.service must be a non-empty service name without '/', '?', '#' or "
                 "control characters");
    }
  }
  r.string_list("tags", o.parse.tags);

  // Health policy: `health: passing|warning|any`, or the shorthand `passing_only` (true =
  // passing, false = warning).
  const bool has_passing_only = r.has("passing_only");
  const bool has_health = r.has("health");
  bool passing_only = true;
  r.boolean("passing_only", passing_only);
  if (has_passing_only)
    o.parse.health = passing_only ? HealthPolicy::kPassing : HealthPolicy::kWarning;
  std::string health;
  if (r.one_of("health", health, {"passing", "warning", "any"}) && has_health) {
    if (has_passing_only) {
      diag.error(node.find("health")->mark, "consul: set either health or passing_only, not both");
    }
    o.parse.health = health == "passing"   ? HealthPolicy::kPassing
                     : health == "warning" ? HealthPolicy::kWarning
                                           : HealthPolicy::kAny;
  }

  r.string("datacenter", o.datacenter);
  r.string("namespace", o.ns);
  r.string("partition", o.partition);
  r.string("filter", o.filter);
  if (const ConfigNode* nm = r.get("node_meta")) {
    if (nm->kind != ConfigNode::Kind::kMap) {
      diag.error(nm->mark, std::string("consul.node_meta must be a map of key: value, got ") +
                               nm->kind_name());
    } else {
      for (size_t i = 0; i < nm->keys.size(); ++i) {
        if (nm->values[i].kind != ConfigNode::Kind::kScalar) {
          diag.error(nm->values[i].mark, "consul.node_meta." + nm->keys[i] + " must be a string");
          continue;
        }
        o.node_meta.emplace_back(nm->keys[i], nm->values[i].scalar);
      }
    }
  }
  r.string("address_from", o.parse.address_from);
  if (o.parse.address_from == "service") o.parse.address_from.clear();
  r.string_list("kinds", o.parse.kinds);
  r.boolean("use_weights", o.parse.use_weights);
  r.integer("weight_max", o.parse.weight_max, 1, 1'000'000);
  r.string("weight_meta_key", o.parse.weight_meta_key);
  r.string("backup_meta_key", o.parse.backup_meta_key);

  // Token: config token > config token_file > CONSUL_HTTP_TOKEN_FILE > CONSUL_HTTP_TOKEN (the
  // consul api client lets a token file override the token variable).
  const bool has_token = r.has("token");
  const bool has_token_file = r.has("token_file");
  r.string("token", o.token);
  r.string("token_file", o.token_file);
  if (has_token && has_token_file) {
    diag.error(node.find("token_file")->mark, "consul: set either token or token_file, not both");
  }
  if (!has_token && !has_token_file) {
    if (auto f = env("CONSUL_HTTP_TOKEN_FILE")) {
      o.token_file = *f;
    } else if (auto t = env("CONSUL_HTTP_TOKEN")) {
      o.token = *t;
    }
  }
  if (has_control(o.token)) {
    diag.error(node.mark, "consul.token contains control characters");  // value not echoed
  }
  secrets::add(o.token);  // from the config or CONSUL_HTTP_TOKEN: masked wherever printed
  o.token_file = resolve(context, o.token_file);

  o.ca_file = env("CONSUL_CACERT").value_or("");
  o.cert_file = env("CONSUL_CLIENT_CERT").value_or("");
  o.key_file = env("CONSUL_CLIENT_KEY").value_or("");
  if (env_false(env("CONSUL_HTTP_SSL_VERIFY"))) o.tls_verify = false;
  if (const ConfigNode* tls = r.get("tls")) {
    MapReader t(*tls, diag, "consul.tls");
    t.string("ca_file", o.ca_file);
    t.string("cert_file", o.cert_file);
    t.string("key_file", o.key_file);
    t.boolean("verify", o.tls_verify);
    t.finish();
  }
  o.ca_file = resolve(context, o.ca_file);
  o.cert_file = resolve(context, o.cert_file);
  o.key_file = resolve(context, o.key_file);
  if (o.cert_file.empty() != o.key_file.empty()) {
    diag.error(node.mark, "consul.tls: cert_file and key_file go together");
  }
  r.boolean("allow_insecure", o.allow_insecure);
  r.byte_size("max_response_size", o.max_response_bytes, 4096, std::size_t{1} << 30);
  if ((!o.token.empty() || !o.token_file.empty()) && o.unix_socket.empty()) {
    auto url = os::split_url(o.base_url);
    const bool plain = o.base_url.rfind("http://", 0) == 0;
    if (url.ok() && (plain || !o.tls_verify) && !os::is_loopback_host(url->authority.host)) {
      const std::string why = plain ? "in clear text" : "without TLS verification";
      if (!o.allow_insecure) {
        const ConfigNode* n = node.find("address");
        diag.error(n != nullptr ? n->mark : node.mark,
                   "consul: the ACL token would go to " + o.base_url + " " + why +
                       "; use https:// with verification, or set allow_insecure: true");
      } else {
        log::warn("config", "consul: allow_insecure: the ACL token goes to {} {}", o.base_url, why);
      }
    }
  }
  for (const char* unsupported : {"CONSUL_CAPATH", "CONSUL_TLS_SERVER_NAME", "CONSUL_HTTP_AUTH"}) {
    if (env(unsupported)) {
      log::warn("consul", "{} is set but not supported by elasticproxy; ignored", unsupported);
    }
  }

  std::string watch;
  if (r.one_of("watch", watch, {"service", "shared"}) && !watch.empty()) {
    o.watch = watch == "shared" ? Options::WatchMode::kShared : Options::WatchMode::kService;
  }
  r.boolean("blocking", o.blocking);
  if (r.duration("wait", o.wait) &&
      (o.wait < std::chrono::milliseconds(1) || o.wait > std::chrono::minutes(10))) {
    diag.error(node.find("wait")->mark,
               "consul.wait must be between 1ms and 10m (Consul's maximum)");
  }
  r.boolean("cached", o.cached);
  r.boolean("stale", o.stale);
  r.positive_duration("timeout", o.timeout);
  r.positive_duration("connect_timeout", o.connect_timeout);
  r.duration("min_interval", o.min_interval);
  r.duration("jitter", o.jitter);
  r.integer("burst", o.burst, 1, 1000);
  r.positive_duration("refill", o.refill);
  r.positive_duration("backoff_min", o.backoff_min);
  r.positive_duration("backoff_max", o.backoff_max);
  r.duration("empty_confirm", o.empty_confirm);
  r.duration("liveness_interval", o.liveness_interval);
  r.positive_duration("liveness_timeout", o.liveness_timeout);
  if (o.backoff_max < o.backoff_min) {
    diag.error(node.mark, "consul.backoff_min must not be above backoff_max");
  }

  if (!r.finish()) return std::nullopt;
  return o;
}

}  // namespace ep::discovery::consul
