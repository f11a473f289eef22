#pragma once
// A scripted Unix-socket server standing in for HAProxy's admin socket in tests: hangs, garbage,
// early close, or HAProxy-like prompt replies with any text. Serves one connection at a time on a
// background thread; the destructor stops it and unlinks the socket.

#include <atomic>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace ep::test {

class FakeAdminServer {
 public:
  // Called for each received line (without "\n") with the 0-based connection number. Returns the
  // bytes to send back, or nullopt to close the connection.
  using Handler =
      std::function<std::optional<std::string>(const std::string& line, int connection)>;

  FakeAdminServer(std::string path, Handler handler);
  ~FakeAdminServer();
  FakeAdminServer(const FakeAdminServer&) = delete;
  FakeAdminServer& operator=(const FakeAdminServer&) = delete;

  bool ok() const { return listen_fd_ >= 0; }
  const std::string& path() const { return path_; }
  int connections() const { return connections_.load(); }
  std::vector<std::string> lines() const;  // every line received, in order

  // Accepts and reads but never answers.
  static Handler silent();
  // Answers every line with `bytes` (never a prompt); an empty `bytes` closes at the first line.
  static Handler garbage(std::string bytes);
  // Behaves like HAProxy 2.6 in prompt mode: "prompt" -> "\n> ", "quit" -> close, every
  // `;`-separated command -> reply(command, connection) + "\n" (when not empty) + "\n> ".
  static Handler prompt_mode(std::function<std::string(const std::string&, int)> reply);

 private:
  void loop();

  std::string path_;
  Handler handler_;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
  std::thread thread_;
};

}  // namespace ep::test
