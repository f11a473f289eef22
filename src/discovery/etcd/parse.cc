#include "discovery/etcd/parse.h"

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <nlohmann/json.hpp>

#include "os/address.h"
#include "os/json.h"
#include "os/strings.h"

namespace ep::discovery::etcd {
namespace {

using nlohmann::json;

Result<json> parse_json(std::string_view text, std::string_view what) {
  return os::parse_json(text, what);
}

// proto3 JSON int64: a string or a number; absent = 0.
Result<std::int64_t> get_int64(const json& obj, const char* field, std::string_view what) {
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) return std::int64_t{0};
  if (it->is_number_integer()) return it->get<std::int64_t>();
  if (it->is_string()) {
    const std::string& s = it->get_ref<const std::string&>();
    std::int64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec == std::errc() && p == s.data() + s.size()) return v;
  }
  return Error::invalid(
      fmt::format("{}: field '{}' is not an integer: {}", what, field, os::json_brief(*it, 80)));
}

Result<std::string> get_bytes(const json& obj, const char* field, std::string_view what) {
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) return std::string();
  if (!it->is_string())
    return Error::invalid(fmt::format("{}: field '{}' is not a base64 string", what, field));
  auto decoded = base64_decode(it->get_ref<const std::string&>());
  if (!decoded)
    return Error::invalid(fmt::format("{}: field '{}': {}", what, field, decoded.error().message));
  return decoded;
}

bool get_bool(const json& obj, const char* field) {
  auto it = obj.find(field);
  return it != obj.end() && it->is_boolean() && it->get<bool>();
}

// The message of a grpc-gateway error: {"error":"text","code":16,"message":"text"} (etcd 3.4
// unary) or {"error":{"grpc_code":16,"http_code":401,"message":"text",...}} (streams).
std::string error_message(const json& doc) {
  auto it = doc.find("error");
  if (it != doc.end()) {
    if (it->is_string()) return it->get<std::string>();
    if (it->is_object()) {
      auto m = it->find("message");
      if (m != it->end() && m->is_string()) return m->get<std::string>();
      return os::json_brief(*it) + " without a message";
    }
  }
  auto m = doc.find("message");
  if (m != doc.end() && m->is_string()) return m->get<std::string>();
  return "a reply without an error message: " + os::json_brief(doc);
}

Result<KeyValue> parse_kv(const json& kv, std::string_view what) {
  if (!kv.is_object()) return Error::invalid(fmt::format("{}: kv is not an object", what));
  KeyValue out;
  auto key = get_bytes(kv, "key", what);
  if (!key) return key.error();
  out.key = std::move(*key);
  auto value = get_bytes(kv, "value", what);
  if (!value) return value.error();
  out.value = std::move(*value);
  auto mod = get_int64(kv, "mod_revision", what);
  if (!mod) return mod.error();
  out.mod_revision = *mod;
  auto lease = get_int64(kv, "lease", what);
  if (!lease) return lease.error();
  out.lease = *lease;
  return out;
}

Result<long> weight_of(const json& v, std::string_view what) {
  long w = -1;
  if (v.is_number_integer()) {
    w = v.get<long>();
  } else if (v.is_number_float()) {
    double d = v.get<double>();
    if (d == static_cast<double>(static_cast<long>(d))) w = static_cast<long>(d);
  } else if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    long parsed = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), parsed);
    if (ec == std::errc() && p == s.data() + s.size() && !s.empty()) w = parsed;
  }
  if (w < 0 || w > 256)
    return Error::invalid(
        fmt::format("{}: weight must be an integer 0..256, got {}", what, os::json_brief(v)));
  return w;
}

Result<bool> backup_of(const json& v, std::string_view what) {
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    if (s == "true" || s == "1" || s == "yes") return true;
    if (s == "false" || s == "0" || s == "no" || s.empty()) return false;
  }
  return Error::invalid(
      fmt::format("{}: backup must be true or false, got {}", what, os::json_brief(v)));
}

// weight/backup from an object (Metadata or the plain object shape).
Status apply_extras(const json& obj, Endpoint& e, std::string_view what) {
  if (!obj.is_object()) return {};
  for (const char* name : {"weight", "Weight"}) {
    if (auto it = obj.find(name); it != obj.end() && !it->is_null()) {
      auto w = weight_of(*it, what);
      if (!w) return w.error();
      e.weight = *w;
    }
  }
  for (const char* name : {"backup", "Backup"}) {
    if (auto it = obj.find(name); it != obj.end() && !it->is_null()) {
      auto b = backup_of(*it, what);
      if (!b) return b.error();
      e.backup = *b;
    }
  }
  return {};
}

using os::trim;

}  // namespace

std::string prefix_range_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty() && static_cast<unsigned char>(end.back()) == 0xff) end.pop_back();
  if (end.empty()) return std::string(1, '\0');
  end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
  return end;
}

Result<RangeReply> parse_range_reply(std::string_view body) {
  constexpr std::string_view kWhat = "etcd range reply";
  auto doc = parse_json(body, kWhat);
  if (!doc) return doc.error();
  if (!doc->is_object()) return Error::invalid("etcd range reply: not a JSON object");
  if (doc->contains("error") || !doc->contains("header")) {
    return Error::unavailable(fmt::format("etcd range failed: {}", error_message(*doc)));
  }
  RangeReply out;
  const json& header = (*doc)["header"];
  if (!header.is_object()) return Error::invalid("etcd range reply: header is not an object");
  auto rev = get_int64(header, "revision", kWhat);
  if (!rev) return rev.error();
  out.revision = *rev;
  if (out.revision <= 0) return Error::invalid("etcd range reply: header without a revision");
  auto count = get_int64(*doc, "count", kWhat);
  if (!count) return count.error();
  out.count = *count;
  out.more = get_bool(*doc, "more");
  if (auto it = doc->find("kvs"); it != doc->end() && !it->is_null()) {
    if (!it->is_array()) return Error::invalid("etcd range reply: kvs is not a list");
    size_t i = 0;
    for (const json& kv : *it) {
      auto parsed = parse_kv(kv, fmt::format("etcd range reply kvs[{}]", i++));
      if (!parsed) return parsed.error();
      out.kvs.push_back(std::move(*parsed));
    }
  }
  return out;
}

Result<std::string> parse_auth_reply(std::string_view body) {
  auto doc = parse_json(body, "etcd authenticate reply");
  if (!doc) return doc.error();
  if (!doc->is_object()) return Error::invalid("etcd authenticate reply: not a JSON object");
  auto it = doc->find("token");
  if (it == doc->end() || !it->is_string() || it->get_ref<const std::string&>().empty()) {
    return Error::refused(fmt::format("etcd authentication failed: {}", error_message(*doc)));
  }
  return it->get<std::string>();
}

Result<WatchMessage> parse_watch_message(std::string_view text) {
  constexpr std::string_view kWhat = "etcd watch message";
  auto doc = parse_json(text, kWhat);
  if (!doc) return doc.error();
  if (!doc->is_object()) return Error::invalid("etcd watch message: not a JSON object");
  auto rit = doc->find("result");
  if (rit == doc->end() || !rit->is_object()) {
    return Error::unavailable(fmt::format("etcd watch error: {}", error_message(*doc)));
  }
  const json& r = *rit;
  WatchMessage out;
  if (auto h = r.find("header"); h != r.end() && h->is_object()) {
    auto rev = get_int64(*h, "revision", kWhat);
    if (!rev) return rev.error();
    out.revision = *rev;
  }
  if (auto id = r.find("watch_id"); id != r.end()) {
    out.watch_id = id->is_string() ? id->get<std::string>() : os::json_brief(*id);
  }
  out.created = get_bool(r, "created");
  out.canceled = get_bool(r, "canceled");
  out.fragment = get_bool(r, "fragment");
  auto compact = get_int64(r, "compact_revision", kWhat);
  if (!compact) return compact.error();
  out.compact_revision = *compact;
  if (auto reason = r.find("cancel_reason"); reason != r.end() && reason->is_string()) {
    out.cancel_reason = reason->get<std::string>();
  }
  if (auto ev = r.find("events"); ev != r.end() && !ev->is_null()) {
    if (!ev->is_array()) return Error::invalid("etcd watch message: events is not a list");
    size_t i = 0;
    for (const json& e : *ev) {
      const std::string what = fmt::format("etcd watch message events[{}]", i++);
      if (!e.is_object()) return Error::invalid(what + ": not an object");
      WatchEvent event;
      if (auto t = e.find("type"); t != e.end()) {
        if (t->is_string() && t->get_ref<const std::string&>() == "DELETE") {
          event.is_delete = true;
        } else if (t->is_number_integer() && t->get<int>() == 1) {
          event.is_delete = true;
        } else if (!(t->is_string() && t->get_ref<const std::string&>() == "PUT") &&
                   !(t->is_number_integer() && t->get<int>() == 0)) {
          return Error::invalid(what + ": unknown event type " + os::json_brief(*t));
        }
      }
      auto kv = e.find("kv");
      if (kv == e.end()) return Error::invalid(what + ": no kv");
      auto parsed = parse_kv(*kv, what);
      if (!parsed) return parsed.error();
      event.kv = std::move(*parsed);
      out.events.push_back(std::move(event));
    }
  }
  return out;
}

std::vector<std::string> JsonObjectSplitter::feed(std::string_view bytes) {
  std::vector<std::string> out;
  if (error_) return out;
  buffer_.append(bytes);
  size_t start = 0;  // start of the current object (valid when depth_ > 0)
  // Resume: the object in progress starts at 0 (completed objects are erased below).
  for (size_t i = scan_; i < buffer_.size(); ++i) {
    const char c = buffer_[i];
    if (depth_ == 0) {
      if (c == '{') {
        depth_ = 1;
        start = i;
        if (start != 0) {
          // Drop the whitespace before this object so that its start is 0 on resume.
          buffer_.erase(0, start);
          i -= start;
          start = 0;
        }
      } else if (!std::isspace(static_cast<unsigned char>(c))) {
        error_ = Error::invalid("etcd watch stream: unexpected data outside a JSON object: " +
                                buffer_.substr(i, 40));
        buffer_.clear();
        scan_ = 0;
        return out;
      }
      continue;
    }
    if (in_string_) {
      if (escape_) {
        escape_ = false;
      } else if (c == '\\') {
        escape_ = true;
      } else if (c == '"') {
        in_string_ = false;
      }
      continue;
    }
    if (c == '"') {
      in_string_ = true;
    } else if (c == '{' || c == '[') {
      ++depth_;
    } else if (c == '}' || c == ']') {
      if (--depth_ == 0) {
        out.push_back(buffer_.substr(0, i + 1));
        buffer_.erase(0, i + 1);
        i = static_cast<size_t>(-1);  // restart at 0 after ++i
      }
    }
  }
  if (depth_ == 0) buffer_.clear();  // only whitespace left
  scan_ = buffer_.size();
  return out;
}

bool is_auth_error(std::string_view message) {
  return message.find("invalid auth token") != std::string_view::npos ||
         message.find("user name is empty") != std::string_view::npos ||
         message.find("auth token is expired") != std::string_view::npos ||
         message.find("permission denied") != std::string_view::npos;
}

Result<Endpoint> split_host_port(std::string_view text) {
  auto hp = os::split_host_port(text);
  if (!hp) return hp.error();
  Endpoint e;
  e.address = std::move(hp->host);
  if (hp->port) e.port = *hp->port;
  return e;
}

Result<ValueResult> parse_value(std::string_view key, std::string_view value, std::string id) {
  const std::string what = fmt::format("etcd key '{}'", key);
  std::string_view text = trim(value);
  if (text.empty()) return Error::invalid(what + ": empty value");
  ValueResult out;
  if (text.front() != '{') {
    auto e = split_host_port(text);
    if (!e) return Error::invalid(what + ": " + e.error().message);
    out.endpoint = std::move(*e);
    out.endpoint.id = std::move(id);
    return out;
  }
  auto doc = parse_json(text, what);
  if (!doc) return doc.error();
  if (!doc->is_object()) return Error::invalid(what + ": value is not a JSON object");
  const json& v = *doc;
  if (auto addr = v.find("Addr"); addr != v.end()) {
    // gRPC naming convention (endpoints.Update).
    if (auto op = v.find("Op"); op != v.end() && !op->is_null()) {
      if (!op->is_number_integer() || (op->get<int>() != 0 && op->get<int>() != 1))
        return Error::invalid(what + ": Op must be 0 (add) or 1 (delete), got " +
                              os::json_brief(*op));
      if (op->get<int>() == 1) {
        out.remove = true;
        return out;
      }
    }
    if (!addr->is_string()) return Error::invalid(what + ": Addr is not a string");
    auto e = split_host_port(trim(addr->get_ref<const std::string&>()));
    if (!e) return Error::invalid(what + ": Addr " + e.error().message);
    out.endpoint = std::move(*e);
    if (auto md = v.find("Metadata"); md != v.end()) {
      if (auto s = apply_extras(*md, out.endpoint, what + " Metadata"); !s) return s.error();
    }
    out.endpoint.id = std::move(id);
    return out;
  }
  auto addr = v.find("address");
  if (addr == v.end()) addr = v.find("host");
  if (addr == v.end())
    return Error::invalid(what + ": JSON value has neither \"Addr\" nor \"address\"");
  if (!addr->is_string()) return Error::invalid(what + ": address is not a string");
  auto e = split_host_port(trim(addr->get_ref<const std::string&>()));
  if (!e) return Error::invalid(what + ": address " + e.error().message);
  out.endpoint = std::move(*e);
  if (auto port = v.find("port"); port != v.end() && !port->is_null()) {
    long p = -1;
    if (port->is_number_integer()) {
      p = port->get<long>();
    } else if (port->is_string()) {
      const std::string& s = port->get_ref<const std::string&>();
      auto [q, ec] = std::from_chars(s.data(), s.data() + s.size(), p);
      if (ec != std::errc() || q != s.data() + s.size()) p = -1;
    }
    if (p < 1 || p > 65535)
      return Error::invalid(what + ": port must be 1..65535, got " + os::json_brief(*port));
    out.endpoint.port = static_cast<std::uint32_t>(p);
  }
  if (auto s = apply_extras(v, out.endpoint, what); !s) return s.error();
  out.endpoint.id = std::move(id);
  return out;
}

}  // namespace ep::discovery::etcd
