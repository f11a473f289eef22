#pragma once
// Builders for HAProxy runtime commands (haproxy-runtime.md 2.3, 3). Every value is validated
// and escaped here, at the edge: a builder never returns a command made from unchecked text.
// Names (backend, server) are escaped (`;` `\` space tab get a backslash) and refused when they
// are empty, contain CR/LF/NUL or `/`; addresses must be IP literals; ports 1-65535; weights
// 0-256. Failures are ErrorKind::kInvalid with a message naming the bad value.

#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace ep::haproxy::cmd {

// HAProxy's CLI allows at most 64 words per command (MAX_CLI_ARGS, 2.6).
inline constexpr std::size_t kMaxWords = 64;

// Escapes `;`, `\`, space and tab; refuses empty values and CR, LF, NUL. `what` names the value
// in the error ("backend name").
Result<std::string> escape(std::string_view value, std::string_view what);

// Splits a backend's server_options on spaces/tabs into words, each validated and escaped.
Result<std::vector<std::string>> split_options(std::string_view options);

enum class State { kReady, kDrain, kMaint };
enum class Health { kUp, kDown };

Result<std::string> set_addr(std::string_view backend, std::string_view server,
                             std::string_view address, int port);
Result<std::string> set_weight(std::string_view backend, std::string_view server, int weight);
// `weight 0%` / `weight 100%`: the only weights a static LB algorithm (static-rr) accepts.
Result<std::string> set_weight_percent(std::string_view backend, std::string_view server,
                                       int percent);
Result<std::string> set_state(std::string_view backend, std::string_view server, State state);
Result<std::string> set_health(std::string_view backend, std::string_view server, Health health);
// How a server with health checks leaves maintenance: `set server B/S state drain;set server B/S
// health down` on ONE line. DRAIN gets no load-balanced traffic even if the second command is lost
// (the connection dies between the two: ElasticProxy killed), and `health down` makes HAProxy run
// `rise` checks before it counts as UP. The reconciler sets it ready once a check passed
// (ActualServer::health_passed). Without checks: `state ready` (nothing to wait for).
Result<std::string> warm_line(std::string_view backend, std::string_view server, bool checks);
// `add server B/S <addr>:<port> weight W [backup] <options...>` (IPv6 in brackets). Refuses more
// than kMaxWords words.
Result<std::string> add_server(std::string_view backend, std::string_view server,
                               std::string_view address, int port, int weight, bool backup,
                               std::string_view server_options);
Result<std::string> del_server(std::string_view backend, std::string_view server);
Result<std::string> enable_health(std::string_view backend, std::string_view server);
Result<std::string> enable_agent(std::string_view backend, std::string_view server);
Result<std::string> shutdown_sessions(std::string_view backend, std::string_view server);

std::string show_info();
Result<std::string> show_servers_state(std::string_view backend);
// `show stat <backend> -1 -1`: every row of the proxy HAProxy finds by that name, BACKEND row
// (with `algo`) included. HAProxy 2.6 takes the first proxy of that name: a frontend of the same
// name as the backend shadows it. Prefer show_stat_proxy() once the id is known.
Result<std::string> show_stat(std::string_view backend);
// `show stat <backend> 2 -1`: the BACKEND row alone (exists, `algo`, `iid`), one row whatever the
// number of servers. Shadowed by a frontend of the same name like show_stat().
Result<std::string> show_stat_backend_row(std::string_view backend);
// `show servers state` (every backend).
std::string show_servers_state_all();
// `show stat <iid> 6 -1`: the BACKEND row and the servers of the proxy with that id (type mask
// 2 backends | 4 servers). An unknown id answers the header alone. Refuses ids <= 0.
Result<std::string> show_stat_proxy(int proxy_id);
// `show stat <iid> 2 -1`: the BACKEND row alone of the proxy with that id. Refuses ids <= 0.
Result<std::string> show_stat_proxy_backend_row(int proxy_id);
// `show stat -1 6 -1`: the BACKEND row and servers of every proxy (no frontends).
std::string show_stat_backends();
// `show stat -1 2 -1`: the BACKEND row of every proxy, no server rows (one row per backend).
std::string show_stat_backend_rows();

}  // namespace ep::haproxy::cmd
