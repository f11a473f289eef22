#include "discovery/etcd/options.h"

#include "core/log.h"
#include "os/address.h"

namespace ep::discovery::etcd {
namespace {

std::string resolve(const std::filesystem::path& base, const std::string& path) {
  if (path.empty()) return path;
  std::filesystem::path p(path);
  if (p.is_relative()) p = base / p;
  return p.lexically_normal().string();
}

}  // namespace

std::optional<Options> options_from_node(const ConfigNode& node,
                                         const std::filesystem::path& base_dir, Diagnostics& diag) {
  const size_t errors_before = diag.errors().size();
  MapReader r(node, diag, "etcd");
  if (!r.valid()) return std::nullopt;
  Options o;
  r.string_list("endpoints", o.endpoints, true);
  r.string("prefix", o.prefix, true);
  r.string("username", o.username);
  r.string("password", o.password);
  r.string("password_file", o.password_file);
  r.positive_duration("timeout", o.timeout);
  r.positive_duration("connect_timeout", o.connect_timeout);
  r.positive_duration("idle_timeout", o.idle_timeout);
  r.positive_duration("retry_interval", o.retry_interval);
  r.positive_duration("max_retry_interval", o.max_retry_interval);
  r.integer("page_size", o.page_size, 0, 100000);
  r.boolean("serializable", o.serializable);
  r.boolean("allow_insecure", o.allow_insecure);
  r.byte_size("max_response_size", o.max_response_bytes, 4096, std::size_t{1} << 30);
  if (const ConfigNode* tls = r.get("tls")) {
    MapReader t(*tls, diag, "etcd.tls");
    t.string("ca_file", o.ca_file);
    t.string("cert_file", o.cert_file);
    t.string("key_file", o.key_file);
    t.boolean("verify", o.tls_verify);
    t.finish();
    if (o.cert_file.empty() != o.key_file.empty())
      diag.error(tls->mark, "etcd.tls: cert_file and key_file go together");
  }
  const bool known = r.finish();

  for (size_t i = 0; i < o.endpoints.size(); ++i) {
    std::string& e = o.endpoints[i];
    while (!e.empty() && e.back() == '/') e.pop_back();
    const Mark& mark = node.find("endpoints")->mark;
    const std::string which = "etcd.endpoints[" + std::to_string(i) + "]";
    auto url = os::split_url(e);
    if (url.ok() && !url->userinfo.empty()) {
      // Never echo it: the userinfo is a password. Credentials have their own keys.
      diag.error(mark, which +
                           ": user information in the URL is refused (it would show in "
                           "logs, /status and metrics); use etcd.username and password_file");
      continue;
    }
    if (!url.ok() || (url->scheme != "http" && url->scheme != "https")) {
      diag.error(mark, which + ": '" + e + "' must start with http:// or https://");
    } else if (!url->path.empty()) {
      diag.error(mark, which + ": '" + e + "' must be scheme://host:port without a path");
    } else if (!o.username.empty() && (url->scheme == "http" || !o.tls_verify) &&
               !os::is_loopback_host(url->authority.host)) {
      const std::string why = url->scheme == "http" ? "in clear text" : "without TLS verification";
      if (!o.allow_insecure) {
        diag.error(mark, which + ": the etcd password would go to '" + e + "' " + why +
                             "; use https:// with verification, or set allow_insecure: true");
      } else {
        log::warn("config", "etcd: allow_insecure: the password goes to {} {}", e, why);
      }
    }
  }
  if (const ConfigNode* n = node.find("endpoints"); n != nullptr && o.endpoints.empty())
    diag.error(n->mark, "etcd.endpoints must list at least one endpoint");
  if (const ConfigNode* n = node.find("prefix"); n != nullptr && o.prefix.empty())
    diag.error(n->mark, "etcd.prefix must not be empty (it would watch the whole keyspace)");
  if (!o.password.empty() && !o.password_file.empty())
    diag.error(node.mark, "etcd: set password or password_file, not both");
  if ((!o.password.empty() || !o.password_file.empty()) && o.username.empty())
    diag.error(node.mark, "etcd: a password needs a username");
  if (!o.username.empty() && o.password.empty() && o.password_file.empty())
    diag.error(node.find("username")->mark, "etcd.username needs password or password_file");
  if (o.max_retry_interval < o.retry_interval) o.max_retry_interval = o.retry_interval;
  if (!known || diag.errors().size() != errors_before) return std::nullopt;
  o.ca_file = resolve(base_dir, o.ca_file);
  o.cert_file = resolve(base_dir, o.cert_file);
  o.key_file = resolve(base_dir, o.key_file);
  o.password_file = resolve(base_dir, o.password_file);
  return o;
}

}  // namespace ep::discovery::etcd
