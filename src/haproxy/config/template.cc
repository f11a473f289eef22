#include "haproxy/config/template.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

namespace ep::haproxy::config {
namespace {

bool is_blank(char c) { return c == ' ' || c == '\t'; }
bool all_blank(std::string_view s) { return std::all_of(s.begin(), s.end(), is_blank); }

// Maps byte offsets to 1-based line:col.
class Positions {
 public:
  Positions(std::string_view text, std::string file) : file_(std::move(file)) {
    starts_.push_back(0);
    for (size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '\n') starts_.push_back(i + 1);
    }
  }
  Mark at(size_t offset) const {
    auto it = std::upper_bound(starts_.begin(), starts_.end(), offset);
    const size_t line = static_cast<size_t>(it - starts_.begin());  // 1-based
    return Mark{file_, static_cast<int>(line), static_cast<int>(offset - starts_[line - 1] + 1)};
  }

 private:
  std::string file_;
  std::vector<size_t> starts_;
};

Error error_at(const Mark& mark, const std::string& message) {
  return Error::invalid(mark.str() + ": " + message);
}

// Reads a quoted string starting at body[i] == '"'; allows \" and \\ escapes.
bool read_quoted(std::string_view body, size_t& i, std::string& out) {
  ++i;
  while (i < body.size()) {
    char c = body[i++];
    if (c == '"') return true;
    if (c == '\\' && i < body.size() && (body[i] == '"' || body[i] == '\\')) c = body[i++];
    out += c;
  }
  return false;
}

bool is_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' ||
         c == ':';
}

}  // namespace

std::vector<std::string> Template::referenced_backends() const {
  std::vector<std::string> out;
  for (const auto& s : segments) {
    if (s.kind == Segment::Kind::kServers &&
        std::find(out.begin(), out.end(), s.text) == out.end()) {
      out.push_back(s.text);
    }
  }
  return out;
}

bool Template::uses_nodes() const {
  return std::any_of(segments.begin(), segments.end(),
                     [](const Segment& s) { return s.kind == Segment::Kind::kNodes; });
}

Result<Template> parse_template(std::string_view text, const std::string& file) {
  Positions pos(text, file);
  Template tpl;
  tpl.file = file;
  std::string cur;  // pending text
  size_t cur_start = 0;
  auto flush = [&] {
    if (!cur.empty()) {
      tpl.segments.push_back({Segment::Kind::kText, std::move(cur), pos.at(cur_start), "", false});
      cur.clear();
    }
  };

  size_t i = 0;
  while (i < text.size()) {
    const size_t open = text.find('{', i);
    if (open == std::string_view::npos || open + 1 >= text.size()) {
      cur.append(text.substr(i));
      break;
    }
    const char next = text[open + 1];
    // Only `{{` opens a placeholder. `{%` stays text: HAProxy log formats use it (`{%Tq}`).
    if (next != '{') {
      cur.append(text.substr(i, open + 1 - i));
      i = open + 1;
      continue;
    }
    cur.append(text.substr(i, open - i));
    // Find the closing braces, outside quotes, on the same line.
    size_t j = open + 2;
    bool in_quote = false;
    size_t close = std::string_view::npos;
    for (; j < text.size() && text[j] != '\n'; ++j) {
      if (in_quote) {
        if (text[j] == '\\' && j + 1 < text.size()) {
          ++j;
        } else if (text[j] == '"') {
          in_quote = false;
        }
      } else if (text[j] == '"') {
        in_quote = true;
      } else if (text[j] == '}' && j + 1 < text.size() && text[j + 1] == '}') {
        close = j;
        break;
      }
    }
    if (close == std::string_view::npos) {
      return error_at(pos.at(open), "unclosed placeholder: '{{' without '}}' on the same line");
    }
    const std::string_view body = text.substr(open + 2, close - open - 2);
    const size_t body_off = open + 2;
    size_t k = 0;
    auto skip_blanks = [&] {
      while (k < body.size() && is_blank(body[k])) ++k;
    };
    skip_blanks();
    Segment seg;
    seg.mark = pos.at(open);
    bool literal = false;
    std::string literal_text;
    if (k < body.size() && body[k] == '"') {
      if (!read_quoted(body, k, literal_text)) {
        return error_at(pos.at(body_off + k), "unterminated string");
      }
      literal = true;
    } else {
      size_t w = k;
      while (k < body.size() && std::isalpha(static_cast<unsigned char>(body[k]))) ++k;
      const std::string_view word = body.substr(w, k - w);
      if (word == "nodes") {
        seg.kind = Segment::Kind::kNodes;
      } else if (word == "servers") {
        seg.kind = Segment::Kind::kServers;
        skip_blanks();
        if (k < body.size() && body[k] == '"') {
          if (!read_quoted(body, k, seg.text)) {
            return error_at(pos.at(body_off + k), "unterminated string");
          }
        } else {
          size_t n = k;
          while (k < body.size() && is_name_char(body[k])) ++k;
          seg.text = std::string(body.substr(n, k - n));
        }
        if (seg.text.empty()) {
          return error_at(pos.at(body_off + k),
                          "expected a backend name after 'servers' (e.g. {{ servers \"web\" }})");
        }
      } else {
        // Show the whole placeholder (`ssl_fc`, not `ssl`), cut to a readable length.
        std::string shown(body.substr(w));
        while (!shown.empty() && is_blank(shown.back())) shown.pop_back();
        if (shown.size() > 60) shown = shown.substr(0, 60) + "...";
        // EP2's README template writes an HAProxy anonymous ACL as `if {{ ssl_fc }}` (Jinja then
        // rendered it empty): say what was probably meant, unless it looks like a misspelt
        // placeholder of ours.
        const bool ours = shown.rfind("node", 0) == 0 || shown.rfind("server", 0) == 0;
        const bool hint = !shown.empty() && !ours && shown.find_first_of("\"'{}") == std::string::npos;
        return error_at(pos.at(body_off + w),
                        "unknown placeholder '" + shown +
                            "'; expected {{ nodes }}, {{ servers \"<backend>\" }} or "
                            "{{ \"literal\" }}" +
                            (hint ? "; for an HAProxy anonymous ACL write single braces: { " +
                                        shown + " }"
                                  : std::string()));
      }
    }
    skip_blanks();
    if (k != body.size()) {
      std::string extra(body.substr(k));
      while (!extra.empty() && is_blank(extra.back())) extra.pop_back();
      return error_at(pos.at(body_off + k), "unexpected '" + extra + "' in placeholder");
    }
    i = close + 2;
    if (literal) {
      cur += literal_text;
      continue;
    }
    // Own line? The raw template text from the line start to `{{` must be blanks (then it is
    // exactly the tail of `cur`), and so must the rest of the line after `}}`.
    const size_t nl = text.rfind('\n', open);
    const size_t line_start = nl == std::string_view::npos ? 0 : nl + 1;
    const std::string_view before = text.substr(line_start, open - line_start);
    size_t eol = text.find('\n', i);
    const std::string_view after =
        text.substr(i, (eol == std::string_view::npos ? text.size() : eol) - i);
    size_t indent_len = 0;
    while (indent_len < before.size() && is_blank(before[indent_len])) ++indent_len;
    seg.indent = std::string(before.substr(0, indent_len));
    if (all_blank(before) && all_blank(after)) {
      seg.own_line = true;
      cur.resize(cur.size() - before.size());
      i = eol == std::string_view::npos ? text.size() : eol + 1;
    }
    flush();
    cur_start = i;
    tpl.segments.push_back(std::move(seg));
  }
  flush();
  return tpl;
}

Result<Template> load_template(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Error::invalid("cannot read template " + path + ": " + std::strerror(errno));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return Error::invalid("cannot read template " + path + ": read error");
  return parse_template(ss.str(), path);
}

void check_template(const Template& tpl, const std::vector<std::string>& backends,
                    Diagnostics& diag) {
  std::set<std::string> covered;
  for (const auto& s : tpl.segments) {
    if (s.kind == Segment::Kind::kNodes) {
      if (backends.size() != 1) {
        diag.error(s.mark, "{{ nodes }} needs exactly one managed backend, but " +
                               std::to_string(backends.size()) +
                               " are configured; use {{ servers \"<backend>\" }}");
      } else {
        covered.insert(backends.front());
      }
    } else if (s.kind == Segment::Kind::kServers) {
      if (std::find(backends.begin(), backends.end(), s.text) == backends.end()) {
        diag.error(s.mark, "{{ servers \"" + s.text + "\" }}: backend '" + s.text +
                               "' is not a managed backend");
      } else {
        covered.insert(s.text);
      }
    }
  }
  for (const auto& b : backends) {
    if (!covered.count(b)) {
      diag.error(Mark{tpl.file, 0, 0}, "managed backend '" + b +
                                           "' has no placeholder in the template (add "
                                           "{{ servers \"" +
                                           b + "\" }} inside it)");
    }
  }
}

}  // namespace ep::haproxy::config
