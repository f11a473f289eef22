#pragma once
// Client for HAProxy's admin (stats) socket in prompt mode (haproxy-runtime.md 2.2, 2.4).
//
// Each call opens a NEW connection (a connection opened before a reload stays attached to the old
// worker), sends `prompt`, pipelines the lines in writes of at most kMaxWriteBytes, reads exactly
// one prompt per command (HAProxy 2.6 prints a prompt after every `;`-separated command), and
// closes with `quit`. Every read is bounded by the timeout; a short, garbled or closed stream is
// an error naming the socket and the command. Not thread-safe; create one per thread if needed.

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace ep::net {
class UnixSocket;
}

namespace ep::haproxy {

class AdminSocket {
 public:
  // Largest write; HAProxy 2.6 drops a single command longer than tune.bufsize (16384).
  static constexpr std::size_t kMaxWriteBytes = 16000;

  // One open prompt-mode connection. Lines sent through run() share it; destroyed = `quit`+close.
  class Session {
   public:
    Session(Session&&) noexcept;
    Session& operator=(Session&&) noexcept;
    ~Session();

    // Sends the lines (pipelined) and returns one reply per line, in order, trailing newlines
    // stripped. A line with several `;`-separated commands gets their non-empty replies joined
    // with "\n". Fails (kUnavailable) on timeout/EOF, (kInvalid) on a line with CR/LF/NUL, an
    // empty line or one longer than kMaxWriteBytes. After a failure the session is closed.
    Result<std::vector<std::string>> run(const std::vector<std::string>& lines);

    // The streaming form of run(): lines come from `next_line` as they become ready (nullopt:
    // none now) and each line's reply goes to `on_reply` as it arrives, in the order sent. A
    // reply may make more lines ready (a job's next step): they go out at once, so HAProxy's
    // input never waits for a whole round to be answered. Ends when `next_line` has none and
    // every line sent has its reply. Errors as run()'s; a refused line fails the stream at once
    // (lines pulled before it may be unsent and their replies not delivered); after an error the
    // session is closed. A caller that stops returning lines (nullopt) stops new ones; lines
    // already in the current write still go out.
    // A line from next_line() needs to stay valid only until the next call; a reply passed to
    // on_reply only during the call.
    using NextLine = std::function<std::optional<std::string_view>()>;
    using OnReply = std::function<void(std::string_view reply)>;
    // `gather`: for many commands with short replies (apply()): while HAProxy has half a write's
    // worth of commands to work on and nothing waits to be sent, a short read waits 200 µs
    // before the next, so replies gather instead of costing a wake-up each. Off for reads,
    // whose replies are large (and a resync must not slow down).
    Status stream(const NextLine& next_line, const OnReply& on_reply, bool gather = false);

   private:
    friend class AdminSocket;
    Session(std::unique_ptr<net::UnixSocket> sock, std::chrono::milliseconds timeout);
    std::unique_ptr<net::UnixSocket> sock_;
    std::chrono::milliseconds timeout_;
  };

  AdminSocket(std::string path, std::chrono::milliseconds timeout);

  const std::string& path() const { return path_; }
  std::chrono::milliseconds timeout() const { return timeout_; }

  // Connects and switches to prompt mode.
  Result<Session> open() const;

  // open() + Session::run() + quit, in one call.
  Result<std::vector<std::string>> run(const std::vector<std::string>& lines) const;

 private:
  std::string path_;
  std::chrono::milliseconds timeout_;
};

// Number of commands on a CLI line: 1 + unescaped `;` separators (a `\` escapes the next char).
std::size_t count_commands(std::string_view line);

}  // namespace ep::haproxy
