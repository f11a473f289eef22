#include "demo/load_generator.h"

#include <chrono>

#include "net/curl_http_client.h"

namespace ep::demo {
namespace {

// One request through the project's HTTP client; returns "" on success, else why.
std::string request_once(net::HttpClient& client, int port, std::string& backend) {
  net::HttpRequest req;
  req.url = "http://127.0.0.1:" + std::to_string(port) + "/";
  req.headers = {{"Host", "demo"}, {"Connection", "close"}};
  req.timeout = std::chrono::seconds(5);
  req.direct = true;  // HAProxy on loopback, whatever http_proxy says
  auto resp = client.perform(req);
  if (!resp) return resp.error().message;
  if (resp->status != 200) return "status " + std::to_string(resp->status);
  backend = resp->body;
  while (!backend.empty() && backend.back() == '\n') backend.pop_back();
  return "";
}

}  // namespace

LoadGenerator::~LoadGenerator() { stop(); }

void LoadGenerator::start(int port, int threads) {
  running_ = true;
  for (int t = 0; t < threads; ++t) threads_.emplace_back([this, port] { run(port); });
}

void LoadGenerator::stop() {
  running_ = false;
  for (auto& t : threads_) t.join();
  threads_.clear();
}

LoadTotals LoadGenerator::totals() const {
  std::lock_guard lock(mu_);
  return totals_;
}

void LoadGenerator::run(int port) {
  net::CurlHttpClient client;
  while (running_) {
    std::string backend;
    const std::string err = request_once(client, port, backend);
    {
      std::lock_guard lock(mu_);
      totals_.sent++;
      if (err.empty()) {
        totals_.ok++;
        totals_.by_backend[backend]++;
      } else {
        totals_.failed++;
        totals_.failures[err]++;
      }
    }
    // Pacing of the load, not a wait for a condition.
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

}  // namespace ep::demo
