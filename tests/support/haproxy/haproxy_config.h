#pragma once
// Builds the haproxy.cfg text a test hands to HaproxyFixture (with its @SOCKET@ / @PORTn@
// placeholders), so tests state only what differs: which frontends, backends and server lines.
//
//   HaproxyFixture hp(HaproxyConfig()
//                         .frontend("fe", 0, "web")  // bind 127.0.0.1:@PORT0@
//                         .backend("web")            // balance roundrobin
//                         .str());
//
// Defaults (what nearly every test used to hand-write): `global` with `stats socket @SOCKET@
// level admin`; `defaults` with `mode http` and `timeout connect 1s / client 10s / server 10s`.
// Sections come out in the order they were added, each line indented by two spaces.

#include <string>
#include <vector>

namespace ep::test {

class HaproxyConfig {
 public:
  HaproxyConfig();

  // One more line in `global` (after the stats socket), e.g. "stats timeout 10s".
  HaproxyConfig& global(std::string line);
  // The client and server timeouts in `defaults` (HAProxy time strings, "10s").
  HaproxyConfig& client_server_timeout(std::string timeout);
  // `frontend <name>` bound to 127.0.0.1:@PORT<port_index>@ with `default_backend <backend>`.
  HaproxyConfig& frontend(std::string name, int port_index, std::string backend);
  // `backend <name>` with `balance <balance>` and then `lines` (e.g. "server s1 127.0.0.1:1").
  HaproxyConfig& backend(std::string name, std::string balance = "roundrobin",
                         std::vector<std::string> lines = {});
  // A frontend named `fe_<name>` (or `frontend_name`) on @PORT<port_index>@ and its backend.
  HaproxyConfig& listen(std::string name, int port_index, std::string balance = "roundrobin",
                        std::vector<std::string> lines = {});
  // Raw text appended as is (a section the builder does not model).
  HaproxyConfig& raw(std::string text);

  std::string str() const;

 private:
  std::vector<std::string> global_;
  std::string timeout_ = "10s";
  std::string sections_;
};

}  // namespace ep::test
