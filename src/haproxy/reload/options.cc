#include "haproxy/reload/options.h"

namespace ep::haproxy::reload {

const char* to_string(Method method) {
  switch (method) {
    case Method::kNone:
      return "none";
    case Method::kMasterCli:
      return "master-cli";
    case Method::kSignal:
      return "signal";
    case Method::kBinary:
      return "binary";
    case Method::kSystemctl:
      return "systemctl";
    case Method::kCommand:
      return "command";
  }
  return "?";
}

Options parse_options(const ConfigNode& node, const Target& target, Diagnostics& diag) {
  Options out;
  if (!target.master_socket.empty()) {
    out.method = Method::kMasterCli;
  } else if (!target.pidfile.empty()) {
    out.method = Method::kBinary;
  }
  MapReader r(node, diag, "haproxy.reload");
  if (!r.valid()) return out;
  std::string method;
  const ConfigNode* method_node = r.node().find("method");
  if (r.one_of("method", method, {"master-cli", "signal", "binary", "systemctl", "command"}) &&
      !method.empty()) {
    out.method = method == "master-cli"  ? Method::kMasterCli
                 : method == "signal"    ? Method::kSignal
                 : method == "binary"    ? Method::kBinary
                 : method == "systemctl" ? Method::kSystemctl
                                         : Method::kCommand;
  }
  if (const ConfigNode* u = r.node().find("unit")) {
    if (r.string("unit", out.unit) && (out.unit.empty() || out.unit[0] == '-')) {
      diag.error(u->mark,
                 "haproxy.reload.unit must be a systemd unit name, got '" + out.unit + "'");
    }
  }
  const ConfigNode* command_node = r.node().find("command");
  if (r.string_list("command", out.command) && command_node != nullptr) {
    if (out.command.empty() || out.command[0].empty()) {
      diag.error(command_node->mark,
                 "haproxy.reload.command must be a non-empty list: program and arguments (run "
                 "without a shell)");
    }
  }
  r.positive_duration("timeout", out.timeout);
  r.duration("quiet", out.quiet);
  r.positive_duration("max_wait", out.max_wait);
  r.duration("min_interval", out.min_interval);
  const ConfigNode* bulk = r.node().find("bulk_threshold");
  const bool bulk_word = bulk != nullptr && bulk->kind == ConfigNode::Kind::kScalar &&
                         bulk->scalar.find_first_not_of("-0123456789") != std::string::npos;
  if (bulk_word) {
    (void)r.get("bulk_threshold");  // known
    if (bulk->scalar == "auto") {
      out.bulk_threshold = Options::kAuto;
    } else {
      diag.error(bulk->mark,
                 "haproxy.reload.bulk_threshold must be 'auto' or a whole number from 0 to "
                 "1000000, got '" + bulk->scalar + "'");
    }
  } else {
    r.integer("bulk_threshold", out.bulk_threshold, 0, 1'000'000);
  }
  if (out.quiet > out.max_wait) {
    const ConfigNode* n = r.node().find("quiet");
    diag.error(n ? n->mark : node.mark, "haproxy.reload.quiet (" +
                                            std::to_string(out.quiet.count()) +
                                            " ms) must not be longer than max_wait (" +
                                            std::to_string(out.max_wait.count()) + " ms)");
  }
  r.finish();

  const Mark where = method_node ? method_node->mark : node.mark;
  switch (out.method) {
    case Method::kMasterCli:
      if (target.master_socket.empty()) {
        diag.error(where, "haproxy.reload.method master-cli needs haproxy.master_socket");
      }
      break;
    case Method::kSignal:
      if (target.pidfile.empty()) {
        diag.error(where, "haproxy.reload.method signal needs haproxy.pidfile (the master's pid)");
      }
      break;
    case Method::kBinary:
      if (target.pidfile.empty() || target.config.empty()) {
        diag.error(where, "haproxy.reload.method binary needs haproxy.pidfile and haproxy.config");
      }
      break;
    case Method::kCommand:
      if (out.command.empty()) {
        diag.error(where, "haproxy.reload.method command needs haproxy.reload.command (a list)");
      }
      break;
    case Method::kSystemctl:
    case Method::kNone:
      break;
  }
  return out;
}

}  // namespace ep::haproxy::reload
