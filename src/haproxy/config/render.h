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
  // > 0: server i (0-based) is written with `id <first_id + i>`. HAProxy's config parser gives a
  // server without `id` the first free id by walking the ids in use, which is quadratic in the
  // backend's size (10,000 server lines parse several times slower without ids, on 2.6 and 3.0);
  // the bulk reload path renders explicit ids above any hand-written server's (kBulkFirstId).
  int first_id = 0;
};

// Explicit server ids of a bulk reload start here, far above the ids HAProxy gives hand-written
// servers (1, 2, ...), so the two never collide.
inline constexpr int kBulkFirstId = 100001;

// One server line, without indentation or newline. `id` > 0 adds `id <id>`.
std::string server_line(const ActualServer& server, const std::string& server_options,
                        int id = 0);

// Renders the template. Errors (kInvalid, file:line:col) when a placeholder names a backend not
// in `backends` or `{{ nodes }}` is used with other than one backend.
Result<std::string> render(const Template& tpl, const std::vector<RenderBackend>& backends);

}  // namespace ep::haproxy::config
