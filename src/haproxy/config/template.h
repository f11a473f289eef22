#pragma once
// The whole haproxy.cfg as a template. Everything is copied byte for byte except placeholders:
//
//   {{ nodes }}            EP2's placeholder (also `{{nodes}}`): the server lines of the single
//                          managed backend (an error when more than one backend is managed)
//   {{ servers "web" }}    the server lines of managed backend `web` (`{{ servers web }}` too)
//   {{ "{{" }}             a quoted literal, copied as is (the way to write `{{` itself)
//
// A placeholder alone on its line (only blanks around it) is replaced by one line per server, each
// indented like the placeholder (no server: the line disappears). A placeholder inside other text
// is replaced by the lines joined with a newline plus the line's leading blanks. Anything else
// between `{{` and `}}`, or an unclosed `{{`, is an error with file:line:col. `{%` is plain text
// (HAProxy log formats use it), so a Jinja statement reaches `haproxy -c`, which rejects it.
// Pure: no I/O.

#include <string>
#include <string_view>
#include <vector>

#include "core/config_node.h"
#include "core/result.h"

namespace ep::haproxy::config {

struct Segment {
  enum class Kind { kText, kNodes, kServers };
  Kind kind = Kind::kText;
  std::string text;       // kText: the bytes; kServers: the backend name
  Mark mark;              // where the placeholder (or text) starts
  std::string indent;     // placeholders: leading blanks of their line
  bool own_line = false;  // placeholder alone on its line (the line incl. its newline is replaced)
};

struct Template {
  std::string file;
  std::vector<Segment> segments;

  // Backends the template references by name (kServers), in order of first use.
  std::vector<std::string> referenced_backends() const;
  bool uses_nodes() const;
};

// Parses template text. `file` is used in error positions.
Result<Template> parse_template(std::string_view text, const std::string& file);

// Reads and parses a template file (errors name the file; I/O errors with strerror).
Result<Template> load_template(const std::string& path);

// Checks the template against the managed backends: `{{ nodes }}` needs exactly one backend;
// `{{ servers "x" }}` needs x managed; every managed backend needs a placeholder (else its servers
// would vanish at the next reload). Errors (all of them) go to `diag` with file:line:col.
void check_template(const Template& tpl, const std::vector<std::string>& backends,
                    Diagnostics& diag);

}  // namespace ep::haproxy::config
