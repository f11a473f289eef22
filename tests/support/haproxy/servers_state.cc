#include "support/haproxy/servers_state.h"

#include <sstream>
#include <vector>

namespace ep::test {

std::map<std::string, ServerRow> servers_state(const HaproxyFixture& hp, const std::string& backend) {
  return servers_state(hp.socket_path(), backend);
}

std::map<std::string, ServerRow> servers_state(const std::string& socket, const std::string& backend) {
  std::istringstream in(admin_query(socket, "show servers state " + backend));
  std::string line;
  std::vector<std::string> header;
  std::map<std::string, ServerRow> out;
  auto number = [](const std::string& s) { return s.empty() || s == "-" ? 0 : std::stoi(s); };
  while (std::getline(in, line)) {
    if (line.rfind("# ", 0) == 0) {
      std::istringstream h(line.substr(2));
      std::string w;
      while (h >> w) header.push_back(w);
      continue;
    }
    if (header.empty() || line.empty()) continue;
    std::istringstream r(line);
    std::map<std::string, std::string> f;
    std::string w;
    for (size_t i = 0; r >> w && i < header.size(); ++i) f[header[i]] = w;
    ServerRow row;
    row.name = f["srv_name"];
    row.addr = f["srv_addr"];
    row.port = number(f["srv_port"]);
    row.weight = number(f["srv_uweight"]);
    row.admin = number(f["srv_admin_state"]);
    row.op = number(f["srv_op_state"]);
    out[row.name] = row;
  }
  return out;
}

}  // namespace ep::test
