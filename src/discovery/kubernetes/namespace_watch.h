#pragma once
// One list-then-watch of a collection, shared by every `kubernetes` source of one API server with
// the same credentials and the same runtime: a namespace's EndpointSlices (one watch connection
// whatever the number of services: `kubernetes.io/service-name in (a,b,...)`, or `=a` for one
// service), a namespace's Services, or the cluster's Nodes (the Service-based address modes).
// Every watch of one cluster on one runtime runs on the same loop (chosen from the cluster), so a
// source subscribed to several of them is called on one thread.
//
// Algorithm (client-go's reflector): list with limit/continue paging (an expired continue token,
// 410, restarts the list) → deliver each subscriber its service's complete slices → watch from
// the list's resourceVersion with allowWatchBookmarks and timeoutSeconds → apply ADDED /
// MODIFIED / DELETED, remember BOOKMARK resourceVersions → when the server closes the watch,
// resume from the last resourceVersion seen (Services and Nodes: no selector; a subscriber
// selects by name). A 410 (ERROR event or HTTP status: the version is
// too old) re-lists and delivers only the complete new listing (never a partial set). A watch
// silent for idle_timeout is treated as hung and re-listed. Failures (API down, 401, 403, 5xx,
// garbage) are delivered to every subscriber as errors (the guard keeps the last good set) and
// retried with capped, jittered backoff; a 401 drops cached credentials (exec plugin, token file).
// A new subscriber whose service is not yet selected changes the selector: the watch re-lists
// once subscriptions settle (50 ms without a new one, at most 1 s), one re-list per burst.
//
// Threading: a handler on one loop of the runtime; every member is touched on that loop.
// subscribe/unsubscribe run_sync onto it (never call them from a loop thread of that runtime);
// after unsubscribe returns, the subscriber is never called again.

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/metrics.h"
#include "core/result.h"
#include "discovery/kubernetes/kubeconfig.h"
#include "discovery/kubernetes/options.h"
#include "discovery/kubernetes/parse.h"
#include "discovery/kubernetes/stats.h"
#include "net/async_http_client.h"
#include "runtime/async_process.h"
#include "runtime/backoff.h"
#include "runtime/runtime.h"

namespace ep::discovery::kubernetes {

// One cluster's credentials on one runtime, shared by every watch of that cluster (all on one
// loop): a token file is read, and an exec credential plugin run, once for all of them.
struct ClusterAuth {
  explicit ClusterAuth(ClusterAccess access) : credentials(std::move(access)) {}
  Credentials credentials;
  // (loop) The exec plugin in flight, and per watch what runs once it answered.
  std::unique_ptr<runtime::AsyncProcess> exec;
  std::map<const void*, std::function<void()>> waiting;
};

class NamespaceWatch {
 public:
  class Subscriber {
   public:
    virtual ~Subscriber() = default;
    // The objects it wants: EndpointSlices of this service, the Service of this name; "" = every
    // object (Nodes).
    virtual const std::string& key() const = 0;
    // Its complete set of objects (on the watch's loop; the pointers live until it returns).
    virtual void on_objects(const std::vector<const Object*>& objects) = 0;
    virtual void on_error(const Error& error) = 0;
  };

  // The shared watch of `resource` for (access, namespace; Nodes: "") on `runtime`, created on
  // first use. `options` (timeouts, paging) are taken from the first subscriber's source. Any
  // thread but a loop thread.
  static std::shared_ptr<NamespaceWatch> acquire(const ClusterAccess& access, const std::string& ns,
                                                 const Options& options, runtime::Runtime& runtime,
                                                 Metrics& metrics,
                                                 Resource resource = Resource::kEndpointSlices);
  // The loop every watch of `access` on `runtime` runs on.
  static runtime::Loop& loop_for(const ClusterAccess& access, runtime::Runtime& runtime);

  NamespaceWatch(std::shared_ptr<ClusterAuth> auth, std::string ns, const Options& options,
                 runtime::Loop& loop, Metrics& metrics,
                 Resource resource = Resource::kEndpointSlices);
  ~NamespaceWatch();  // tears down on the loop; any thread but the loop's
  NamespaceWatch(const NamespaceWatch&) = delete;
  NamespaceWatch& operator=(const NamespaceWatch&) = delete;

  void subscribe(Subscriber* s);
  void unsubscribe(Subscriber* s);

  runtime::Loop& loop() { return loop_; }
  Credentials& credentials() { return auth_->credentials; }
  const std::string& server() const { return auth_->credentials.access().server; }
  const std::string& ns() const { return ns_; }
  Resource resource() const { return resource_; }
  // A GET of `path_and_query` with credentials (on any thread).
  Result<net::HttpRequest> request(const std::string& path_and_query,
                                   std::chrono::milliseconds timeout);
  // Turns a non-2xx reply into an error naming what failed (and for a 403 the permission).
  Error http_error(const net::HttpResponse& resp, const std::string& verb,
                   const std::string& resource, const std::string& group, bool namespaced);

  std::uint64_t lists() const { return lists_.load(); }
  std::uint64_t watches() const { return watches_.load(); }
  std::uint64_t connections_opened() const;  // any thread but the loop's

 private:
  void restart();  // (loop) cancel everything and list again with the current selector
  // (loop) True when a request can be authenticated now. Otherwise the cluster's exec credential
  // plugin runs first (once for all its watches) without blocking the loop
  // (runtime::AsyncProcess, bounded by `timeout`) and `retry` is called once it answered (the
  // latest `retry` when several came meanwhile); its failure goes through fail().
  bool authenticate(std::function<void()> retry);
  void list_page(const std::string& cont);
  void listed();
  void watch(const char* why);
  bool on_chunk(long status, std::string_view chunk);
  void watch_ended(Result<net::HttpResponse> end);
  void fail(const Error& e, const char* reason);
  void retry_later();
  void deliver(const std::set<std::string>& keys);
  bool selective() const { return resource_ == Resource::kEndpointSlices; }
  std::string selector() const;
  std::string base_path() const;
  std::string where() const;  // for logs and errors

  std::shared_ptr<ClusterAuth> auth_;
  Credentials& credentials_;  // auth_->credentials
  std::string ns_;
  Resource resource_;
  Options options_;
  runtime::Loop& loop_;
  KubernetesStats stats_;
  std::unique_ptr<net::AsyncHttpClient> http_;
  runtime::Backoff backoff_;
  std::atomic<std::uint64_t> lists_{0}, watches_{0};

  // Loop state.
  std::vector<Subscriber*> subs_;
  std::set<std::string> selected_;      // keys the current list/watch selects (EndpointSlices)
  runtime::TimerId restart_timer_ = 0;  // a re-list for new subscribers, waiting to settle
  std::optional<std::chrono::steady_clock::time_point> restart_since_;
  bool have_listing_ = false;  // slices_ is a complete listing for selected_
  net::AsyncHttpClient::RequestId request_ = 0;
  runtime::TimerId timer_ = 0;
  std::map<std::string, Object> listing_;  // the list in progress
  std::string list_rv_;
  std::map<std::string, Object> objects_;  // name → object
  std::string rv_;                         // last resourceVersion seen
  // The current watch.
  std::string line_;
  std::string error_body_;
  std::optional<Error> stream_error_;
  bool gone_ = false;
  bool got_data_ = false;
  std::chrono::steady_clock::time_point watch_started_{};
  std::set<std::string> logged_;
  std::optional<std::chrono::milliseconds> retry_after_;  // a 429's Retry-After, for the next retry
  bool exec_fresh_ =
      false;  // the exec plugin just answered for us: its credential is yet to be used
};

}  // namespace ep::discovery::kubernetes
