#pragma once
// `show servers state <backend>` as an operator's script reads it: rows by server name, columns
// found by the header line (they differ across HAProxy versions).

#include <map>
#include <string>

#include "support/haproxy/haproxy_fixture.h"

namespace ep::test {

struct ServerRow {
  std::string name;
  std::string addr;
  int port = 0;
  int weight = 0;  // srv_uweight
  int admin = 0;   // srv_admin_state bits (0x01 maint, 0x08 drain, ...)
  int op = 0;      // srv_op_state
};

// Empty when the backend does not exist or HAProxy does not answer.
std::map<std::string, ServerRow> servers_state(const HaproxyFixture& hp, const std::string& backend);
// The same from any admin socket path.
std::map<std::string, ServerRow> servers_state(const std::string& socket, const std::string& backend);

}  // namespace ep::test
