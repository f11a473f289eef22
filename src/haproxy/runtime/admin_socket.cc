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

  std::vector<std::string> replies;
  replies.reserve(lines.size());
  std::size_t next = 0;
  std::string chunk;
  while (next < lines.size()) {
    // Pipeline a chunk of whole lines, then read all of its replies before writing more, so
    // neither side can block on a full buffer.
    std::size_t first = next;
    chunk.clear();
    while (next < lines.size() && chunk.size() + lines[next].size() + 1 <= kMaxWriteBytes) {
      chunk += lines[next];
      chunk += '\n';
      ++next;
    }
    if (auto st = sock_->write_all(chunk, Clock::now() + timeout_); !st) {
      sock_->close();
      return Error::unavailable(fmt::format("haproxy {}: sending '{}': {}", path,
                                            shorten(lines[first]), st.error().message));
    }
    for (std::size_t i = first; i < next; ++i) {
      std::string joined;
      std::size_t commands = count_commands(lines[i]);
      for (std::size_t c = 0; c < commands; ++c) {
        auto reply = sock_->read_until(prompt_end, Clock::now() + timeout_);
        if (!reply) {
          auto kind = reply.error().kind;
          std::string msg = fmt::format("haproxy {}: no complete reply to '{}': {}", path,
                                        shorten(lines[i]), reply.error().message);
          sock_->close();
          return Error{kind == ErrorKind::kInvalid ? ErrorKind::kInvalid : ErrorKind::kUnavailable,
                       std::move(msg)};
        }
        std::string text = strip_reply(std::move(*reply));
        if (!text.empty()) {
          if (!joined.empty()) joined += '\n';
          joined += text;
        }
      }
      replies.push_back(std::move(joined));
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
