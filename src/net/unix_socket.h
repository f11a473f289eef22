#pragma once
// A connected Unix-domain stream socket (HAProxy admin socket, master CLI). Owns its fd (closed
// by the destructor), non-blocking, every operation bounded by a deadline. Not thread-safe: one
// owner at a time. Errors name the socket path; connection problems and timeouts are
// ErrorKind::kUnavailable (retry later), bad arguments kInvalid.

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include "core/result.h"

namespace ep::net {

class UnixSocket {
 public:
  using Deadline = std::chrono::steady_clock::time_point;

  // Tells read_until() how much of `buffer` is a complete message: returns the length of the
  // complete prefix, or 0 when more bytes are needed.
  using Complete = std::function<std::size_t(std::string_view buffer)>;

  UnixSocket() = default;
  ~UnixSocket();
  UnixSocket(UnixSocket&& other) noexcept;
  UnixSocket& operator=(UnixSocket&& other) noexcept;
  UnixSocket(const UnixSocket&) = delete;
  UnixSocket& operator=(const UnixSocket&) = delete;

  // Connects to `path`. kInvalid for a path that does not fit sockaddr_un; kUnavailable for
  // ENOENT, ECONNREFUSED, EAGAIN, a timeout, ...
  static Result<UnixSocket> connect(const std::string& path, Deadline deadline);

  bool is_open() const { return fd_ >= 0; }
  const std::string& path() const { return path_; }

  // Writes all of `data` or fails (peer closed, timeout).
  Status write_all(std::string_view data, Deadline deadline);

  // Reads until `complete(buffered)` says a prefix is complete; returns that prefix and keeps the
  // rest buffered for the next call. Fails on EOF before completion (the error says how many bytes
  // had arrived), on a timeout, or when more than `max_bytes` are buffered without completion.
  Result<std::string> read_until(const Complete& complete, Deadline deadline,
                                 std::size_t max_bytes = 64 * 1024 * 1024);

  // Convenience: read_until the buffer contains `delimiter`; the result includes it.
  Result<std::string> read_until_delimiter(std::string_view delimiter, Deadline deadline);

  // Reads until the peer closes; returns everything received (buffered bytes included).
  Result<std::string> read_to_eof(Deadline deadline, std::size_t max_bytes = 64 * 1024 * 1024);

  // One step of a full-duplex exchange: waits (until the deadline) for the socket to be readable,
  // or writable while `out` is not empty; then sends what it can of `out` (advancing it) and
  // reads what is available into the buffer. Returns the number of bytes received. EOF, errors
  // and a timeout are kUnavailable errors. Lets a caller stream a large request while reading
  // replies, so neither side blocks on a full buffer.
  Result<std::size_t> exchange(std::string_view& out, Deadline deadline);

  // Bytes received but not yet returned.
  const std::string& buffered() const { return buffer_; }
  // Removes and returns the first `n` buffered bytes.
  std::string consume(std::size_t n);
  // Drops the first `n` buffered bytes (consume() without the copy).
  void discard(std::size_t n);

  void close();

 private:
  UnixSocket(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  // Waits for `events` on the fd until the deadline; kUnavailable on timeout.
  Status wait(short events, Deadline deadline, const char* what);
  // One read into buffer_; returns bytes read (0 = EOF).
  Result<std::size_t> fill(Deadline deadline);

  int fd_ = -1;
  std::string path_;
  std::string buffer_;
};

}  // namespace ep::net
