#pragma once
// Pure parsers of HAProxy CLI output (haproxy-runtime.md 5). Columns are found by header name, so
// older (17/19-column `show servers state`) and newer headers both work; "-" means empty.
// Errors are ErrorKind::kInvalid and name the line and column.

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/model.h"
#include "core/result.h"
#include "reconcile/applier.h"

namespace ep::haproxy {

// `show info` ("Key: value" lines). Requires Version and Pid; Uptime_sec and Start_time_sec are
// optional (0 when absent).
Result<reconcile::InstanceInfo> parse_show_info(std::string_view text);

struct ServerStateRow {
  int be_id = 0;        // the backend's proxy id (0 when the column is missing)
  std::string backend;  // be_name
  ActualServer server;  // sessions/backup are not in this output (see show stat)
};

struct ServersState {
  bool backend_found = true;  // false for "Can't find backend."
  std::vector<ServerStateRow> rows;
  // With an UnchangedRows callback: one entry per backend in the reply, in order. `digest`
  // covers the raw text of each row's srv_name, srv_addr, srv_port, srv_op_state,
  // srv_admin_state, srv_uweight, srv_check_state and srv_check_result (0: unknown, when a
  // backend's rows are not listed together). A skipped backend has no entry in `rows`.
  struct Digest {
    std::string backend;
    std::size_t digest = 0;
    bool skipped = false;
  };
  std::vector<Digest> digests;
};

// Says whether the caller already holds a backend's rows with this digest: they are then not
// parsed (a periodic resync of thousands of settled servers costs one pass over the text).
using UnchangedRows = std::function<bool(std::string_view backend, std::size_t digest)>;

// `show servers state [<backend>]`: a version line ("1"), a "# ..." header, then rows.
Result<ServersState> parse_servers_state(std::string_view text,
                                         const UnchangedRows& unchanged = {});

struct StatRow {
  std::string proxy;   // pxname
  std::string name;    // svname; "FRONTEND"/"BACKEND" for aggregates
  std::string status;  // "UP", "DOWN", "MAINT", "DRAIN", "no check", "UP 1/2", ...
  std::string algo;    // BACKEND rows only (empty on older HAProxy without the column)
  std::string addr;    // server rows, "ip:port"
  int scur = 0;
  int weight = 0;
  int bck = 0;  // servers: 1 when backup; BACKEND row: number of backup servers
  int iid = 0;  // the proxy's id (`show stat <iid> <type> <sid>`); 0 when the column is missing

  bool is_backend() const { return name == "BACKEND"; }
  bool is_frontend() const { return name == "FRONTEND"; }
};

struct StatTable {
  bool proxy_found = true;  // false for "No such proxy."
  std::vector<StatRow> rows;
};

// `show stat` CSV with its "# pxname,svname,..." header.
Result<StatTable> parse_show_stat(std::string_view text);

}  // namespace ep::haproxy
