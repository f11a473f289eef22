#include "config/settings.h"

#include <set>

#include "config/ep2.h"
#include "os/file.h"
#include "os/strings.h"

namespace ep::config {

const char* to_string(UpdateMode mode) {
  switch (mode) {
    case UpdateMode::kAuto:
      return "auto";
    case UpdateMode::kRuntime:
      return "runtime";
    case UpdateMode::kConfig:
      return "config";
  }
  return "?";
}

namespace {

constexpr size_t kMaxNameLength = 100;
constexpr size_t kMaxServerOptionWords = 60;

bool safe_name_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == ':' || c == '-';
}

using os::printable;  // text from the config shown back in a message

// HAProxy names (backends, servers) end up in runtime commands: keep them to a safe charset.
void check_name(const ConfigNode* node, const std::string& what, const std::string& value,
                Diagnostics& diag) {
  if (node == nullptr) return;
  if (value.empty()) {
    diag.error(node->mark, what + " must not be empty");
    return;
  }
  if (value.size() > kMaxNameLength) {
    diag.error(node->mark, what + " must be at most " + std::to_string(kMaxNameLength) +
                               " characters, got " + std::to_string(value.size()));
    return;
  }
  for (char c : value) {
    if (!safe_name_char(c)) {
      diag.error(node->mark, what + " may only contain letters, digits and _ . : -, got '" +
                                 printable(value) + "'");
      return;
    }
  }
}

// Server options are appended to `add server` commands and config lines: a `;` or newline would
// start a new command, `#` a comment, `\` an escape. Refuse them rather than escape them.
bool split_server_options(const ConfigNode& node, const std::string& what, const std::string& text,
                          std::string& out, Diagnostics& diag) {
  std::vector<std::string> words;
  std::string word;
  auto flush = [&] {
    if (!word.empty()) words.push_back(std::move(word));
    word.clear();
  };
  for (char c : text) {
    if (c == ' ' || c == '\t')
      flush();
    else
      word += c;
  }
  flush();
  bool ok = true;
  for (const auto& w : words) {
    for (char c : w) {
      if (c == ';' || c == '\\' || c == '#' || c == '\r' || c == '\n' || c == '\0') {
        diag.error(node.mark,
                   what + ": word '" + printable(w) + "' contains a forbidden character (" +
                       printable(std::string(1, c)) + "); ; \\ # and line breaks are refused");
        ok = false;
        break;
      }
    }
  }
  if (words.size() > kMaxServerOptionWords) {
    diag.error(node.mark, what + " has " + std::to_string(words.size()) + " words, at most " +
                              std::to_string(kMaxServerOptionWords) +
                              " are allowed (first extra word: '" +
                              printable(words[kMaxServerOptionWords]) + "')");
    ok = false;
  }
  if (!ok) return false;
  out.clear();
  for (const auto& w : words) {
    if (!out.empty()) out += ' ';
    out += w;
  }
  return true;
}

void read_haproxy(const ConfigNode& node, HaproxySettings& out, Diagnostics& diag) {
  MapReader r(node, diag, "haproxy");
  if (!r.valid()) return;
  const ConfigNode* sockets = r.node().find("sockets");
  if (r.string_list("sockets", out.sockets, true) && sockets != nullptr) {
    if (out.sockets.empty()) diag.error(sockets->mark, "haproxy.sockets needs at least one socket");
    for (size_t i = 0; i < out.sockets.size(); ++i) {
      if (out.sockets[i].empty()) {
        diag.error(
            sockets->kind == ConfigNode::Kind::kSequence ? sockets->items[i].mark : sockets->mark,
            "haproxy.sockets entries must not be empty");
      }
    }
  }
  r.string("master_socket", out.master_socket);
  r.string("config", out.config);
  r.string("template", out.template_path);
  r.string("pidfile", out.pidfile);
  r.boolean("bootstrap", out.bootstrap);
  std::string update;
  if (r.one_of("update", update, {"auto", "runtime", "config"}) && !update.empty()) {
    out.update = update == "runtime"  ? UpdateMode::kRuntime
                 : update == "config" ? UpdateMode::kConfig
                                      : UpdateMode::kAuto;
  }
  if (const ConfigNode* b = r.node().find("binary")) {
    if (r.string("binary", out.binary) && out.binary.empty()) {
      diag.error(b->mark, "haproxy.binary must not be empty");
    }
  }
  r.positive_duration("timeout", out.timeout);
  r.positive_duration("resync_interval", out.resync_interval);
  if (const ConfigNode* reload = r.get("reload")) out.reload = *reload;
  r.finish();
}

void read_safety(const ConfigNode& node, const std::string& what, reconcile::SafetyPolicy& out,
                 Diagnostics& diag) {
  MapReader r(node, diag, what);
  if (!r.valid()) return;
  r.number("max_remove_fraction", out.max_remove_fraction, 0.0, 1.0);
  r.boolean("allow_empty", out.allow_empty);
  r.duration("confirm_after", out.confirm_after);
  long max_servers = static_cast<long>(out.max_servers);
  if (r.integer("max_servers", max_servers, 0, 1'000'000)) {
    out.max_servers = static_cast<std::size_t>(max_servers);
  }
  r.finish();
}

void read_sources(const ConfigNode& node, const std::string& what, std::vector<SourceSpec>& out,
                  Diagnostics& diag) {
  if (node.kind == ConfigNode::Kind::kNull) return;
  if (node.kind != ConfigNode::Kind::kSequence) {
    diag.error(node.mark, what + " must be a list, got " + node.kind_name());
    return;
  }
  for (size_t i = 0; i < node.items.size(); ++i) {
    const ConfigNode& item = node.items[i];
    const std::string item_what = what + "[" + std::to_string(i) + "]";
    if (item.kind != ConfigNode::Kind::kMap) {
      diag.error(item.mark, item_what +
                                " must be a map with one key naming the source kind (e.g. "
                                "'file: {path: ...}'), got " +
                                item.kind_name());
      continue;
    }
    if (item.keys.size() != 1) {
      diag.error(item.mark, item_what + " must have exactly one key naming the source kind, got " +
                                std::to_string(item.keys.size()));
      continue;
    }
    out.push_back(SourceSpec{item.keys[0], item.values[0], item.key_marks[0]});
  }
}

void read_backend(const ConfigNode& node, size_t index, BackendSettings& out, Diagnostics& diag) {
  const std::string what = "backends[" + std::to_string(index) + "]";
  out.mark = node.mark;
  MapReader r(node, diag, what);
  if (!r.valid()) return;
  if (node.kind == ConfigNode::Kind::kNull) {
    diag.error(node.mark, what + " must be a map with at least a name");
    return;
  }
  auto& p = out.policy;
  if (r.string("name", p.name, true)) check_name(node.find("name"), what + ".name", p.name, diag);
  std::string mode;
  if (r.one_of("mode", mode, {"auto", "dynamic", "slots"}) && !mode.empty()) {
    p.mode = mode == "dynamic" ? reconcile::BackendMode::kDynamic
             : mode == "slots" ? reconcile::BackendMode::kSlots
                               : reconcile::BackendMode::kAuto;
  }
  if (r.string("name_prefix", p.name_prefix)) {
    check_name(node.find("name_prefix"), what + ".name_prefix", p.name_prefix, diag);
  }
  long v = 0;
  if (r.has("slots") && r.integer("slots", v, 0, 100000)) p.slots = static_cast<int>(v);
  if (const ConfigNode* so = node.find("server_options")) {
    std::string text;
    if (r.string("server_options", text)) {
      split_server_options(*so, what + ".server_options", text, p.server_options, diag);
    }
  }
  if (r.has("port") && r.integer("port", v, 1, 65535)) p.port = static_cast<int>(v);
  if (r.has("weight") && r.integer("weight", v, 0, 256)) p.weight = static_cast<int>(v);
  r.duration("drain_timeout", p.drain_timeout);
  r.duration("debounce", p.debounce);
  if (const ConfigNode* s = r.get("safety")) read_safety(*s, what + ".safety", p.safety, diag);
  if (const ConfigNode* s = r.get("sources"))
    read_sources(*s, what + ".sources", out.sources, diag);
  r.finish();
}

void read_metrics(const ConfigNode& node, MetricsSettings& out, Diagnostics& diag) {
  MapReader r(node, diag, "metrics");
  if (!r.valid()) return;
  r.boolean("enabled", out.enabled);
  if (r.string("listen", out.listen) && node.find("listen") != nullptr) {
    // host:port or [v6]:port; the port must be a number so a typo fails at load, not at bind.
    const auto colon = out.listen.rfind(':');
    bool ok = colon != std::string::npos && colon > 0 && colon + 1 < out.listen.size();
    long port = -1;
    if (ok) {
      const std::string p = out.listen.substr(colon + 1);
      char* end = nullptr;
      port = std::strtol(p.c_str(), &end, 10);
      ok = *end == '\0' && port >= 0 && port <= 65535;
    }
    if (!ok) {
      diag.error(node.find("listen")->mark,
                 "metrics.listen must be host:port (e.g. 127.0.0.1:9108), got '" +
                     printable(out.listen) + "'");
    }
  }
  const ConfigNode* hosts = node.find("allowed_hosts");
  if (r.string_list("allowed_hosts", out.allowed_hosts) && hosts != nullptr) {
    for (size_t i = 0; i < out.allowed_hosts.size(); ++i) {
      const std::string& h = out.allowed_hosts[i];
      const bool ok = h == "*" || (!h.empty() && h.size() <= 253 &&
                                   h.find_first_not_of("abcdefghijklmnopqrstuvwxyz"
                                                       "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") ==
                                       std::string::npos);
      if (!ok) {
        diag.error(hosts->kind == ConfigNode::Kind::kSequence ? hosts->items[i].mark : hosts->mark,
                   "metrics.allowed_hosts entries must be host names (letters, digits, '.', "
                   "'-'; no port) or \"*\", got '" +
                       printable(h) + "'");
      }
    }
  }
  r.finish();
}

void read_log(const ConfigNode& node, LogSettings& out, Diagnostics& diag) {
  MapReader r(node, diag, "log");
  if (!r.valid()) return;
  r.one_of("level", out.level, {"debug", "info", "warn", "error"});
  r.one_of("format", out.format, {"text", "json"});
  r.finish();
}

}  // namespace

Settings settings_from_node(const ConfigNode& root, const std::string& filename,
                            Diagnostics& diag) {
  Settings s;
  s.file = filename;
  if (root.kind == ConfigNode::Kind::kNull) {
    diag.error(root.mark, "the configuration is empty; it needs at least 'haproxy' and 'backends'");
    return s;
  }
  MapReader r(root, diag, "config");
  if (!r.valid()) return s;

  if (const ConfigNode* h = r.get("haproxy")) {
    read_haproxy(*h, s.haproxy, diag);
  } else {
    diag.error(root.mark, "haproxy is required (at least haproxy.sockets)");
  }

  const ConfigNode* backends = r.get("backends");
  if (backends == nullptr || backends->kind == ConfigNode::Kind::kNull) {
    diag.error(backends ? backends->mark : root.mark,
               "backends is required (at least one backend)");
  } else if (backends->kind != ConfigNode::Kind::kSequence) {
    diag.error(backends->mark,
               std::string("backends must be a list, got ") + backends->kind_name());
  } else if (backends->items.empty()) {
    diag.error(backends->mark, "backends needs at least one backend");
  } else {
    std::set<std::string> names;
    for (size_t i = 0; i < backends->items.size(); ++i) {
      BackendSettings b;
      read_backend(backends->items[i], i, b, diag);
      if (!b.policy.name.empty() && !names.insert(b.policy.name).second) {
        const ConfigNode* n = backends->items[i].find("name");
        diag.error(
            n ? n->mark : backends->items[i].mark,
            "backends[" + std::to_string(i) + "].name: duplicate backend '" + b.policy.name + "'");
      }
      s.backends.push_back(std::move(b));
    }
  }

  if (const ConfigNode* m = r.get("metrics")) read_metrics(*m, s.metrics, diag);
  if (const ConfigNode* l = r.get("log")) read_log(*l, s.log, diag);
  r.finish();
  return s;
}

Result<ConfigNode> load_tree(const std::filesystem::path& path, std::vector<std::string>* notes) {
  // The real errno in the message (ENOENT, EACCES, EISDIR), not an ifstream's failbit.
  auto read = os::read_file(path.string());
  if (!read) return Error::invalid(read.error().message);
  const std::string text = std::move(*read);
  const std::string name = path.string();
  if (!looks_like_ini(text)) return parse_yaml(text, name);
  // An EP2 ep2.conf (INI) is mapped onto the same settings tree as the YAML config.
  auto ini = parse_ini(text, name);
  if (!ini) return ini.error();
  Diagnostics diag;
  std::vector<std::string> ignored;
  ConfigNode root =
      ep2_to_settings_node(*ini, path.parent_path().string(), diag, notes ? *notes : ignored);
  if (!diag.ok()) {
    std::string msg = diag.joined();
    if (!msg.empty() && msg.back() == '\n') msg.pop_back();
    return Error::invalid(msg);
  }
  return root;
}

Result<Settings> load_file(const std::filesystem::path& path) {
  std::vector<std::string> notes;
  auto root = load_tree(path, &notes);
  if (!root) return root.error();
  const std::string name = path.string();
  Diagnostics diag;
  Settings s = settings_from_node(*root, name, diag);
  s.notes = std::move(notes);
  if (!diag.ok()) {
    std::string msg = diag.joined();
    if (!msg.empty() && msg.back() == '\n') msg.pop_back();
    return Error::invalid(msg);
  }
  return s;
}

}  // namespace ep::config
