#include "discovery/etcd/etcd_source.h"

#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/log.h"
#include "core/secrets.h"
#include "discovery/etcd/parse.h"
#include "net/async_http_client.h"
#include "net/curl_http_client.h"
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

// A POST to `endpoint` (the JSON gateway), with the auth token when there is one.
net::HttpRequest make_request(const Options& options, const std::string& endpoint,
                              const std::string& token, const std::string& path, std::string body,
                              std::chrono::milliseconds timeout) {
  net::HttpRequest req;
  req.method = "POST";
  req.url = endpoint + path;
  req.body = std::move(body);
  req.timeout = timeout;
  req.connect_timeout = std::min(options.connect_timeout, timeout);
  req.headers.emplace_back("Content-Type", "application/json");
  if (!token.empty()) req.headers.emplace_back("Authorization", token);  // raw, no "Bearer"
  req.tls.ca_file = options.ca_file;
  req.tls.cert_file = options.cert_file;
  req.tls.key_file = options.key_file;
  req.tls.verify = options.tls_verify;
  return req;
}

Result<std::string> auth_body(const Options& options) {
  std::string password = options.password;
  if (!options.password_file.empty()) {
    std::ifstream in(options.password_file);
    if (!in) return Error::invalid("etcd: cannot read password_file " + options.password_file);
    std::stringstream ss;
    ss << in.rdbuf();
    password = ss.str();
    while (!password.empty() && (password.back() == '\n' || password.back() == '\r'))
      password.pop_back();
  }
  secrets::add(password);
  nlohmann::json body = {{"name", options.username}, {"password", password}};
  return body.dump();
}

// The Range request body for one page of the prefix listing.
std::string range_body(const Options& options, const std::string& key, int page,
                       std::int64_t revision) {
  nlohmann::json req = {{"key", base64_encode(key)},
                        {"range_end", base64_encode(prefix_range_end(options.prefix))}};
  if (options.page_size > 0) req["limit"] = std::to_string(options.page_size);
  if (options.serializable) req["serializable"] = true;
  // Later pages are pinned to the first page's revision: one consistent listing.
  if (page > 0) req["revision"] = std::to_string(revision);
  return req.dump();
}

// Talks to the cluster: the current endpoint, the auth token, failover. Used by one thread
// (fetch_once; the running source does the same on the runtime, see EtcdSource::Machine).
class Session {
 public:
  Session(const Options& options, net::CurlHttpClient& client)
      : options_(options), client_(client) {}

  const std::string& endpoint() const { return options_.endpoints[current_]; }
  const std::string& token() const { return token_; }
  void drop_token() { token_.clear(); }

  net::HttpRequest request(const std::string& path, std::string body,
                           std::chrono::milliseconds timeout) const {
    return make_request(options_, endpoint(), token_, path, std::move(body), timeout);
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
    for (int page = 0;; ++page) {
      auto resp = call("/v3/kv/range", range_body(options_, key, page, out.revision), timeout);
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
    auto body = auth_body(options_);
    if (!body) return body.error();
    auto resp = client_.perform(request("/v3/auth/authenticate", *body, timeout));
    if (!resp) return resp.error();
    auto token = parse_auth_reply(resp->body);
    if (!token) {
      return Error{token.error().kind,
                   fmt::format("{} (user '{}', HTTP {} from {})", token.error().message,
                               options_.username, resp->status, endpoint())};
    }
    secrets::add(*token);  // the session token is a credential too
    secrets::add(*token);
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

// The running source on one loop of the runtime: the same list-then-watch algorithm as a state
// machine. Calls (with failover and re-authentication) and the watch stream go through an
// AsyncHttpClient on the loop; waits are loop timers. Every member is touched on the loop only.
class EtcdSource::Machine {
 public:
  Machine(EtcdSource& source, runtime::Loop& loop, Sink& sink)
      : source_(source),
        options_(source.options_),
        loop_(loop),
        sink_(sink),
        http_(loop, net::AsyncHttpClient::Options{.max_body_bytes = options_.max_response_bytes}),
        backoff_({.initial = options_.retry_interval,
                  .max = options_.max_retry_interval,
                  .multiplier = 2.0,
                  .jitter = 0.2}) {}
  ~Machine() {
    if (timer_ != 0) loop_.cancel(timer_);
  }

  void begin() { list(); }

 private:
  using Done = std::function<void(Result<net::HttpResponse>)>;
  struct Call {
    std::string path;
    std::string body;
    std::chrono::milliseconds timeout;
    size_t attempt = 0;
    bool reauthed = false;
    Error last = Error::unavailable("no etcd endpoint");
    Done done;
  };

  const std::string& endpoint() const { return options_.endpoints[current_]; }
  void next_endpoint() {
    current_ = (current_ + 1) % options_.endpoints.size();
    token_.clear();  // tokens are per member for simple tokens
  }
  net::HttpRequest request(const std::string& path, std::string body,
                           std::chrono::milliseconds timeout) const {
    return make_request(options_, endpoint(), token_, path, std::move(body), timeout);
  }

  // POST with failover to the next endpoints when one is unavailable and re-authentication
  // (once per call on an invalid-token reply), as Session::call.
  void call(std::shared_ptr<Call> c) {
    if (c->attempt >= options_.endpoints.size()) return c->done(c->last);
    if (!options_.username.empty() && token_.empty()) {
      auto body = auth_body(options_);
      if (!body) return c->done(body.error());
      http_.start(request("/v3/auth/authenticate", *body, c->timeout),
                  [this, c](Result<net::HttpResponse> resp) {
                    Status s = take_token(std::move(resp));
                    if (!s) {
                      if (s.error().kind != ErrorKind::kUnavailable) return c->done(s.error());
                      failover(c, s.error());
                      return;
                    }
                    send(c);
                  });
      return;
    }
    send(c);
  }
  void failover(const std::shared_ptr<Call>& c, Error e) {
    c->last = std::move(e);
    next_endpoint();
    ++c->attempt;
    call(c);
  }
  void send(std::shared_ptr<Call> c) {
    http_.start(request(c->path, c->body, c->timeout), [this, c](Result<net::HttpResponse> resp) {
      if (!resp) {
        if (resp.error().kind != ErrorKind::kUnavailable) return c->done(resp.error());
        failover(c, resp.error());
        return;
      }
      if (!options_.username.empty() && !c->reauthed &&
          (resp->status == 401 || is_auth_error(resp->body))) {
        // Tokens expire (simple tokens after --auth-token-ttl): renew once and retry here.
        log::info(kComponent, "etcd {}: auth token rejected, re-authenticating", endpoint());
        token_.clear();
        c->reauthed = true;
        call(c);
        return;
      }
      c->done(std::move(resp));
    });
  }
  Status take_token(Result<net::HttpResponse> resp) {
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

  // 1. List (paginated, pinned to the first page's revision).
  void list() {
    listing_ = Listing{};
    list_page(options_.prefix, 0);
  }
  void list_page(std::string key, int page) {
    auto c = std::make_shared<Call>();
    c->path = "/v3/kv/range";
    c->body = range_body(options_, key, page, listing_.revision);
    c->timeout = options_.timeout;
    c->done = [this, page](Result<net::HttpResponse> resp) {
      if (!resp) return list_failed(resp.error());
      auto reply = parse_range_reply(resp->body);
      if (!reply) {
        return list_failed(Error{
            reply.error().kind,
            fmt::format("{} (HTTP {} from {})", reply.error().message, resp->status, endpoint())});
      }
      if (page == 0) listing_.revision = reply->revision;
      std::string last_key;
      for (auto& kv : reply->kvs) {
        last_key = kv.key;
        listing_.kvs[kv.key] = std::move(kv);
      }
      if (reply->more && !reply->kvs.empty()) {
        if (page > 100000) return list_failed(Error::internal("etcd range: too many pages"));
        last_key.push_back('\0');  // next page starts just after the last key
        return list_page(std::move(last_key), page + 1);
      }
      listed();
    };
    call(std::move(c));
  }
  void list_failed(const Error& e) {
    publish(Error{e.kind, source_.describe() + ": " + e.message});
    retry_later();
  }
  void listed() {
    ++source_.lists_;
    kvs_ = std::move(listing_.kvs);
    revision_ = listing_.revision;
    publish(to_endpoints(kvs_, options_.prefix, logged_));
    watch();
  }

  // 2. Watch from revision+1 until the stream ends.
  void watch() {
    start_revision_ = revision_ + 1;
    nlohmann::json create = {{"create_request",
                              {{"key", base64_encode(options_.prefix)},
                               {"range_end", base64_encode(prefix_range_end(options_.prefix))},
                               {"start_revision", std::to_string(start_revision_)},
                               {"progress_notify", true}}}};
    splitter_ = JsonObjectSplitter();
    stream_error_.reset();
    error_body_.clear();
    created_ = false;
    compacted_ = false;
    started_ = SteadyClock::now();
    ++source_.watches_;
    http_.start_stream(
        request("/v3/watch", create.dump(), options_.timeout), options_.idle_timeout,
        [this](long status, std::string_view chunk) { return on_chunk(status, chunk); },
        [this](Result<net::HttpResponse> end) { watch_ended(std::move(end)); });
  }

  // Runs inside libcurl: updates the set and publishes, never starts or cancels a request.
  bool on_chunk(long status, std::string_view chunk) {
    if (status != 200) {
      if (error_body_.size() < 4096) error_body_.append(chunk.substr(0, 4096));
      return true;
    }
    const std::vector<std::string> objects = splitter_.feed(chunk);
    if (splitter_.buffered() > options_.max_response_bytes) {
      stream_error_ = Error::invalid(
          fmt::format("etcd watch stream: a message larger than max_response_size ({} bytes)",
                      options_.max_response_bytes));
      return false;
    }
    bool changed = false;
    for (const std::string& text : objects) {
      auto msg = parse_watch_message(text);
      if (!msg) {
        stream_error_ = msg.error();
        break;
      }
      if (msg->created) {
        created_ = true;
        backoff_.reset();
      }
      if (msg->canceled) {
        compacted_ = msg->compact_revision > 0;
        stream_error_ = Error::unavailable(
            compacted_
                ? fmt::format("watch cancelled: revision {} compacted (now {}); re-listing",
                              start_revision_, msg->compact_revision)
                : fmt::format("watch cancelled: {}",
                              msg->cancel_reason.empty() ? "no reason given" : msg->cancel_reason));
        break;
      }
      for (WatchEvent& ev : msg->events) {
        if (ev.is_delete) {
          changed |= kvs_.erase(ev.kv.key) > 0;
        } else {
          const std::string key = ev.kv.key;
          kvs_[key] = std::move(ev.kv);
          changed = true;
        }
      }
      if (msg->revision > revision_) revision_ = msg->revision;
    }
    if (changed) publish(to_endpoints(kvs_, options_.prefix, logged_));
    if (!stream_error_ && splitter_.error()) stream_error_ = *splitter_.error();
    return !stream_error_;
  }

  void watch_ended(Result<net::HttpResponse> end) {
    std::string why;
    if (!end) {
      why = end.error().message;
    } else if (stream_error_) {
      why = stream_error_->message;
    } else if (end->status != 200) {
      why = fmt::format("HTTP {}: {}", end->status, error_body_.substr(0, 300));
    } else {
      why = "stream closed by the server";
    }
    if (is_auth_error(why) || (end && end->status == 401)) token_.clear();
    if (compacted_) {
      log::info(kComponent, "{}: {}", source_.describe(), why);
      return list();  // re-list at once
    }
    log::info(kComponent, "{}: watch ended at revision {}: {}; re-listing", source_.describe(),
              revision_, why);
    // A stream that was up for a while is re-created at once; one that fails at once backs off.
    if (!(created_ && SteadyClock::now() - started_ > std::chrono::seconds(1))) {
      return retry_later();
    }
    list();
  }

  void retry_later() {
    timer_ = loop_.after(backoff_.next(), [this] {
      timer_ = 0;
      list();
    });
  }

  void publish(Snapshot snap) {
    if (same(last_, snap)) return;
    if (snap.ok()) {
      log::debug(kComponent, "{}: {} endpoints", source_.describe(), snap->size());
    } else {
      log::debug(kComponent, "{}: {}", source_.describe(), snap.error().message);
    }
    sink_.publish(snap);
    last_ = std::move(snap);
  }

  EtcdSource& source_;
  const Options& options_;
  runtime::Loop& loop_;
  Sink& sink_;
  net::AsyncHttpClient http_;
  runtime::Backoff backoff_;
  runtime::TimerId timer_ = 0;
  size_t current_ = 0;
  std::string token_;
  std::set<std::string> logged_;
  std::optional<Snapshot> last_;
  Listing listing_;  // the listing being read
  KvMap kvs_;
  std::int64_t revision_ = 0;
  // The current watch.
  std::int64_t start_revision_ = 0;
  JsonObjectSplitter splitter_;
  std::optional<Error> stream_error_;
  std::string error_body_;
  bool created_ = false;
  bool compacted_ = false;
  SteadyClock::time_point started_{};
};

EtcdSource::EtcdSource(Options options) : options_(std::move(options)) {}

EtcdSource::~EtcdSource() { stop(); }

std::string EtcdSource::describe() const {
  return fmt::format("etcd {} @ {}", options_.prefix, fmt::join(options_.endpoints, ","));
}

Snapshot EtcdSource::fetch_once(std::chrono::milliseconds timeout) {
  net::CurlHttpClient::Options client_options;
  client_options.max_body_bytes = options_.max_response_bytes;
  net::CurlHttpClient client(client_options);
  Session session(options_, client);
  auto listing = session.list(std::min(timeout, options_.timeout));
  if (!listing) return Error{listing.error().kind, describe() + ": " + listing.error().message};
  std::set<std::string> logged;
  return to_endpoints(listing->kvs, options_.prefix, logged);
}

Status EtcdSource::start(Sink& sink) {
  if (loop_ != nullptr) return Error::internal(describe() + ": already started");
  own_runtime_ = std::make_unique<runtime::Runtime>(runtime::RuntimeOptions{.threads = 1});
  Status st = start_on(*own_runtime_, sink);
  if (!st) own_runtime_.reset();
  return st;
}

Status EtcdSource::start_on(runtime::Runtime& runtime, Sink& sink) {
  if (loop_ != nullptr) return Error::internal(describe() + ": already started");
  loop_ = &runtime.loop();
  loop_->run_sync([&] {
    machine_ = std::make_unique<Machine>(*this, *loop_, sink);
    machine_->begin();
  });
  return {};
}

void EtcdSource::stop() {
  if (loop_ == nullptr) return;
  // On the loop thread: the call or stream in flight is aborted without a callback and the retry
  // timer cancelled; nothing of this source runs afterwards.
  loop_->run_sync([this] { machine_.reset(); });
  loop_ = nullptr;
  if (own_runtime_) {
    own_runtime_->stop();
    own_runtime_.reset();
  }
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
