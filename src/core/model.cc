#include "core/model.h"

namespace ep {

std::string ServerSpec::address_port() const {
  if (address.find(':') != std::string::npos) {
    return "[" + address + "]:" + std::to_string(port);
  }
  return address + ":" + std::to_string(port);
}

}  // namespace ep
