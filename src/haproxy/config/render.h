#pragma once
// Renders a Template with the servers HAProxy runs now. Pure: no I/O.
//
// One line per managed server, in the order HAProxy reports them (config order, then dynamic
// servers), so names never move (EP2 bug #12):
//
//   server <name> <addr>:<port> weight <w>[ backup][ <server_options>][ disabled]
//
// `disabled` = in maintenance (free slots included: slot mode writes every slot). A server with
// no address (free slot shown as "-") gets the slot placeholder 127.0.0.1:1. Port 0 writes the
// address alone. IPv6 addresses are written in brackets. Draining is a runtime-only state (HAProxy
// has no config keyword for it): a draining server is written like a ready one; the reconciler
// drains it again after a restart, or a server-state-file restores it across a reload. The output
// always ends with a newline (EP2 bug #11).

#include <string>
#include <vector>

#include "core/model.h"
#include "core/result.h"
#include "haproxy/config/template.h"

namespace ep::haproxy::config {

struct RenderBackend {
  std::string name;
  std::string server_options;  // BackendPolicy::server_options
  std::vector<ActualServer> servers;
};

// One server line, without indentation or newline.
std::string server_line(const ActualServer& server, const std::string& server_options);

// Renders the template. Errors (kInvalid, file:line:col) when a placeholder names a backend not
// in `backends` or `{{ nodes }}` is used with other than one backend.
Result<std::string> render(const Template& tpl, const std::vector<RenderBackend>& backends);

}  // namespace ep::haproxy::config
