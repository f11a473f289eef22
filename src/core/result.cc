#include "core/result.h"

namespace ep {

const char* to_string(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kInvalid: return "invalid";
    case ErrorKind::kUnavailable: return "unavailable";
    case ErrorKind::kNotYet: return "not-yet";
    case ErrorKind::kRefused: return "refused";
    case ErrorKind::kInternal: return "internal";
  }
  return "unknown";
}

}  // namespace ep
