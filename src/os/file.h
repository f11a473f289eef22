#pragma once
// Reading a whole file, bounded.

#include <cstddef>
#include <string>

#include "core/result.h"

namespace ep::os {

// The whole content of `path`. Errors name the path and the reason: kUnavailable when it cannot
// be opened or read (missing, permissions, a directory), kInvalid when it is larger than
// `max_bytes` (nothing is returned then: a truncated config or token is never used).
// `nonblocking`: open with O_NONBLOCK, so a FIFO put at the path cannot block the caller (a
// source on an event loop); on a regular file it changes nothing.
Result<std::string> read_file(const std::string& path, std::size_t max_bytes = 64u << 20,
                              bool nonblocking = false);

}  // namespace ep::os
