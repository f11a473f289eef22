#pragma once
// The demo's load: client threads sending `GET /` through HAProxy, a new connection per request
// (`Connection: close`, as many real clients do), counting successes per backend and failures
// per reason.

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace ep::demo {

struct LoadTotals {
  long sent = 0;
  long ok = 0;
  long failed = 0;
  std::map<std::string, long> by_backend;  // body of the reply ("backend-3") -> requests
  std::map<std::string, long> failures;    // why -> requests
};

class LoadGenerator {
 public:
  LoadGenerator() = default;
  ~LoadGenerator();
  LoadGenerator(const LoadGenerator&) = delete;
  LoadGenerator& operator=(const LoadGenerator&) = delete;

  // Starts `threads` clients against 127.0.0.1:`port`. Call once.
  void start(int port, int threads);
  // Stops and joins the clients. Idempotent.
  void stop();
  // A consistent copy of the counts so far; callable from any thread.
  LoadTotals totals() const;

 private:
  void run(int port);

  std::atomic<bool> running_{false};
  std::vector<std::thread> threads_;
  mutable std::mutex mu_;
  LoadTotals totals_;
};

}  // namespace ep::demo
