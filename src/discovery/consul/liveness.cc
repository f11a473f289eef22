#include "discovery/consul/liveness.h"

#include <map>
#include <mutex>
#include <vector>

#include "core/log.h"

namespace ep::discovery::consul {

std::shared_ptr<AgentLiveness> AgentLiveness::acquire(
    runtime::Loop& loop, const Options& options, std::shared_ptr<net::AsyncHttpClient> client) {
  static std::mutex mu;
  static std::map<std::pair<runtime::Loop*, std::string>, std::weak_ptr<AgentLiveness>> probers;
  std::lock_guard<std::mutex> lock(mu);
  for (auto it = probers.begin(); it != probers.end();) {
    it = it->second.expired() ? probers.erase(it) : std::next(it);
  }
  auto& slot = probers[{&loop, options.agent_key()}];
  if (auto p = slot.lock()) return p;
  auto p = std::make_shared<AgentLiveness>(loop, options, std::move(client));
  slot = p;
  return p;
}

AgentLiveness::AgentLiveness(runtime::Loop& loop, const Options& options,
                             std::shared_ptr<net::AsyncHttpClient> client)
    : loop_(loop), options_(options), client_(std::move(client)) {}

AgentLiveness::~AgentLiveness() {
  if (timer_ != 0) loop_.cancel(timer_);
  if (request_ != 0) client_->cancel(request_);
}

void AgentLiveness::watch(Watcher* watcher) {
  watchers_.insert(watcher);
  if (watchers_.size() == 1 && options_.liveness_interval.count() > 0) {
    arm(options_.liveness_interval);
  }
}

void AgentLiveness::unwatch(Watcher* watcher) {
  watchers_.erase(watcher);
  if (!watchers_.empty()) return;
  if (timer_ != 0) loop_.cancel(timer_);
  timer_ = 0;
  if (request_ != 0) client_->cancel(request_);
  request_ = 0;
  frozen_ = false;
}

void AgentLiveness::arm(std::chrono::milliseconds delay) {
  if (timer_ != 0 || request_ != 0) return;
  timer_ = loop_.after(delay, [this] {
    timer_ = 0;
    probe();
  });
}

void AgentLiveness::probe() {
  if (watchers_.empty()) return;
  net::HttpRequest req;
  req.url = options_.base_url + "/v1/status/leader";
  req.timeout = options_.liveness_timeout;
  req.connect_timeout = options_.liveness_timeout;
  req.unix_socket_path = options_.unix_socket;
  req.tls = {options_.ca_file, options_.cert_file, options_.key_file, options_.tls_verify};
  ++probes_;
  probe_started_ = std::chrono::steady_clock::now();
  request_ = client_->start(req, [this](Result<net::HttpResponse> resp) {
    request_ = 0;
    on_probe(resp.ok(), resp ? std::string() : resp.error().message);
  });
}

void AgentLiveness::on_probe(bool answered, const std::string& why) {
  // Copies: a watcher may unwatch (or another watch) from its callback.
  const std::vector<Watcher*> watchers(watchers_.begin(), watchers_.end());
  if (!answered) {
    if (!frozen_) {
      frozen_ = true;
      const std::string what =
          "agent " + (options_.unix_socket.empty() ? options_.base_url
                                                   : "unix://" + options_.unix_socket) +
          " does not answer GET /v1/status/leader within " +
          std::to_string(options_.liveness_timeout.count()) + " ms (" + why +
          "): watches aborted, last good sets kept";
      log::warn("consul", "{}", what);
      for (Watcher* w : watchers) {
        if (watchers_.count(w)) w->agent_frozen(what);
      }
    }
    // Back to back (at most one per liveness_timeout: a refused connection fails at once): the
    // first answer ends it.
    if (!watchers_.empty()) {
      const auto next = probe_started_ + options_.liveness_timeout;
      const auto now = std::chrono::steady_clock::now();
      arm(next > now ? std::chrono::duration_cast<std::chrono::milliseconds>(next - now)
                     : std::chrono::milliseconds(0));
    }
    return;
  }
  if (frozen_) {
    frozen_ = false;
    log::info("consul", "agent {} answers again: watches re-armed",
              options_.unix_socket.empty() ? options_.base_url : "unix://" + options_.unix_socket);
    for (Watcher* w : watchers) {
      if (watchers_.count(w)) w->agent_alive();
    }
  }
  if (!watchers_.empty()) arm(options_.liveness_interval);
}

}  // namespace ep::discovery::consul
