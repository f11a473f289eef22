#include "haproxy/runtime/admin_socket.h"

#include <fmt/format.h>

#include "net/unix_socket.h"

namespace ep::haproxy {

namespace {

using Clock = std::chrono::steady_clock;

// In prompt mode every command's output is followed by "\n> " ("\n> " alone for an empty
// success; outputs that end with a blank line give "\n\n> "). HAProxy names and CSV/state rows
// never start a line with "> ", so the first "\n> " ends one command's reply.
constexpr std::string_view kPrompt = "\n> ";
constexpr std::size_t kMaxReplyBytes = 256 * 1024 * 1024;

std::size_t prompt_end(std::string_view buf) {
  auto pos = buf.find(kPrompt);
  return pos == std::string_view::npos ? 0 : pos + kPrompt.size();
}

std::string strip_reply(std::string text) {
  text.resize(text.size() - kPrompt.size());
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
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

Result<std::vector<std::string>> AdminSocket::Session::run(const std::vector<std::string>& lines) {
  const std::string& path = sock_ ? sock_->path() : std::string();
  for (const auto& line : lines) {
    if (line.empty() || line.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
      return Error::invalid(fmt::format(
          "haproxy {}: refusing command '{}': empty or contains CR/LF/NUL", path, shorten(line)));
    }
    if (line.size() + 1 > kMaxWriteBytes) {
      return Error::invalid(fmt::format("haproxy {}: refusing command '{}': longer than {} bytes",
                                        path, shorten(line), kMaxWriteBytes));
    }
  }
  if (!sock_ || !sock_->is_open()) {
    return Error::unavailable(fmt::format("haproxy {}: session is closed", path));
  }

  // Line-aligned writes of at most kMaxWriteBytes, streamed while replies are read (full
  // duplex), so a large batch costs about one round trip and neither side can block on a full
  // buffer.
  std::vector<std::string> chunks;
  for (const auto& line : lines) {
    if (chunks.empty() || chunks.back().size() + line.size() + 1 > kMaxWriteBytes) {
      chunks.emplace_back();
    }
    chunks.back() += line;
    chunks.back() += '\n';
  }
  // Each wait is bounded by the timeout; the whole call by one timeout per chunk more, so a peer
  // trickling bytes without prompts cannot keep us forever.
  const auto overall = Clock::now() + timeout_ * static_cast<long>(chunks.size() + 1);

  std::vector<std::string> replies;
  replies.reserve(lines.size());
  std::size_t line = 0;
  std::size_t command = 0;
  std::size_t commands = lines.empty() ? 0 : count_commands(lines[0]);
  std::string joined;
  std::size_t next_chunk = 0;
  std::string_view out;
  // Bytes at the start of the buffer already searched for a prompt without one: a large reply
  // (`show stat` of 10,000 servers, megabytes) arrives in many reads, and searching it from its
  // start after each read would cost the square of its size.
  std::size_t searched = 0;
  while (line < lines.size()) {
    // Take every complete reply already buffered (one consume() at the end: erasing each reply
    // from the front of the buffer would move the rest once per reply).
    {
      const std::string& buf = sock_->buffered();
      std::size_t base = 0;
      while (line < lines.size()) {
        const std::size_t from =
            std::max(base, searched >= kPrompt.size() ? searched - kPrompt.size() + 1 : 0);
        const std::size_t pos = buf.find(kPrompt, from);
        if (pos == std::string::npos) {
          searched = buf.size();
          break;
        }
        std::string text = strip_reply(buf.substr(base, pos + kPrompt.size() - base));
        base = pos + kPrompt.size();
        searched = base;
        if (!text.empty()) {
          if (!joined.empty()) joined += '\n';
          joined += text;
        }
        if (++command == commands) {
          replies.push_back(std::move(joined));
          joined.clear();
          command = 0;
          if (++line < lines.size()) commands = count_commands(lines[line]);
        }
      }
      if (base > 0) {
        (void)sock_->consume(base);
        searched -= base;
      }
    }
    if (line == lines.size()) break;
    if (out.empty() && next_chunk < chunks.size()) out = chunks[next_chunk++];
    auto deadline = std::min(overall, Clock::now() + timeout_);
    auto n = sock_->exchange(out, deadline);
    if (!n) {
      std::string msg = fmt::format("haproxy {}: no complete reply to '{}': {}", path,
                                    shorten(lines[line]), n.error().message);
      sock_->close();
      return Error::unavailable(std::move(msg));
    }
    if (sock_->buffered().size() > kMaxReplyBytes) {
      sock_->close();
      return Error::invalid(fmt::format("haproxy {}: reply to '{}' exceeds {} bytes", path,
                                        shorten(lines[line]), kMaxReplyBytes));
    }
  }
  if (!sock_->buffered().empty()) {
    // More output than commands sent: the reply/command pairing cannot be trusted.
    std::string extra = sock_->buffered();
    sock_->close();
    return Error::invalid(fmt::format("haproxy {}: unexpected output after the reply to '{}': '{}'",
                                      path, shorten(lines.back()), shorten(extra)));
  }
  return replies;
}

Result<std::vector<std::string>> AdminSocket::run(const std::vector<std::string>& lines) const {
  auto session = open();
  if (!session) return session.error();
  return session->run(lines);
}

}  // namespace ep::haproxy
