#include "discovery/etcd/etcd_source.h"

#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/log.h"
#include "discovery/etcd/parse.h"
#include "net/curl_http_client.h"
#include "net/http_stream.h"
#include "runtime/backoff.h"

namespace ep::discovery::etcd {
namespace {

constexpr const char* kComponent = "source.etcd";
using SteadyClock = std::chrono::steady_clock;
using KvMap = std::map<std::string, KeyValue>;

// One listing of the prefix.
struct Listing {
  std::int64_t revision = 0;
  KvMap kvs;
};

// Talks to the cluster: the current endpoint, the auth token, failover. Used by one thread.
class Session {
 public:
  Session(const Options& options, net::CurlHttpClient& client)
      : options_(options), client_(client) {}

  const std::string& endpoint() const { return options_.endpoints[current_]; }
  const std::string& token() const { return token_; }
  void drop_token() { token_.clear(); }

  net::HttpRequest request(const std::string& path, std::string body,
                           std::chrono::milliseconds timeout) const {
    net::HttpRequest req;
    req.method = "POST";
    req.url = endpoint() + path;
    req.body = std::move(body);
    req.timeout = timeout;
    req.connect_timeout = std::min(options_.connect_timeout, timeout);
    req.headers.emplace_back("Content-Type", "application/json");
    if (!token_.empty()) req.headers.emplace_back("Authorization", token_);  // raw, no "Bearer"
    req.tls.ca_file = options_.ca_file;
    req.tls.cert_file = options_.cert_file;
    req.tls.key_file = options_.key_file;
    req.tls.verify = options_.tls_verify;
    return req;
  }

  // POST to the current endpoint, failing over to the next ones when it is unavailable, and
  // (re-)authenticating when needed (once per call on an invalid-token reply).
  Result<net::HttpResponse> call(const std::string& path, const std::string& body,
                                 std::chrono::milliseconds timeout) {
    Error last = Error::unavailable("no etcd endpoint");
    bool reauthed = false;
    for (size_t attempt = 0; attempt < options_.endpoints.size(); ++attempt) {
      if (!options_.username.empty() && token_.empty()) {
        auto s = authenticate(timeout);
        if (!s) {
          if (s.error().kind != ErrorKind::kUnavailable) return s.error();
          last = s.error();
          next_endpoint();
          continue;
        }
      }
      auto resp = client_.perform(request(path, body, timeout));
      if (!resp) {
        if (resp.error().kind != ErrorKind::kUnavailable) return resp.error();
        last = resp.error();
        next_endpoint();
        continue;
      }
      if (!options_.username.empty() && !reauthed &&
          (resp->status == 401 || is_auth_error(resp->body))) {
        // Tokens expire (simple tokens after --auth-token-ttl): renew once and retry here.
        log::info(kComponent, "etcd {}: auth token rejected, re-authenticating", endpoint());
        token_.clear();
        reauthed = true;
        --attempt;
        continue;
      }
      return resp;
    }
    return last;
  }

  Result<Listing> list(std::chrono::milliseconds timeout) {
    Listing out;
    std::string key = options_.prefix;
    const std::string end = prefix_range_end(options_.prefix);
    for (int page = 0;; ++page) {
      nlohmann::json req = {{"key", base64_encode(key)}, {"range_end", base64_encode(end)}};
      if (options_.page_size > 0) req["limit"] = std::to_string(options_.page_size);
      if (options_.serializable) req["serializable"] = true;
      // Later pages are pinned to the first page's revision: one consistent listing.
      if (page > 0) req["revision"] = std::to_string(out.revision);
      auto resp = call("/v3/kv/range", req.dump(), timeout);
      if (!resp) return resp.error();
      auto reply = parse_range_reply(resp->body);
      if (!reply) {
        return Error{reply.error().kind, fmt::format("{} (HTTP {} from {})", reply.error().message,
                                                     resp->status, endpoint())};
      }
      if (page == 0) out.revision = reply->revision;
      for (auto& kv : reply->kvs) {
        key = kv.key;
        out.kvs[kv.key] = std::move(kv);
      }
      if (!reply->more || reply->kvs.empty()) break;
      key.push_back('\0');  // next page starts just after the last key
      if (page > 100000) return Error::internal("etcd range: too many pages");
    }
    return out;
  }

 private:
  void next_endpoint() {
    current_ = (current_ + 1) % options_.endpoints.size();
    token_.clear();  // tokens are per member for simple tokens
  }

  Status authenticate(std::chrono::milliseconds timeout) {
    std::string password = options_.password;
    if (!options_.password_file.empty()) {
      std::ifstream in(options_.password_file);
      if (!in) return Error::invalid("etcd: cannot read password_file " + options_.password_file);
      std::stringstream ss;
      ss << in.rdbuf();
      password = ss.str();
      while (!password.empty() && (password.back() == '\n' || password.back() == '\r'))
        password.pop_back();
    }
    nlohmann::json body = {{"name", options_.username}, {"password", password}};
    auto resp = client_.perform(request("/v3/auth/authenticate", body.dump(), timeout));
    if (!resp) return resp.error();
    auto token = parse_auth_reply(resp->body);
    if (!token) {
      return Error{token.error().kind,
                   fmt::format("{} (user '{}', HTTP {} from {})", token.error().message,
                               options_.username, resp->status, endpoint())};
    }
    token_ = std::move(*token);
    return {};
  }

  const Options& options_;
  net::CurlHttpClient& client_;
  size_t current_ = 0;
  std::string token_;
};

// The whole set from the key map: keys sorted, undecodable values skipped (logged once per
// message), Op:1 values dropped, duplicates by address:port merged (first key wins).
std::vector<Endpoint> to_endpoints(const KvMap& kvs, const std::string& prefix,
                                   std::set<std::string>& logged) {
  std::vector<Endpoint> out;
  std::set<std::pair<std::string, std::uint32_t>> seen;
  for (const auto& [key, kv] : kvs) {
    std::string id = key.rfind(prefix, 0) == 0 ? key.substr(prefix.size()) : key;
    auto v = parse_value(key, kv.value, std::move(id));
    if (!v) {
      if (logged.insert(v.error().message).second)
        log::warn(kComponent, "{} (key skipped)", v.error().message);
      continue;
    }
    if (v->remove) continue;
    if (!seen.insert({v->endpoint.address, v->endpoint.port}).second) continue;
    v->endpoint.labels["etcd_key"] = key;
    out.push_back(std::move(v->endpoint));
  }
  return out;
}

bool same(const std::optional<Snapshot>& a, const Snapshot& b) {
  return a && a->ok() && b.ok() && **a == *b;
}

}  // namespace

EtcdSource::EtcdSource(Options options) : options_(std::move(options)) {}

EtcdSource::~EtcdSource() { stop(); }

std::string EtcdSource::describe() const {
  return fmt::format("etcd {} @ {}", options_.prefix, fmt::join(options_.endpoints, ","));
}

Snapshot EtcdSource::fetch_once(std::chrono::milliseconds timeout) {
  net::CurlHttpClient client;
  Session session(options_, client);
  auto listing = session.list(std::min(timeout, options_.timeout));
  if (!listing) return Error{listing.error().kind, describe() + ": " + listing.error().message};
  std::set<std::string> logged;
  return to_endpoints(listing->kvs, options_.prefix, logged);
}

Status EtcdSource::start(Sink& sink) {
  if (thread_.joinable()) return Error::internal(describe() + ": already started");
  {
    std::lock_guard lock(mutex_);
    stopping_ = false;
  }
  thread_ = std::thread([this, &sink] { run(sink); });
  return {};
}

void EtcdSource::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    if (client_ != nullptr) client_->cancel();
    if (stream_ != nullptr) stream_->cancel();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void EtcdSource::run(Sink& sink) {
  net::CurlHttpClient client;
  net::CurlHttpStream stream;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    client_ = &client;
    stream_ = &stream;
  }
  Session session(options_, client);
  std::set<std::string> logged;
  std::optional<Snapshot> last;
  auto publish = [&](Snapshot snap) {
    if (same(last, snap)) return;
    if (snap.ok()) {
      log::debug(kComponent, "{}: {} endpoints", describe(), snap->size());
    } else {
      log::debug(kComponent, "{}: {}", describe(), snap.error().message);
    }
    sink.publish(snap);
    last = std::move(snap);
  };
  // Waits (interruptibly); false when stopping.
  auto wait = [&](std::chrono::milliseconds d) {
    std::unique_lock lock(mutex_);
    return !cv_.wait_for(lock, d, [&] { return stopping_; });
  };
  auto stopping = [&] {
    std::lock_guard lock(mutex_);
    return stopping_;
  };

  runtime::Backoff backoff({.initial = options_.retry_interval,
                            .max = options_.max_retry_interval,
                            .multiplier = 2.0,
                            .jitter = 0.2});
  auto fail_wait = [&] {
    return wait(std::chrono::duration_cast<std::chrono::milliseconds>(backoff.next()));
  };

  while (!stopping()) {
    // 1. List.
    auto listing = session.list(options_.timeout);
    if (!listing) {
      if (stopping()) break;
      publish(Error{listing.error().kind, describe() + ": " + listing.error().message});
      if (!fail_wait()) break;
      continue;
    }
    ++lists_;
    KvMap kvs = std::move(listing->kvs);
    std::int64_t revision = listing->revision;
    publish(to_endpoints(kvs, options_.prefix, logged));

    // 2. Watch from revision+1 until the stream ends.
    const std::int64_t start_revision = revision + 1;
    nlohmann::json create = {{"create_request",
                              {{"key", base64_encode(options_.prefix)},
                               {"range_end", base64_encode(prefix_range_end(options_.prefix))},
                               {"start_revision", std::to_string(start_revision)},
                               {"progress_notify", true}}}};
    JsonObjectSplitter splitter;
    std::optional<Error> stream_error;
    std::string error_body;
    bool created = false;
    bool compacted = false;
    const auto started = SteadyClock::now();
    auto on_chunk = [&](long status, std::string_view chunk) -> bool {
      if (status != 200) {
        if (error_body.size() < 4096) error_body.append(chunk.substr(0, 4096));
        return true;
      }
      const std::vector<std::string> objects = splitter.feed(chunk);
      if (splitter.buffered() > (64u << 20)) {
        stream_error = Error::invalid("etcd watch stream: message larger than 64 MiB");
        return false;
      }
      bool changed = false;
      for (const std::string& text : objects) {
        auto msg = parse_watch_message(text);
        if (!msg) {
          stream_error = msg.error();
          break;
        }
        if (msg->created) {
          created = true;
          backoff.reset();
        }
        if (msg->canceled) {
          compacted = msg->compact_revision > 0;
          stream_error = Error::unavailable(
              compacted ? fmt::format("watch cancelled: revision {} compacted (now {}); re-listing",
                                      start_revision, msg->compact_revision)
                        : fmt::format("watch cancelled: {}", msg->cancel_reason.empty()
                                                                 ? "no reason given"
                                                                 : msg->cancel_reason));
          break;
        }
        for (WatchEvent& ev : msg->events) {
          if (ev.is_delete) {
            changed |= kvs.erase(ev.kv.key) > 0;
          } else {
            const std::string key = ev.kv.key;
            kvs[key] = std::move(ev.kv);
            changed = true;
          }
        }
        if (msg->revision > revision) revision = msg->revision;
      }
      if (changed) publish(to_endpoints(kvs, options_.prefix, logged));
      if (!stream_error && splitter.error()) stream_error = *splitter.error();
      return !stream_error;
    };
    ++watches_;
    auto result = stream.perform(session.request("/v3/watch", create.dump(), options_.timeout),
                                 options_.idle_timeout, on_chunk);
    if (stopping()) break;
    std::string why;
    if (!result) {
      why = result.error().message;
    } else if (stream_error) {
      why = stream_error->message;
    } else if (*result != 200) {
      why = fmt::format("HTTP {}: {}", *result, error_body.substr(0, 300));
    } else {
      why = "stream closed by the server";
    }
    if (is_auth_error(why) || (result && *result == 401)) session.drop_token();
    if (compacted) {
      log::info(kComponent, "{}: {}", describe(), why);
      continue;  // re-list at once
    }
    log::info(kComponent, "{}: watch ended at revision {}: {}; re-listing", describe(), revision,
              why);
    // A stream that was up for a while is re-created at once; one that fails at once backs off.
    if (!(created && SteadyClock::now() - started > std::chrono::seconds(1))) {
      if (!fail_wait()) break;
    }
  }
  std::lock_guard lock(mutex_);
  client_ = nullptr;
  stream_ = nullptr;
}

SourceKind source_kind() {
  return SourceKind{"etcd",
                    [](const ConfigNode& node, Diagnostics& diag,
                       const SourceContext& context) -> std::unique_ptr<Source> {
                      auto options = options_from_node(node, context.base_dir, diag);
                      if (!options) return nullptr;
                      return std::make_unique<EtcdSource>(std::move(*options));
                    }};
}

}  // namespace ep::discovery::etcd
