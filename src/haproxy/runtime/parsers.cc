#include "haproxy/runtime/parsers.h"

#include <fmt/format.h>

#include <array>
#include <charconv>
#include <map>

#include "haproxy/runtime/replies.h"

namespace ep::haproxy {

namespace {

std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  std::size_t start = 0;
  while (start <= text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    auto line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    start = end + 1;
  }
  return lines;
}

std::vector<std::string_view> split_ws(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    std::size_t s = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > s) out.push_back(line.substr(s, i - s));
  }
  return out;
}

// HAProxy's CSV quotes a field with '"' when it contains a comma or quote ("" inside).
std::vector<std::string> split_csv(std::string_view line) {
  std::vector<std::string> out;
  std::string cur;
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < line.size() && line[i + 1] == '"') {
          cur += '"';
          ++i;
        } else {
          quoted = false;
        }
      } else {
        cur += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(std::move(cur));
  return out;
}

template <typename T>
bool to_number(std::string_view s, T& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

std::string shorten(std::string_view s) {
  return s.size() <= 80 ? std::string(s) : std::string(s.substr(0, 80)) + "...";
}

}  // namespace

Result<reconcile::InstanceInfo> parse_show_info(std::string_view text) {
  std::map<std::string, std::string, std::less<>> kv;
  int n = 0;
  for (auto line : split_lines(text)) {
    ++n;
    if (trim(line).empty()) continue;
    auto colon = line.find(':');
    if (colon == std::string_view::npos) {
      return Error::invalid(
          fmt::format("show info: line {}: expected 'Key: value', got '{}'", n, shorten(line)));
    }
    kv.emplace(std::string(trim(line.substr(0, colon))), std::string(trim(line.substr(colon + 1))));
  }
  reconcile::InstanceInfo info;
  auto version = kv.find("Version");
  if (version == kv.end() || version->second.empty()) {
    return Error::invalid(fmt::format("show info: no 'Version' field in '{}'", shorten(text)));
  }
  info.version = version->second;
  {
    std::string_view v = info.version;
    auto dot = v.find('.');
    auto dot2 = dot == std::string_view::npos ? dot : v.find_first_not_of("0123456789", dot + 1);
    if (dot == std::string_view::npos || !to_number(v.substr(0, dot), info.major) ||
        !to_number(v.substr(dot + 1, (dot2 == std::string_view::npos ? v.size() : dot2) - dot - 1),
                   info.minor)) {
      return Error::invalid(
          fmt::format("show info: cannot read major.minor from Version '{}'", info.version));
    }
  }
  auto number = [&](const char* key, long& out, bool required) -> Status {
    auto it = kv.find(key);
    if (it == kv.end()) {
      if (required) return Error::invalid(fmt::format("show info: no '{}' field", key));
      return {};
    }
    if (!to_number(std::string_view(it->second), out)) {
      return Error::invalid(
          fmt::format("show info: field '{}' is not a number: '{}'", key, shorten(it->second)));
    }
    return {};
  };
  if (auto st = number("Pid", info.pid, true); !st) return st.error();
  if (auto st = number("Uptime_sec", info.uptime_sec, false); !st) return st.error();
  if (auto st = number("Start_time_sec", info.start_time_sec, false); !st) return st.error();
  return info;
}

Result<ServersState> parse_servers_state(std::string_view text, const UnchangedRows& unchanged) {
  ServersState out;
  auto lines = split_lines(text);
  std::size_t i = 0;
  while (i < lines.size() && trim(lines[i]).empty()) ++i;
  if (i < lines.size() && reply::backend_missing(trim(lines[i]))) {
    out.backend_found = false;
    return out;
  }
  if (i >= lines.size() || trim(lines[i]) != "1") {
    return Error::invalid(
        fmt::format("show servers state: expected format version '1' on the first line, got '{}'",
                    i < lines.size() ? shorten(lines[i]) : std::string("<nothing>")));
  }
  ++i;
  if (i >= lines.size() || lines[i].substr(0, 1) != "#") {
    return Error::invalid("show servers state: missing '# be_id be_name ...' header line");
  }
  auto header = split_ws(lines[i].substr(1));
  // Column positions, found once (a whole read has one row for each of thousands of servers).
  constexpr std::size_t kAbsent = static_cast<std::size_t>(-1);
  auto column = [&](std::string_view name) {
    for (std::size_t c = 0; c < header.size(); ++c) {
      if (header[c] == name) return c;
    }
    return kAbsent;
  };
  for (const char* required : {"be_name", "srv_name", "srv_addr", "srv_op_state", "srv_admin_state",
                               "srv_uweight", "srv_check_state"}) {
    if (column(required) == kAbsent) {
      return Error::invalid(fmt::format("show servers state: header has no '{}' column", required));
    }
  }
  const std::size_t c_be_name = column("be_name"), c_be_id = column("be_id"),
                    c_srv_name = column("srv_name"), c_srv_addr = column("srv_addr"),
                    c_op = column("srv_op_state"), c_admin = column("srv_admin_state"),
                    c_weight = column("srv_uweight"), c_check_state = column("srv_check_state"),
                    c_check_result = column("srv_check_result"), c_port = column("srv_port");
  ++i;
  const std::size_t first_row = i;
  std::vector<std::string_view> f;
  f.reserve(header.size());
  // Splits line `n` into f; false for a blank line; an error for a short one.
  auto split = [&](std::size_t n) -> Result<bool> {
    const std::string_view line = lines[n];
    f.clear();
    for (std::size_t k = 0; k < line.size();) {
      while (k < line.size() && (line[k] == ' ' || line[k] == '\t')) ++k;
      const std::size_t start = k;
      while (k < line.size() && line[k] != ' ' && line[k] != '\t') ++k;
      if (k > start) f.push_back(line.substr(start, k - start));
    }
    if (f.empty()) return false;
    if (f.size() < header.size()) {
      return Error::invalid(fmt::format("show servers state: line {}: {} fields, header has {}",
                                        n + 1, f.size(), header.size()));
    }
    return true;
  };

  // With a caller that may hold some backends already: one cheap pass digests each backend's
  // rows (the raw text of the columns below, in order), and the rows of a backend whose digest
  // the caller holds are not parsed at all. HAProxy lists a backend's rows together; a backend
  // whose rows are split gets digest 0 (unknown, parsed).
  std::vector<bool> skip_line;
  if (unchanged) {
    skip_line.assign(lines.size(), false);
    std::map<std::string_view, std::size_t> group_of;  // be_name -> index in out.digests
    std::vector<std::pair<std::size_t, std::size_t>> ranges;  // [first, last] line per group
    std::string_view current;
    std::size_t group = 0;
    for (std::size_t n = first_row; n < lines.size(); ++n) {
      auto some = split(n);
      if (!some) return some.error();
      if (!*some) continue;
      const std::string_view be = f[c_be_name];
      if (out.digests.empty() || be != current) {
        auto [it, fresh] = group_of.emplace(be, out.digests.size());
        if (!fresh) {
          out.digests[it->second].digest = 0;  // split rows: never skipped
          group = it->second;
          ranges[group].second = n;
          current = be;
          continue;
        }
        group = it->second;
        out.digests.push_back({std::string(be), 0x9e3779b97f4a7c15ULL, false});
        ranges.emplace_back(n, n);
        current = be;
      }
      ServersState::Digest& d = out.digests[group];
      ranges[group].second = n;
      if (d.digest == 0) continue;
      for (std::size_t c : {c_srv_name, c_srv_addr, c_port, c_op, c_admin, c_weight,
                            c_check_state, c_check_result}) {
        const std::size_t v = c == kAbsent ? 0 : std::hash<std::string_view>{}(f[c]);
        d.digest ^= v + 0x9e3779b97f4a7c15ULL + (d.digest << 6) + (d.digest >> 2);
      }
      if (d.digest == 0) d.digest = 1;
    }
    for (std::size_t g = 0; g < out.digests.size(); ++g) {
      ServersState::Digest& d = out.digests[g];
      d.skipped = d.digest != 0 && unchanged(d.backend, d.digest);
      if (!d.skipped) continue;
      for (std::size_t n = ranges[g].first; n <= ranges[g].second; ++n) skip_line[n] = true;
    }
  }

  out.rows.reserve(lines.size() - first_row);
  for (i = first_row; i < lines.size(); ++i) {
    if (!skip_line.empty() && skip_line[i]) continue;
    auto some = split(i);
    if (!some) return some.error();
    if (!*some) continue;
    auto get = [&](std::size_t c) -> std::string_view {
      if (c == kAbsent) return {};
      return f[c] == "-" ? std::string_view() : f[c];
    };
    auto num = [&](std::size_t c, const char* name, auto& outv) -> Status {
      if (c == kAbsent) return {};
      auto v = get(c);
      if (!to_number(v, outv)) {
        return Error::invalid(
            fmt::format("show servers state: line {}: column '{}' is not a "
                        "number: '{}'",
                        i + 1, name, v));
      }
      return {};
    };
    ServerStateRow row;
    row.backend = std::string(get(c_be_name));
    if (auto st = num(c_be_id, "be_id", row.be_id); !st) return st.error();
    row.server.name = std::string(get(c_srv_name));
    row.server.address = std::string(get(c_srv_addr));
    if (auto st = num(c_op, "srv_op_state", row.server.op_state); !st) return st.error();
    if (auto st = num(c_admin, "srv_admin_state", row.server.admin_state); !st) return st.error();
    if (auto st = num(c_weight, "srv_uweight", row.server.weight); !st) return st.error();
    if (auto st = num(c_check_state, "srv_check_state", row.server.check_state); !st) {
      return st.error();
    }
    if (auto st = num(c_check_result, "srv_check_result", row.server.check_result); !st) {
      return st.error();
    }
    if (c_port != kAbsent) {
      auto v = get(c_port);
      unsigned port = 0;
      if (!v.empty() && (!to_number(v, port) || port > 65535)) {
        return Error::invalid(
            fmt::format("show servers state: line {}: bad srv_port '{}'", i + 1, v));
      }
      row.server.port = static_cast<std::uint16_t>(port);
    }
    if (row.backend.empty() || row.server.name.empty()) {
      return Error::invalid(
          fmt::format("show servers state: line {}: empty backend or server name", i + 1));
    }
    out.rows.push_back(std::move(row));
  }
  return out;
}

Result<StatTable> parse_show_stat(std::string_view text) {
  StatTable out;
  auto lines = split_lines(text);
  std::size_t i = 0;
  while (i < lines.size() && trim(lines[i]).empty()) ++i;
  if (i < lines.size() && reply::backend_missing(trim(lines[i]))) {
    out.proxy_found = false;
    return out;
  }
  if (i >= lines.size() || lines[i].substr(0, 2) != "# ") {
    return Error::invalid(
        fmt::format("show stat: expected a '# pxname,svname,...' header, got "
                    "'{}'",
                    i < lines.size() ? shorten(lines[i]) : "<nothing>"));
  }
  // Only nine of the ~100 columns are used: their positions are found in one scan of the header
  // (no map of every column: this runs for every targeted read, several times a pass).
  constexpr std::size_t kNone = static_cast<std::size_t>(-1);
  static constexpr std::array<std::string_view, 9> kWanted = {
      "pxname", "svname", "status", "algo", "addr", "scur", "weight", "bck", "iid"};
  std::array<std::size_t, kWanted.size()> at;
  at.fill(kNone);
  {
    const std::string_view head = lines[i].substr(2);
    std::vector<std::string> quoted;  // a header with quotes (never seen) goes through split_csv
    std::vector<std::string_view> names;
    if (head.find('"') != std::string_view::npos) {
      quoted = split_csv(head);
      names.assign(quoted.begin(), quoted.end());
    } else {
      for (std::size_t start = 0;;) {
        const std::size_t comma = head.find(',', start);
        names.push_back(head.substr(start, comma == std::string_view::npos ? comma : comma - start));
        if (comma == std::string_view::npos) break;
        start = comma + 1;
      }
    }
    for (std::size_t c = 0; c < names.size(); ++c) {
      for (std::size_t w = 0; w < kWanted.size(); ++w) {
        if (at[w] == kNone && names[c] == kWanted[w]) at[w] = c;
      }
    }
  }
  const std::size_t c_pxname = at[0], c_svname = at[1], c_status = at[2], c_algo = at[3],
                    c_addr = at[4], c_scur = at[5], c_weight = at[6], c_bck = at[7],
                    c_iid = at[8];
  for (const auto& [name, c] : {std::pair{"pxname", c_pxname}, std::pair{"svname", c_svname},
                                std::pair{"scur", c_scur}, std::pair{"status", c_status},
                                std::pair{"bck", c_bck}}) {
    if (c == kNone) return Error::invalid(fmt::format("show stat: header has no '{}' column", name));
  }
  ++i;
  const std::size_t min_fields = std::max(c_status, c_bck) + 1;
  // Rows are split into views (no allocation per field: a whole read has ~100 fields for each of
  // thousands of servers); a row with a quoted field goes through split_csv.
  std::vector<std::string> owned;
  std::vector<std::string_view> f;
  for (; i < lines.size(); ++i) {
    if (trim(lines[i]).empty()) continue;
    f.clear();
    if (lines[i].find('"') == std::string_view::npos) {
      std::size_t start = 0;
      for (;;) {
        const std::size_t comma = lines[i].find(',', start);
        f.push_back(
            lines[i].substr(start, comma == std::string_view::npos ? comma : comma - start));
        if (comma == std::string_view::npos) break;
        start = comma + 1;
      }
    } else {
      owned = split_csv(lines[i]);
      f.assign(owned.begin(), owned.end());
    }
    auto get = [&](std::size_t c) -> std::string_view {
      return c == kNone || c >= f.size() ? std::string_view() : f[c];
    };
    if (f.size() < min_fields) {
      return Error::invalid(fmt::format("show stat: line {}: only {} fields", i + 1, f.size()));
    }
    StatRow row;
    row.proxy = get(c_pxname);
    row.name = get(c_svname);
    row.status = get(c_status);
    row.algo = get(c_algo);
    row.addr = get(c_addr);
    auto num = [&](const char* name, std::size_t c, int& v) -> Status {
      auto s = get(c);
      if (s.empty()) return {};  // HAProxy leaves non-applicable counters empty
      if (!to_number(s, v)) {
        return Error::invalid(fmt::format("show stat: line {}: column '{}' is not a number: '{}'",
                                          i + 1, name, shorten(s)));
      }
      return {};
    };
    if (auto st = num("scur", c_scur, row.scur); !st) return st.error();
    if (auto st = num("weight", c_weight, row.weight); !st) return st.error();
    if (auto st = num("bck", c_bck, row.bck); !st) return st.error();
    if (auto st = num("iid", c_iid, row.iid); !st) return st.error();
    out.rows.push_back(std::move(row));
  }
  return out;
}

}  // namespace ep::haproxy
