#include "haproxy/reload/show_proc.h"

#include <charconv>
#include <sstream>

namespace ep::haproxy::reload {
namespace {

bool to_long(std::string_view s, long& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

std::vector<std::string_view> words(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

std::string shown(std::string_view line) { return std::string(line.substr(0, 120)); }

}  // namespace

Result<ProcTable> parse_show_proc(std::string_view text) {
  enum class Section { kHeader, kWorkers, kOld, kOther } section = Section::kHeader;
  ProcTable t;
  bool have_master = false;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line =
        text.substr(pos, nl == std::string_view::npos ? text.size() - pos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    if (line[0] == '#') {
      if (line.rfind("#<PID>", 0) == 0) continue;
      if (line == "# workers") {
        section = Section::kWorkers;
      } else if (line == "# old workers") {
        section = Section::kOld;
      } else {
        section = Section::kOther;  // "# programs", "# old programs", future sections
      }
      continue;
    }
    auto w = words(line);
    if (section == Section::kOther) continue;
    long pid = 0, reloads = 0;
    if (w.size() < 3 || !to_long(w[0], pid) || pid <= 0 || !to_long(w[2], reloads)) {
      return Error::invalid("show proc: unexpected line '" + shown(line) + "'");
    }
    ProcRow row{pid, std::string(w[1]), static_cast<int>(reloads)};
    if (row.type == "master") {
      t.master_pid = pid;
      t.master_reloads = row.reloads;
      if (w.size() >= 5 && w[3] == "[failed:" && !w[4].empty() && w[4].back() == ']') {
        long failed = 0;
        if (to_long(w[4].substr(0, w[4].size() - 1), failed)) t.failed = static_cast<int>(failed);
      }
      have_master = true;
    } else if (section == Section::kWorkers) {
      t.workers.push_back(row);
    } else if (section == Section::kOld) {
      t.old_workers.push_back(row);
    }
  }
  if (!have_master) {
    return Error::invalid("show proc: no master row in the reply ('" + shown(text) + "')");
  }
  return t;
}

}  // namespace ep::haproxy::reload
