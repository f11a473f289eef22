#include "support/haproxy/haproxy_config.h"

#include <utility>

namespace ep::test {

HaproxyConfig::HaproxyConfig() : global_{"stats socket @SOCKET@ level admin"} {}

HaproxyConfig& HaproxyConfig::global(std::string line) {
  global_.push_back(std::move(line));
  return *this;
}

HaproxyConfig& HaproxyConfig::client_server_timeout(std::string timeout) {
  timeout_ = std::move(timeout);
  return *this;
}

HaproxyConfig& HaproxyConfig::frontend(std::string name, int port_index, std::string backend) {
  sections_ += "frontend " + name + "\n  bind 127.0.0.1:@PORT" + std::to_string(port_index) +
               "@\n  default_backend " + backend + "\n";
  return *this;
}

HaproxyConfig& HaproxyConfig::backend(std::string name, std::string balance,
                                      std::vector<std::string> lines) {
  sections_ += "backend " + name + "\n  balance " + balance + "\n";
  for (const auto& l : lines) sections_ += "  " + l + "\n";
  return *this;
}

HaproxyConfig& HaproxyConfig::listen(std::string name, int port_index, std::string balance,
                                     std::vector<std::string> lines) {
  frontend("fe_" + name, port_index, name);
  return backend(std::move(name), std::move(balance), std::move(lines));
}

HaproxyConfig& HaproxyConfig::raw(std::string text) {
  sections_ += text;
  if (!sections_.empty() && sections_.back() != '\n') sections_ += '\n';
  return *this;
}

std::string HaproxyConfig::str() const {
  std::string out = "global\n";
  for (const auto& l : global_) out += "  " + l + "\n";
  out += "defaults\n  mode http\n  timeout connect 1s\n  timeout client " + timeout_ +
         "\n  timeout server " + timeout_ + "\n";
  return out + sections_;
}

}  // namespace ep::test
