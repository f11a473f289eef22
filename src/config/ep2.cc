#include "config/ep2.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>

#include "os/strings.h"

namespace ep::config {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

using os::trim;

// One section while parsing: keys in file order, raw (uninterpolated) values.
struct RawOption {
  std::string key;
  Mark key_mark;
  Mark value_mark;
  std::vector<std::string> lines;  // first line + continuation lines
};
struct RawSection {
  std::string name;
  Mark mark;
  std::vector<RawOption> options;
  RawOption* find(std::string_view key) {
    for (auto& o : options)
      if (o.key == key) return &o;
    return nullptr;
  }
};

std::string joined_value(const RawOption& o) {
  std::string v;
  for (size_t i = 0; i < o.lines.size(); ++i) {
    if (i) v += '\n';
    v += o.lines[i];
  }
  // configparser drops trailing empty lines of a multi-line value.
  while (!v.empty() && v.back() == '\n') v.pop_back();
  return v;
}

// configparser's BasicInterpolation: `%%` is `%`, `%(name)s` is another key of the same section
// (or DEFAULT), at most 10 levels deep.
Result<std::string> interpolate(const std::string& value, const Mark& mark,
                                const std::map<std::string, std::string>& scope, int depth) {
  if (depth > 10) {
    return Error::invalid(mark.str() + ": interpolation nested more than 10 levels (a loop?)");
  }
  std::string out;
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] != '%') {
      out += value[i];
      continue;
    }
    if (i + 1 < value.size() && value[i + 1] == '%') {
      out += '%';
      ++i;
      continue;
    }
    if (i + 1 < value.size() && value[i + 1] == '(') {
      const size_t close = value.find(")s", i + 2);
      if (close == std::string::npos) {
        return Error::invalid(mark.str() + ": bad interpolation reference '" + value.substr(i) +
                              "' (expected %(name)s)");
      }
      const std::string name = lower(value.substr(i + 2, close - i - 2));
      auto it = scope.find(name);
      if (it == scope.end()) {
        return Error::invalid(mark.str() + ": interpolation refers to unknown key '" + name + "'");
      }
      auto inner = interpolate(it->second, mark, scope, depth + 1);
      if (!inner) return inner.error();
      out += *inner;
      i = close + 1;
      continue;
    }
    return Error::invalid(mark.str() + ": '%' must be followed by '%' or '(' (write %% for a " +
                          "literal percent sign)");
  }
  return out;
}

Mark at(const std::string& file, int line, int column) {
  Mark m;
  m.file = file;
  m.line = line;
  m.column = column;
  return m;
}

}  // namespace

bool looks_like_ini(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string line(trim(text.substr(pos, end - pos)));
    pos = end + 1;
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    return line.size() >= 3 && line.front() == '[' && line.back() == ']' && line[1] != '[' &&
           line.find_first_of(",{}\"'") == std::string::npos;
  }
  return false;
}

Result<ConfigNode> parse_ini(std::string_view text, const std::string& file) {
  std::vector<RawSection> sections;
  std::optional<size_t> defaults;  // index of [DEFAULT]
  RawSection* current = nullptr;
  RawOption* option = nullptr;  // last option: continuation lines attach to it
  size_t option_indent = 0;
  std::vector<std::string> errors;

  size_t pos = 0;
  int line_no = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    const bool last = end == text.size();
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line_no == 1 && line.substr(0, 3) == "\xEF\xBB\xBF") line.remove_prefix(3);  // BOM
    if (line.find('\0') != std::string_view::npos) {
      errors.push_back(at(file, line_no, 1).str() + ": NUL byte in the file");
      if (last) break;
      continue;
    }
    const std::string stripped(trim(line));
    size_t indent = 0;
    while (indent < line.size() && std::isspace(static_cast<unsigned char>(line[indent]))) ++indent;

    if (stripped.empty() || stripped[0] == '#' || stripped[0] == ';') {
      // A blank line inside a multi-line value belongs to it (trailing ones are dropped at the
      // end); a comment line is skipped without ending the value.
      if (stripped.empty() && option != nullptr) option->lines.emplace_back();
      if (last) break;
      continue;
    }
    // Continuation: indented deeper than the line that started the current option.
    if (option != nullptr && indent > option_indent) {
      option->lines.push_back(stripped);
      if (last) break;
      continue;
    }
    option_indent = indent;
    if (stripped.front() == '[') {
      const size_t close = stripped.rfind(']');
      if (close == std::string::npos || close < 2) {
        errors.push_back(at(file, line_no, static_cast<int>(indent) + 1).str() +
                         ": section header '" + stripped + "' is missing its closing ']'");
        if (last) break;
        continue;
      }
      std::string name = stripped.substr(1, close - 1);
      option = nullptr;
      bool dup = false;
      for (const auto& s : sections) dup = dup || s.name == name;
      if (dup) {
        errors.push_back(at(file, line_no, static_cast<int>(indent) + 1).str() + ": section [" +
                         name + "] appears twice");
        current = nullptr;
      } else {
        sections.push_back(RawSection{name, at(file, line_no, static_cast<int>(indent) + 1), {}});
        if (name == "DEFAULT") defaults = sections.size() - 1;
        current = &sections.back();
      }
      // `sections` may reallocate: re-point `current` after every push (done above).
      if (last) break;
      continue;
    }
    if (current == nullptr) {
      if (sections.empty()) {
        errors.push_back(at(file, line_no, static_cast<int>(indent) + 1).str() + ": '" + stripped +
                         "' comes before the first [section] header");
      }
      if (last) break;
      continue;
    }
    const size_t delim = stripped.find_first_of("=:");
    if (delim == std::string::npos) {
      errors.push_back(at(file, line_no, static_cast<int>(indent) + 1).str() + ": '" + stripped +
                       "' is not 'key = value'");
      option = nullptr;
      if (last) break;
      continue;
    }
    std::string key = lower(trim(std::string_view(stripped).substr(0, delim)));
    if (key.empty()) {
      errors.push_back(at(file, line_no, static_cast<int>(indent) + 1).str() +
                       ": a key is missing before '" + stripped[delim] + "'");
      option = nullptr;
      if (last) break;
      continue;
    }
    if (current->find(key) != nullptr) {
      errors.push_back(at(file, line_no, static_cast<int>(indent) + 1).str() + ": key '" + key +
                       "' appears twice in section [" + current->name + "]");
      option = nullptr;
      if (last) break;
      continue;
    }
    // Column of the value: after the delimiter and its blanks.
    const std::string_view after = std::string_view(stripped).substr(delim + 1);
    size_t vskip = 0;
    while (vskip < after.size() && std::isspace(static_cast<unsigned char>(after[vskip]))) ++vskip;
    RawOption o;
    o.key = key;
    o.key_mark = at(file, line_no, static_cast<int>(indent) + 1);
    o.value_mark = at(file, line_no, static_cast<int>(indent + delim + 1 + vskip) + 1);
    o.lines.emplace_back(trim(after));
    current->options.push_back(std::move(o));
    option = &current->options.back();
    option_indent = indent;
    if (last) break;
  }
  if (!errors.empty()) {
    std::string msg;
    for (const auto& e : errors) msg += (msg.empty() ? "" : "\n") + e;
    return Error::invalid(msg);
  }

  std::map<std::string, std::string> default_scope;
  if (defaults) {
    for (const auto& o : sections[*defaults].options) default_scope[o.key] = joined_value(o);
  }
  ConfigNode root = ConfigNode::make_map(at(file, 1, 1));
  for (const auto& s : sections) {
    std::map<std::string, std::string> scope = default_scope;
    for (const auto& o : s.options) scope[o.key] = joined_value(o);
    ConfigNode section = ConfigNode::make_map(s.mark);
    auto add = [&](const RawOption& o) -> Status {
      auto v = interpolate(joined_value(o), o.value_mark, scope, 0);
      if (!v) return v.error();
      section.add(o.key, ConfigNode::make_scalar(*v, o.value_mark), o.key_mark);
      return {};
    };
    for (const auto& o : s.options) {
      if (auto st = add(o); !st) errors.push_back(st.error().message);
    }
    if (defaults && &s != &sections[*defaults]) {
      for (const auto& o : sections[*defaults].options) {
        if (section.find(o.key) != nullptr) continue;
        if (auto st = add(o); !st) errors.push_back(st.error().message);
      }
    }
    root.add(s.name, std::move(section), s.mark);
  }
  if (!errors.empty()) {
    std::string msg;
    for (const auto& e : errors) msg += (msg.empty() ? "" : "\n") + e;
    return Error::invalid(msg);
  }
  return root;
}

namespace {

// Reads one EP2 section with EP2's defaults; remembers which keys were read.
class Ep2Section {
 public:
  Ep2Section(const ConfigNode* node, std::string name, Diagnostics& diag)
      : node_(node), name_(std::move(name)), diag_(diag) {}

  bool present() const { return node_ != nullptr; }

  // The value, or nullopt when the key is absent. Empty values count as absent: EP2's sample
  // config ships `aws_access_key_id =` lines meaning "not set".
  std::optional<std::string> get(const std::string& key) {
    read_.push_back(key);
    if (node_ == nullptr) return std::nullopt;
    const ConfigNode* v = node_->find(key);
    if (v == nullptr || v->scalar.empty()) return std::nullopt;
    return v->scalar;
  }
  std::string get_or(const std::string& key, const std::string& fallback) {
    return get(key).value_or(fallback);
  }
  // Position of the key's value (or of the section, or of the file).
  Mark mark(const std::string& key, const Mark& fallback) const {
    if (node_ == nullptr) return fallback;
    const ConfigNode* v = node_->find(key);
    return v != nullptr ? v->mark : node_->mark;
  }
  void error(const std::string& key, const Mark& fallback, const std::string& message) {
    diag_.error(mark(key, fallback), "[" + name_ + "] " + key + ": " + message);
  }
  // Keys present but never read (EP2 ignored them too): one note each.
  void unread(std::vector<std::string>& notes) const {
    if (node_ == nullptr) return;
    for (size_t i = 0; i < node_->keys.size(); ++i) {
      const auto& k = node_->keys[i];
      if (std::find(read_.begin(), read_.end(), k) == read_.end()) {
        notes.push_back(node_->key_marks[i].str() + ": [" + name_ + "] " + k +
                        ": unknown key, ignored (EP2 ignores it too)");
      }
    }
  }

 private:
  const ConfigNode* node_;
  std::string name_;
  Diagnostics& diag_;
  std::vector<std::string> read_;
};

const ConfigNode* find_section(const ConfigNode& ini, std::string_view name, std::string* found) {
  for (size_t i = 0; i < ini.keys.size(); ++i) {
    if (lower(ini.keys[i]) == name) {
      if (found) *found = ini.keys[i];
      return &ini.values[i];
    }
  }
  return nullptr;
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t c = s.find(',', pos);
    if (c == std::string::npos) c = s.size();
    std::string item(trim(std::string_view(s).substr(pos, c - pos)));
    if (!item.empty()) out.push_back(item);
    pos = c + 1;
  }
  return out;
}

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c));
  });
}

// An HAProxy time value: digits with an optional unit (us, ms, s, m, h, d).
bool haproxy_time(const std::string& s) {
  size_t i = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
  if (i == 0 || i > 9) return false;
  const std::string unit = s.substr(i);
  return unit.empty() || unit == "us" || unit == "ms" || unit == "s" || unit == "m" ||
         unit == "h" || unit == "d";
}

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

ConfigNode scalar(std::string v, const Mark& m) { return ConfigNode::make_scalar(std::move(v), m); }

ConfigNode list(const std::vector<std::string>& items, const Mark& m) {
  ConfigNode n = ConfigNode::make_sequence(m);
  for (const auto& i : items) n.items.push_back(scalar(i, m));
  return n;
}

}  // namespace

ConfigNode ep2_to_settings_node(const ConfigNode& ini, const std::string& conf_dir,
                                Diagnostics& diag, std::vector<std::string>& notes) {
  const Mark file_mark = ini.mark;
  std::string haproxy_name = "haproxy";
  const ConfigNode* haproxy_node = find_section(ini, "haproxy", &haproxy_name);
  if (haproxy_node == nullptr) {
    diag.error(file_mark, "EP2 config: the [haproxy] section is missing");
  }
  Ep2Section h(haproxy_node, haproxy_name, diag);

  ConfigNode root = ConfigNode::make_map(file_mark);
  ConfigNode hap = ConfigNode::make_map(h.mark("", file_mark));

  // Sockets: EP2's comma list (one per nbproc process) = one HAProxy instance each for us.
  {
    const std::string v = h.get_or("haproxy_socket_file", "/var/run/haproxy/haproxy.sock");
    auto sockets = split_commas(v);
    if (sockets.empty()) h.error("haproxy_socket_file", file_mark, "no socket path given");
    hap.add("sockets", list(sockets, h.mark("haproxy_socket_file", file_mark)));
  }
  hap.add("config", scalar(h.get_or("haproxy_config_file", "/etc/haproxy/haproxy.cfg"),
                           h.mark("haproxy_config_file", file_mark)));
  {
    std::string tpl;
    if (auto v = h.get("template_file")) {
      tpl = *v;
    } else {
      // EP2's built-in default is ep2.template, but its installer ships haproxy.cfg.template:
      // take whichever exists next to ep2.conf (ep2.template first, as EP2 does).
      const std::string dir = conf_dir.empty() ? "." : conf_dir;
      tpl = dir + "/ep2.template";
      if (!file_exists(tpl) && file_exists(dir + "/haproxy.cfg.template")) {
        tpl = dir + "/haproxy.cfg.template";
      }
      notes.push_back("[" + haproxy_name + "] template_file not set: using " + tpl);
    }
    hap.add("template", scalar(tpl, h.mark("template_file", file_mark)));
  }
  hap.add("binary", scalar(h.get_or("haproxy_binary", "/usr/sbin/haproxy"),
                           h.mark("haproxy_binary", file_mark)));
  hap.add("pidfile",
          scalar(h.get_or("pid_file", "/run/haproxy.pid"), h.mark("pid_file", file_mark)));
  {
    const std::string v = lower(h.get_or("update_type", "update_by_runtime"));
    std::string update;
    if (v == "update_by_runtime" || v == "udpate_by_runtime") {  // EP2's README spells it so
      update = "runtime";
    } else if (v == "update_by_config") {
      update = "config";
    } else {
      h.error("update_type", file_mark, "'" + v + "' is not update_by_runtime or update_by_config");
    }
    if (!update.empty()) hap.add("update", scalar(update, h.mark("update_type", file_mark)));
  }
  {
    ConfigNode reload = ConfigNode::make_map(h.mark("start_by", file_mark));
    const std::string by = lower(h.get_or("start_by", "binary"));
    const std::string unit = h.get_or("service_name", "haproxy");
    if (by == "binary") {
      reload.add("method", scalar("binary", h.mark("start_by", file_mark)));
    } else if (by == "systemd") {
      reload.add("method", scalar("systemctl", h.mark("start_by", file_mark)));
      reload.add("unit", scalar(unit, h.mark("service_name", file_mark)));
    } else if (by == "init") {
      h.error("start_by", file_mark, "'init' was never implemented by EP2; use binary or systemd");
    } else {
      h.error("start_by", file_mark, "'" + by + "' is not binary or systemd");
    }
    hap.add("reload", std::move(reload), h.mark("start_by", file_mark));
  }
  // EP2 always renders the config and starts HAProxy when it is not running.
  hap.add("bootstrap", scalar("true", h.mark("", file_mark)));
  root.add("haproxy", std::move(hap), h.mark("", file_mark));

  // The one managed backend.
  ConfigNode backend = ConfigNode::make_map(h.mark("backend_name", file_mark));
  backend.add("name",
              scalar(h.get_or("backend_name", "haproxynode"), h.mark("backend_name", file_mark)));
  if (h.get("node_slots")) {
    // EP2 needed a fixed pool of slots; HAProxy 2.6+ adds servers at runtime, and on older
    // HAProxy slot mode grows the pool by itself (one reload).
    notes.push_back(h.mark("node_slots", file_mark).str() + ": [" + haproxy_name +
                    "] node_slots is not needed: servers are added at runtime (add server), "
                    "and slot pools grow by themselves on HAProxy < 2.6");
  }
  {
    std::string options = "check";
    if (auto inter = h.get("check_interval")) {
      if (!haproxy_time(*inter)) {
        h.error("check_interval", file_mark,
                "'" + *inter + "' is not an HAProxy time (e.g. 2000 or 2s)");
      } else {
        options += " inter " + *inter;
      }
    }
    if (auto maxconn = h.get("backend_maxconn")) {
      if (!all_digits(*maxconn) || maxconn->size() > 9) {
        h.error("backend_maxconn", file_mark, "'" + *maxconn + "' is not a whole number");
      } else {
        options += " maxconn " + *maxconn;
      }
    }
    backend.add("server_options", scalar(options, h.mark("check_interval", file_mark)));
  }

  const std::string port = h.get_or("backend_port", "6003");
  if (!all_digits(port) || port.size() > 5 || std::stol(port) < 1 || std::stol(port) > 65535) {
    h.error("backend_port", file_mark, "'" + port + "' is not a port (1-65535)");
  }
  std::string interval = h.get_or("sleep_before_next_run", "5");
  {
    bool ok = !interval.empty();
    double secs = 0;
    try {
      size_t used = 0;
      secs = std::stod(interval, &used);
      ok = ok && used == interval.size() && secs > 0 && secs <= 86400;
    } catch (...) {
      ok = false;
    }
    if (!ok) {
      h.error("sleep_before_next_run", file_mark, "'" + interval + "' is not a number of seconds");
    }
    interval += "s";
  }

  ConfigNode sources = ConfigNode::make_sequence(h.mark("orchestrator", file_mark));
  const std::string orchestrator = lower(h.get_or("orchestrator", "aws"));
  if (orchestrator == "aws") {
    std::string name = "AWS";
    const ConfigNode* node = find_section(ini, "aws", &name);
    Ep2Section a(node, name, diag);
    if (node == nullptr) {
      diag.error(h.mark("orchestrator", file_mark),
                 "EP2 config: orchestrator is aws but the [AWS] section is missing");
    }
    const Mark m = a.mark("", file_mark);
    ConfigNode asg = ConfigNode::make_map(m);
    if (auto v = a.get("asg_name")) {
      asg.add("asg_name", scalar(*v, a.mark("asg_name", m)));
    } else if (node != nullptr) {
      a.error("asg_name", m, "required (the Auto Scaling group name, or a comma-separated list)");
    }
    if (auto v = a.get("region_name")) asg.add("region", scalar(*v, a.mark("region_name", m)));
    auto id = a.get("aws_access_key_id");
    auto secret = a.get("aws_secret_access_key");
    if (id && secret) {
      asg.add("access_key_id", scalar(*id, a.mark("aws_access_key_id", m)));
      asg.add("secret_access_key", scalar(*secret, a.mark("aws_secret_access_key", m)));
    } else if (id || secret) {
      a.error(id ? "aws_secret_access_key" : "aws_access_key_id", m,
              "aws_access_key_id and aws_secret_access_key must be set together (or both left "
              "empty to use the standard AWS credential chain)");
    }
    if (auto v = a.get("ip_type")) {
      const std::string t = lower(*v);
      if (t != "private" && t != "public") {
        a.error("ip_type", m, "'" + *v + "' is not private or public");
      } else {
        asg.add("address", scalar(t, a.mark("ip_type", m)));
      }
    } else if (node != nullptr) {
      notes.push_back(m.str() + ": [" + name +
                      "] ip_type not set: using private IPs (EP2 used public IPs "
                      "here; set ip_type = public to keep that)");
    }
    asg.add("port", scalar(port, h.mark("backend_port", file_mark)));
    asg.add("interval", scalar(interval, h.mark("sleep_before_next_run", file_mark)));
    ConfigNode item = ConfigNode::make_map(m);
    item.add("aws_asg", std::move(asg), m);
    sources.items.push_back(std::move(item));
    a.unread(notes);
  } else if (orchestrator == "consul") {
    std::string name = "CONSUL";
    const ConfigNode* node = find_section(ini, "consul", &name);
    Ep2Section c(node, name, diag);
    if (node == nullptr) {
      diag.error(h.mark("orchestrator", file_mark),
                 "EP2 config: orchestrator is consul but the [CONSUL] section is missing");
    }
    const Mark m = c.mark("", file_mark);
    ConfigNode consul = ConfigNode::make_map(m);
    if (auto v = c.get("service_name")) {
      consul.add("service", scalar(*v, c.mark("service_name", m)));
    } else if (node != nullptr) {
      c.error("service_name", m, "required (the Consul service to follow)");
    }
    const std::string ip = c.get_or("consul_ip", "127.0.0.1");
    const std::string cport = c.get_or("consul_port", "8500");
    if (!all_digits(cport) || cport.size() > 5 || std::stol(cport) < 1 ||
        std::stol(cport) > 65535) {
      c.error("consul_port", m, "'" + cport + "' is not a port (1-65535)");
    }
    const bool v6 = ip.find(':') != std::string::npos && ip.front() != '[';
    consul.add("address", scalar((v6 ? "[" + ip + "]" : ip) + ":" + cport, c.mark("consul_ip", m)));
    // A real boolean (EP2 read the string "False" as true: its bug #7).
    if (auto v = c.get("only_passing")) {
      consul.add("passing_only", scalar(*v, c.mark("only_passing", m)));
    }
    if (auto v = c.get("tags")) consul.add("tags", list(split_commas(*v), c.mark("tags", m)));
    ConfigNode item = ConfigNode::make_map(m);
    item.add("consul", std::move(consul), m);
    sources.items.push_back(std::move(item));
    c.unread(notes);
    notes.push_back("[" + name + "] servers use each instance's Service.Port (and " +
                    "Service.Address when set), not backend_port; changes arrive by blocking " +
                    "query, so sleep_before_next_run is not used");
  } else {
    h.error("orchestrator", file_mark, "'" + orchestrator + "' is not aws or consul");
  }
  backend.add("sources", std::move(sources), h.mark("orchestrator", file_mark));
  ConfigNode backends = ConfigNode::make_sequence(file_mark);
  backends.items.push_back(std::move(backend));
  root.add("backends", std::move(backends), file_mark);

  for (const char* key : {"lock_dir", "sleep_before_next_lock_attempt", "log_file"}) {
    if (h.get(key)) {
      notes.push_back(
          h.mark(key, file_mark).str() + ": [" + haproxy_name + "] " + key + " is not used: " +
          (std::string(key) == "log_file" ? "logs go to stderr (the journal under systemd)"
                                          : "ElasticProxy takes its own instance lock"));
    }
  }
  h.unread(notes);
  for (size_t i = 0; i < ini.keys.size(); ++i) {
    const std::string k = lower(ini.keys[i]);
    if (k != "haproxy" && k != "aws" && k != "consul" && ini.keys[i] != "DEFAULT") {
      notes.push_back(ini.key_marks[i].str() + ": section [" + ini.keys[i] +
                      "] is not an EP2 section, ignored");
    }
  }
  return root;
}

}  // namespace ep::config
