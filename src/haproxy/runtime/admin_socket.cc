#include "haproxy/runtime/admin_socket.h"

#include <fmt/format.h>

#include <algorithm>
#include <deque>
#include <thread>
#include <optional>
#include <utility>

#include "net/unix_socket.h"

namespace ep::haproxy {

namespace {

using Clock = std::chrono::steady_clock;

// In prompt mode every command's output is followed by "\n> " ("\n> " alone for an empty
// success; outputs that end with a blank line give "\n\n> "). HAProxy names and CSV/state rows
// never start a line with "> ", so the first "\n> " ends one command's reply.
constexpr std::string_view kPrompt = "\n> ";
constexpr std::size_t kMaxReplyBytes = 256 * 1024 * 1024;
// stream(): a read smaller than kSmallRead while HAProxy has work queued waits kGather first.
constexpr std::size_t kSmallRead = 4096;
constexpr auto kGather = std::chrono::microseconds(200);

std::size_t prompt_end(std::string_view buf) {
  auto pos = buf.find(kPrompt);
  return pos == std::string_view::npos ? 0 : pos + kPrompt.size();
}

// A reply without its prompt ("\n> ", already cut) and trailing newlines.
std::string_view strip_reply(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  return text;
}

std::string shorten(std::string_view line) {
  constexpr std::size_t kMax = 120;
  if (line.size() <= kMax) return std::string(line);
  return fmt::format("{}... ({} bytes)", line.substr(0, kMax), line.size());
}

}  // namespace

std::size_t count_commands(std::string_view line) {
  std::size_t n = 1;
  for (std::size_t i = 0; i < line.size(); ++i) {
    if (line[i] == '\\') {
      ++i;
    } else if (line[i] == ';') {
      ++n;
    }
  }
  return n;
}

AdminSocket::AdminSocket(std::string path, std::chrono::milliseconds timeout)
    : path_(std::move(path)), timeout_(timeout) {}

AdminSocket::Session::Session(std::unique_ptr<net::UnixSocket> sock,
                              std::chrono::milliseconds timeout)
    : sock_(std::move(sock)), timeout_(timeout) {}
AdminSocket::Session::Session(Session&&) noexcept = default;
AdminSocket::Session& AdminSocket::Session::operator=(Session&&) noexcept = default;

AdminSocket::Session::~Session() {
  if (sock_ && sock_->is_open()) {
    // Best effort: HAProxy closes idle CLI connections anyway (stats timeout).
    (void)sock_->write_all("quit\n", Clock::now() + std::chrono::milliseconds(100));
    sock_->close();
  }
}

Result<AdminSocket::Session> AdminSocket::open() const {
  auto sock = net::UnixSocket::connect(path_, Clock::now() + timeout_);
  if (!sock) return sock.error();
  auto owned = std::make_unique<net::UnixSocket>(std::move(*sock));
  if (auto st = owned->write_all("prompt\n", Clock::now() + timeout_); !st) {
    return Error::unavailable(
        fmt::format("haproxy {}: sending 'prompt': {}", path_, st.error().message));
  }
  auto reply = owned->read_until(prompt_end, Clock::now() + timeout_);
  if (!reply) {
    return Error::unavailable(
        fmt::format("haproxy {}: no prompt after 'prompt': {}", path_, reply.error().message));
  }
  if (*reply != kPrompt) {
    return Error::invalid(
        fmt::format("haproxy {}: unexpected reply to 'prompt': '{}'", path_, shorten(*reply)));
  }
  return Session(std::move(owned), timeout_);
}

namespace {

// A line run() or stream() refuses to send, or nullopt.
std::optional<Error> refused(const std::string& path, std::string_view line) {
  if (line.empty() || std::any_of(line.begin(), line.end(), [](char c) {
        return c == '\r' || c == '\n' || c == '\0';
      })) {
    return Error::invalid(fmt::format(
        "haproxy {}: refusing command '{}': empty or contains CR/LF/NUL", path, shorten(line)));
  }
  if (line.size() + 1 > AdminSocket::kMaxWriteBytes) {
    return Error::invalid(fmt::format("haproxy {}: refusing command '{}': longer than {} bytes",
                                      path, shorten(line), AdminSocket::kMaxWriteBytes));
  }
  return std::nullopt;
}

}  // namespace

Result<std::vector<std::string>> AdminSocket::Session::run(const std::vector<std::string>& lines) {
  const std::string& path = sock_ ? sock_->path() : std::string();
  for (const auto& line : lines) {
    if (auto e = refused(path, line)) return *e;  // nothing sent when any line is refused
  }
  std::vector<std::string> replies;
  replies.reserve(lines.size());
  std::size_t next = 0;
  auto st = stream(
      [&]() -> std::optional<std::string_view> {
        if (next == lines.size()) return std::nullopt;
        return lines[next++];
      },
      [&](std::string_view reply) { replies.emplace_back(reply); });
  if (!st) return st.error();
  return replies;
}

Status AdminSocket::Session::stream(const NextLine& next_line, const OnReply& on_reply,
                                    bool gather) {
  const std::string& path = sock_ ? sock_->path() : std::string();
  if (!sock_ || !sock_->is_open()) {
    return Error::unavailable(fmt::format("haproxy {}: session is closed", path));
  }
  auto fail = [&](Error e) -> Status {
    sock_->close();
    return e;
  };
  // The writes whose lines are not all answered yet (kept to name a line in an error), and the
  // lines sent and not yet answered, oldest first: where each is in its write, and its command
  // count (a `;`-separated line gets one prompt per command). No copy per line: at 20,000
  // commands a change, the client's own work competes with HAProxy's for the CPU.
  struct Sent {
    std::uint64_t write;  // sequence number of its write
    std::size_t offset, size, commands;
  };
  std::deque<std::string> writes;
  std::uint64_t first_write = 0;  // sequence number of writes.front()
  std::deque<Sent> waiting;
  auto line_text = [&](const Sent& l) {
    return std::string_view(writes[l.write - first_write]).substr(l.offset, l.size);
  };
  auto oldest = [&]() { return waiting.empty() ? std::string() : shorten(line_text(waiting.front())); };
  std::string carried;  // pulled, did not fit in the last write
  bool has_carried = false;
  std::string_view out;
  bool drained = false;  // next_line() had nothing the last time it was asked
  // Bytes of the lines sent and not yet answered. A new write goes out when they fall below one
  // write's worth: HAProxy always has the rest to work on, and it gets full writes, not a few
  // lines per reply (a write per reply made 15,000 sends and as many wake-ups for 20,000
  // commands, on both sides).
  std::size_t in_flight = 0;
  // Fills the next write from next_line() once the last one is out.
  auto fill = [&]() -> Status {
    if (!out.empty() || in_flight >= kMaxWriteBytes) return {};
    drained = false;
    std::string chunk;
    const std::uint64_t seq = first_write + writes.size();
    for (;;) {
      std::optional<std::string_view> line;
      if (has_carried) {
        line = carried;
      } else {
        line = next_line();
      }
      if (!line) {
        drained = true;
        break;
      }
      if (auto e = refused(path, *line)) return fail(*e);
      if (chunk.size() + line->size() + 1 > kMaxWriteBytes) {
        if (!has_carried) carried.assign(*line);
        has_carried = true;
        break;
      }
      waiting.push_back({seq, chunk.size(), line->size(), count_commands(*line)});
      in_flight += line->size() + 1;
      chunk += *line;
      chunk += '\n';
      has_carried = false;
    }
    if (!chunk.empty()) {
      writes.push_back(std::move(chunk));
      out = writes.back();
    }
    return {};
  };
  // A reply must complete within two timeouts of the previous one (or of the start), so a peer
  // trickling bytes without prompts cannot keep us forever; each wait is one timeout at most.
  auto progress = Clock::now();
  std::size_t command = 0;  // prompts seen for the oldest waiting line
  std::string joined;       // a `;`-separated line's replies so far
  // Bytes at the start of the buffer already searched for a prompt without one: a large reply
  // (`show stat` of 10,000 servers, megabytes) arrives in many reads, and searching it from its
  // start after each read would cost the square of its size.
  std::size_t searched = 0;
  std::size_t last_read = 0;  // bytes the last exchange read
  std::string last_answered;  // the line answered when none was left waiting
  for (;;) {
    if (auto st = fill(); !st) return st;
    if (out.empty() && waiting.empty() && drained && !has_carried) return {};
    if (!waiting.empty() || !out.empty()) {
      // HAProxy sends each command's reply as soon as it is done: read at once, that is a wake-up
      // and a read per reply (20,000 of each for 10,000 slot additions, as much CPU as HAProxy's
      // own work on a 2-core machine). While HAProxy has half a write's worth of commands still
      // to work on and nothing waits to be sent, let its replies gather for a moment instead.
      if (gather && out.empty() && in_flight >= kMaxWriteBytes / 2 && last_read < kSmallRead) {
        std::this_thread::sleep_for(kGather);
      }
      const auto deadline = std::min(progress + 2 * timeout_, Clock::now() + timeout_);
      auto n = sock_->exchange(out, deadline);
      last_read = n ? *n : 0;
      if (!n) {
        return fail(Error::unavailable(fmt::format("haproxy {}: no complete reply to '{}': {}",
                                                   path, oldest(), n.error().message)));
      }
    }
    // Take every complete reply already buffered (one discard() at the end: erasing each reply
    // from the front of the buffer would move the rest once per reply).
    const std::string& buf = sock_->buffered();
    std::size_t base = 0;
    while (!waiting.empty()) {
      const std::size_t from =
          std::max(base, searched >= kPrompt.size() ? searched - kPrompt.size() + 1 : 0);
      const std::size_t pos = buf.find(kPrompt, from);
      if (pos == std::string::npos) {
        searched = buf.size();
        break;
      }
      std::string_view text = strip_reply(std::string_view(buf).substr(base, pos - base));
      base = pos + kPrompt.size();
      searched = base;
      progress = Clock::now();
      const Sent line = waiting.front();
      if (line.commands > 1 && !text.empty()) {
        if (!joined.empty()) joined += '\n';
        joined += text;
      }
      if (++command == line.commands) {
        waiting.pop_front();
        in_flight -= line.size + 1;
        if (waiting.empty()) last_answered = shorten(line_text(line));  // for an error
        command = 0;
        if (line.commands > 1) {
          on_reply(joined);
          joined.clear();
        } else {
          on_reply(text);  // may make more lines ready
        }
        // A write whose lines are all answered is no longer needed. When none waits, every
        // write was sent whole and answered — unless the peer gave more prompts than commands
        // while a write is still going out: `out` points into the last write, keep it (the
        // check below fails the stream).
        const std::uint64_t keep =
            !waiting.empty() ? waiting.front().write
                             : first_write + writes.size() - (out.empty() ? 0 : 1);
        while (first_write < keep) {
          writes.pop_front();
          ++first_write;
        }
      }
    }
    if (base > 0) {
      sock_->discard(base);
      searched -= base;
    }
    if (waiting.empty() && (!sock_->buffered().empty() || !out.empty())) {
      // More output than commands sent: the reply/command pairing cannot be trusted.
      return fail(Error::invalid(
          fmt::format("haproxy {}: unexpected output after the reply to '{}': '{}'", path,
                      last_answered, shorten(sock_->buffered()))));
    }
    if (sock_->buffered().size() > kMaxReplyBytes) {
      return fail(Error::invalid(fmt::format("haproxy {}: reply to '{}' exceeds {} bytes", path,
                                             oldest(), kMaxReplyBytes)));
    }
  }
}

Result<std::vector<std::string>> AdminSocket::run(const std::vector<std::string>& lines) const {
  auto session = open();
  if (!session) return session.error();
  return session->run(lines);
}

}  // namespace ep::haproxy
