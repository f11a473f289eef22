#pragma once
// The Consul ACL token of a watch: a literal, or a file re-read when it changes (mtime) and on
// demand after a 403, so token rotation needs no restart. Thread-safe. Never logs the value.

#include <cstdint>
#include <mutex>
#include <string>

#include "core/result.h"

namespace ep::discovery::consul {

class TokenReader {
 public:
  TokenReader(std::string token, std::string file, std::string owner);
  // The current token ("" = none: the agent's default token applies). force_reload re-reads the
  // file even when its mtime did not change. Errors (kInvalid) name the file, not the contents.
  Result<std::string> get(bool force_reload = false);

 private:
  std::mutex mu_;
  std::string token_;
  std::string file_;
  std::string owner_;  // for the log line on rotation
  std::int64_t mtime_ = -1;
};

}  // namespace ep::discovery::consul
