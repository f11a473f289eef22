#include "discovery/consul/parse.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <nlohmann/json.hpp>

#include "os/json.h"

namespace ep::discovery::consul {
namespace {

using nlohmann::json;

constexpr size_t kMaxShownLabels = 64;  // tags / meta keys copied into an endpoint's labels

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

const char* type_name(const json& j) {
  switch (j.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::object:
      return "an object";
    case json::value_t::array:
      return "an array";
    case json::value_t::string:
      return "a string";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "an integer";
    case json::value_t::number_float:
      return "a number";
    default:
      return "something else";
  }
}

// Field access with errors that name the entry and the field.
class Entry {
 public:
  Entry(size_t index) : index_(index) {}
  void set_name(std::string name) { name_ = std::move(name); }

  Error error(std::string_view field, std::string_view problem) const {
    return Error::invalid(
        fmt::format("Consul health reply: entry {}{}: {} {}", index_, name_, field, problem));
  }

  // Optional object (absent or null → nullptr).
  Result<const json*> object(const json& parent, const char* key, std::string_view field,
                             bool required) const {
    auto it = parent.find(key);
    if (it == parent.end() || it->is_null()) {
      if (required) return error(field, "is missing");
      return static_cast<const json*>(nullptr);
    }
    if (!it->is_object())
      return error(field, fmt::format("must be an object, got {}", type_name(*it)));
    return &*it;
  }

  Result<std::string> string(const json* parent, const char* key, std::string_view field,
                             bool required) const {
    if (parent == nullptr) {
      if (required) return error(field, "is missing");
      return std::string();
    }
    auto it = parent->find(key);
    if (it == parent->end() || it->is_null()) {
      if (required) return error(field, "is missing");
      return std::string();
    }
    if (!it->is_string())
      return error(field, fmt::format("must be a string, got {}", type_name(*it)));
    return it->get<std::string>();
  }

  Result<std::vector<std::string>> strings(const json* parent, const char* key,
                                           std::string_view field) const {
    std::vector<std::string> out;
    if (parent == nullptr) return out;
    auto it = parent->find(key);
    if (it == parent->end() || it->is_null()) return out;
    if (!it->is_array())
      return error(field, fmt::format("must be a list of strings, got {}", type_name(*it)));
    for (const auto& v : *it) {
      if (!v.is_string())
        return error(field, fmt::format("must hold strings, got {}", type_name(v)));
      out.push_back(v.get<std::string>());
    }
    return out;
  }

  // Map of string → string (Meta). Absent/null → empty.
  Result<std::vector<std::pair<std::string, std::string>>> string_map(
      const json* parent, const char* key, std::string_view field) const {
    std::vector<std::pair<std::string, std::string>> out;
    if (parent == nullptr) return out;
    auto it = parent->find(key);
    if (it == parent->end() || it->is_null()) return out;
    if (!it->is_object())
      return error(field, fmt::format("must be an object, got {}", type_name(*it)));
    for (const auto& [k, v] : it->items()) {
      if (!v.is_string()) {
        return error(fmt::format("{}.{}", field, k),
                     fmt::format("must be a string, got {}", type_name(v)));
      }
      out.emplace_back(k, v.get<std::string>());
    }
    return out;
  }

  Result<std::optional<long long>> integer(const json* parent, const char* key,
                                           std::string_view field, bool required) const {
    if (parent == nullptr) {
      if (required) return error(field, "is missing");
      return std::optional<long long>();
    }
    auto it = parent->find(key);
    if (it == parent->end() || it->is_null()) {
      if (required) return error(field, "is missing");
      return std::optional<long long>();
    }
    if (it->is_number_unsigned()) {
      auto v = it->get<unsigned long long>();
      if (v > static_cast<unsigned long long>(INT64_MAX)) return error(field, "is out of range");
      return std::optional<long long>(static_cast<long long>(v));
    }
    if (it->is_number_integer()) return std::optional<long long>(it->get<long long>());
    if (it->is_number_float()) {
      double d = it->get<double>();
      if (std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 9e15) {
        return std::optional<long long>(static_cast<long long>(d));
      }
    }
    return error(field, fmt::format("must be an integer, got {}", type_name(*it)));
  }

 private:
  size_t index_;
  std::string name_;
};

std::optional<std::string> find_value(const std::vector<std::pair<std::string, std::string>>& m,
                                      const std::string& key) {
  for (const auto& [k, v] : m) {
    if (k == key) return v;
  }
  return std::nullopt;
}

bool truthy(std::string_view v) {
  const std::string s = lower(v);
  return s == "true" || s == "1" || s == "yes" || s == "on";
}

}  // namespace

std::string aggregated_status(const std::vector<CheckStatus>& checks) {
  bool passing = false, warning = false, critical = false;
  for (const auto& c : checks) {
    if (c.check_id == "_node_maintenance" || c.check_id.rfind("_service_maintenance:", 0) == 0) {
      return "maintenance";
    }
    if (c.status == "passing") {
      passing = true;
    } else if (c.status == "warning") {
      warning = true;
    } else if (c.status == "critical") {
      critical = true;
    } else {
      return "";
    }
  }
  if (critical) return "critical";
  if (warning) return "warning";
  (void)passing;
  return "passing";  // includes "no checks at all"
}

Result<ParseResult> parse_health_reply(std::string_view text, const ParseOptions& options) {
  auto parsed = os::parse_json(text, "Consul health reply");
  if (!parsed) {
    std::string snippet(text.substr(0, 60));
    for (char& c : snippet) {
      if (static_cast<unsigned char>(c) < 0x20) c = ' ';
    }
    return Error::invalid(fmt::format("{}; it starts with '{}'", parsed.error().message, snippet));
  }
  json doc = std::move(*parsed);
  if (!doc.is_array()) {
    return Error::invalid(fmt::format(
        "Consul health reply must be a JSON array of entries, got {} (treated as an error, never "
        "as 'no instances')",
        type_name(doc)));
  }

  std::vector<std::string> wanted_tags;
  for (const auto& t : options.tags) wanted_tags.push_back(lower(t));
  const long weight_max = options.weight_max > 0 ? options.weight_max : 256;

  struct Keyed {
    std::string node, service_id;
    Endpoint endpoint;
  };
  std::vector<Keyed> kept;
  ParseResult out;
  out.entries = doc.size();
  for (size_t i = 0; i < doc.size(); ++i) {
    const json& e = doc[i];
    Entry en(i);
    if (!e.is_object())
      return en.error("the entry", fmt::format("must be an object, got {}", type_name(e)));
    auto node = en.object(e, "Node", "Node", true);
    if (!node) return node.error();
    auto service = en.object(e, "Service", "Service", true);
    if (!service) return service.error();
    auto node_name = en.string(*node, "Node", "Node.Node", true);
    if (!node_name) return node_name.error();
    auto service_id = en.string(*service, "ID", "Service.ID", true);
    if (!service_id) return service_id.error();
    en.set_name(fmt::format(" (Service.ID '{}' on node '{}')", *service_id, *node_name));
    auto node_address = en.string(*node, "Address", "Node.Address", true);
    if (!node_address) return node_address.error();
    auto datacenter = en.string(*node, "Datacenter", "Node.Datacenter", false);
    if (!datacenter) return datacenter.error();
    auto service_name = en.string(*service, "Service", "Service.Service", true);
    if (!service_name) return service_name.error();
    auto service_address = en.string(*service, "Address", "Service.Address", false);
    if (!service_address) return service_address.error();
    auto port = en.integer(*service, "Port", "Service.Port", true);
    if (!port) return port.error();
    if (**port < 0 || **port > 0xFFFFFFFFLL) {
      return en.error("Service.Port", fmt::format("is out of range ({})", **port));
    }
    auto kind = en.string(*service, "Kind", "Service.Kind", false);
    if (!kind) return kind.error();
    auto ns = en.string(*service, "Namespace", "Service.Namespace", false);
    if (!ns) return ns.error();
    auto tags = en.strings(*service, "Tags", "Service.Tags");
    if (!tags) return tags.error();
    auto meta = en.string_map(*service, "Meta", "Service.Meta");
    if (!meta) return meta.error();
    auto weights = en.object(**service, "Weights", "Service.Weights", false);
    if (!weights) return weights.error();
    auto w_passing = en.integer(*weights, "Passing", "Service.Weights.Passing", false);
    if (!w_passing) return w_passing.error();
    auto w_warning = en.integer(*weights, "Warning", "Service.Weights.Warning", false);
    if (!w_warning) return w_warning.error();
    auto svc_tagged = en.object(**service, "TaggedAddresses", "Service.TaggedAddresses", false);
    if (!svc_tagged) return svc_tagged.error();
    auto node_tagged = en.object(**node, "TaggedAddresses", "Node.TaggedAddresses", false);
    if (!node_tagged) return node_tagged.error();

    std::vector<CheckStatus> checks;
    auto checks_it = e.find("Checks");
    if (checks_it != e.end() && !checks_it->is_null()) {
      if (!checks_it->is_array()) {
        return en.error("Checks", fmt::format("must be a list, got {}", type_name(*checks_it)));
      }
      for (size_t c = 0; c < checks_it->size(); ++c) {
        const json& check = (*checks_it)[c];
        const std::string field = fmt::format("Checks[{}]", c);
        if (!check.is_object())
          return en.error(field, fmt::format("must be an object, got {}", type_name(check)));
        auto id = en.string(&check, "CheckID", field + ".CheckID", false);
        if (!id) return id.error();
        auto status = en.string(&check, "Status", field + ".Status", true);
        if (!status) return status.error();
        checks.push_back({*id, *status});
      }
    }

    // Kind: Connect proxies and gateways are not backends unless asked for.
    if (!kind->empty() &&
        std::find(options.kinds.begin(), options.kinds.end(), *kind) == options.kinds.end()) {
      ++out.dropped_kind;
      continue;
    }
    // Tags: all required, case-insensitive (Consul's own tag filter is case-insensitive).
    bool tags_ok = true;
    for (const auto& want : wanted_tags) {
      tags_ok = tags_ok && std::any_of(tags->begin(), tags->end(),
                                       [&](const std::string& t) { return lower(t) == want; });
    }
    if (!tags_ok) {
      ++out.dropped_tags;
      continue;
    }
    const std::string status = aggregated_status(checks);
    bool keep = false;
    switch (options.health) {
      case HealthPolicy::kPassing:
        keep = status == "passing";
        break;
      case HealthPolicy::kWarning:
        keep = status == "passing" || status == "warning";
        break;
      case HealthPolicy::kAny:
        keep = status != "maintenance";
        break;
    }
    if (!keep) {
      ++out.dropped_health;
      continue;
    }

    Endpoint ep;
    ep.address = service_address->empty() ? *node_address : *service_address;
    ep.port = static_cast<std::uint32_t>(**port);
    if (options.address_from == "node") {
      ep.address = *node_address;
    } else if (!options.address_from.empty()) {
      bool found = false;
      if (*svc_tagged != nullptr) {
        auto t = en.object(**svc_tagged, options.address_from.c_str(),
                           "Service.TaggedAddresses." + options.address_from, false);
        if (!t) return t.error();
        if (*t != nullptr) {
          auto a = en.string(*t, "Address",
                             "Service.TaggedAddresses." + options.address_from + ".Address", false);
          if (!a) return a.error();
          auto p = en.integer(*t, "Port",
                              "Service.TaggedAddresses." + options.address_from + ".Port", false);
          if (!p) return p.error();
          if (!a->empty()) {
            ep.address = *a;
            if (*p && **p > 0 && **p <= 0xFFFFFFFFLL) ep.port = static_cast<std::uint32_t>(**p);
            found = true;
          }
        }
      }
      if (!found && *node_tagged != nullptr) {
        auto a = en.string(*node_tagged, options.address_from.c_str(),
                           "Node.TaggedAddresses." + options.address_from, false);
        if (!a) return a.error();
        if (!a->empty()) ep.address = *a;
      }
    }

    if (options.use_weights && *w_passing) {
      long long w = status == "passing" ? **w_passing : (*w_warning ? **w_warning : **w_passing);
      if (w >= 0) {
        w = std::llround(static_cast<double>(w) * 256.0 / static_cast<double>(weight_max));
        w = std::min<long long>(w, 256);
      }
      ep.weight = static_cast<long>(std::max<long long>(std::min<long long>(w, 1'000'000), -1));
    }
    if (!options.weight_meta_key.empty()) {
      if (auto v = find_value(*meta, options.weight_meta_key)) {
        char* end = nullptr;
        long w = std::strtol(v->c_str(), &end, 10);
        if (v->empty() || *end != '\0' || w < 0 || w > 256) {
          out.warnings.push_back(fmt::format(
              "service '{}' on node '{}': Meta.{} = '{}' is not a weight 0..256; ignored",
              *service_id, *node_name, options.weight_meta_key, v->substr(0, 40)));
        } else {
          ep.weight = w;
        }
      }
    }
    if (!options.backup_meta_key.empty()) {
      if (auto v = find_value(*meta, options.backup_meta_key)) ep.backup = truthy(*v);
    }
    ep.id = *service_id + "." + *node_name;
    ep.labels["consul.node"] = *node_name;
    ep.labels["consul.service_id"] = *service_id;
    ep.labels["consul.status"] = status;
    if (!datacenter->empty()) ep.labels["consul.datacenter"] = *datacenter;
    if (!ns->empty()) ep.labels["consul.namespace"] = *ns;
    // What the operator registered, for the dashboard (shown as text, never markup): the service
    // name, its tags and meta. Capped at Consul's own limit of 64 meta keys (and as many tags).
    ep.labels["consul.service"] = *service_name;
    if (!tags->empty()) {
      std::string joined;
      for (size_t t = 0; t < tags->size() && t < kMaxShownLabels; ++t) {
        if (t > 0) joined += ",";
        joined += (*tags)[t];
      }
      ep.labels["consul.tags"] = std::move(joined);
    }
    for (size_t m = 0; m < meta->size() && m < kMaxShownLabels; ++m) {
      ep.labels["consul.meta." + (*meta)[m].first] = (*meta)[m].second;
    }
    kept.push_back({*node_name, *service_id, std::move(ep)});
  }
  // Consul does not promise an order; sort so that equal sets compare equal.
  std::sort(kept.begin(), kept.end(), [](const Keyed& a, const Keyed& b) {
    return std::tie(a.node, a.service_id) < std::tie(b.node, b.service_id);
  });
  out.endpoints.reserve(kept.size());
  for (auto& k : kept) out.endpoints.push_back(std::move(k.endpoint));
  return out;
}

Result<std::vector<Endpoint>> parse_health(std::string_view json, const ParseOptions& options) {
  auto r = parse_health_reply(json, options);
  if (!r) return r.error();
  return std::move(r->endpoints);
}

}  // namespace ep::discovery::consul
