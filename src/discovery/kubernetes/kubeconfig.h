#pragma once
// Where the API server is and how to authenticate, found the way kubectl / client-go find it:
// a kubeconfig ($KUBECONFIG, a colon-separated list merged first-wins, else ~/.kube/config;
// current-context or a named context) or the in-cluster service account
// (KUBERNETES_SERVICE_HOST/PORT, token, ca.crt, namespace).
// Credentials: static token, tokenFile (re-read when it changes and after a 401), client
// certificate/key (file or inline -data), username/password, and `exec` credential plugins
// (client.authentication.k8s.io/v1 and v1beta1 ExecCredential, cached until expirationTimestamp
// or a 401; a watch runs the plugin without blocking its loop, see NamespaceWatch::authenticate).
// Inline -data fields are written to 0600 files in a private temporary directory, because the HTTP
// client takes TLS material as files. Every token and password read is registered with core/secrets
// (never logged).

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/result.h"
#include "discovery/kubernetes/options.h"
#include "net/http_client.h"
#include "os/process.h"

namespace ep::discovery::kubernetes {

struct ExecConfig {
  std::string api_version;
  std::string command;
  std::vector<std::string> args;
  std::vector<std::pair<std::string, std::string>> env;
  bool provide_cluster_info = false;
};

// A private 0700 directory for the inline -data files; removed with the last reference.
class PrivateDir;

struct ClusterAccess {
  std::string server;  // https://host:port (no trailing slash)
  std::string ca_file;
  bool insecure = false;  // insecure-skip-tls-verify
  std::string cert_file, key_file;
  std::string token;       // static bearer token
  std::string token_file;  // re-read when it changes
  std::string username, password;
  std::optional<ExecConfig> exec;
  std::string namespace_;   // the context's namespace (or the pod's, in cluster); may be empty
  std::string origin;       // "kubeconfig /root/.kube/config context prod" | "in-cluster"
  std::string ca_data_b64;  // for the exec plugin's cluster info
  std::shared_ptr<PrivateDir> dir;

  // Identity of the API endpoint + credentials: sources with the same key share a watch.
  std::string key() const;
};

// Loads the access for these options (no network). Errors name the file and the field.
Result<ClusterAccess> load_access(const Options& options);

// Current credentials for requests. Thread-safe.
class Credentials {
 public:
  explicit Credentials(ClusterAccess access);
  const ClusterAccess& access() const { return access_; }
  // Adds TLS settings and the Authorization header. When the exec plugin's credential is missing
  // or expires within a minute: `run_exec` true runs the plugin here (blocking, bounded by
  // `timeout`: one-shot tools); false uses a valid one anyway and fails without one (a loop runs
  // the plugin first, when exec_needed(), with exec_argv() through runtime::AsyncProcess and
  // hands the result to exec_finished()).
  Status apply(net::HttpRequest& request, std::chrono::milliseconds timeout, bool run_exec = true);
  // Whether an exec plugin must run before apply() can authenticate.
  bool exec_needed() const;
  // The plugin's command line (with KUBERNETES_EXEC_INFO and its env through `env`); counts a run.
  std::vector<std::string> exec_argv();
  // Takes the plugin's result: caches its credential, or an error naming the plugin.
  Status exec_finished(const Result<os::ProcessResult>& run);
  // The server answered 401: drop the cached exec credential and re-read the token file.
  void rejected();
  std::uint64_t exec_runs() const;

 private:
  Status refresh_exec(std::chrono::milliseconds timeout);  // blocking (under mu_)
  bool exec_needed_locked() const;
  std::vector<std::string> exec_argv_locked();
  Status exec_finished_locked(const Result<os::ProcessResult>& run);
  Result<std::string> file_token();

  ClusterAccess access_;
  mutable std::mutex mu_;
  // tokenFile cache
  std::string file_token_;
  std::int64_t file_mtime_ns_ = -1;
  std::uintmax_t file_size_ = 0;
  // exec credential cache
  std::string exec_token_;
  std::string exec_cert_file_, exec_key_file_;
  std::optional<std::chrono::system_clock::time_point> exec_expiry_;
  bool exec_valid_ = false;
  std::uint64_t exec_runs_ = 0;
};

// Parses an ExecCredential (the plugin's stdout). Pure; for tests.
struct ExecCredential {
  std::string token;
  std::string client_certificate_data, client_key_data;
  std::optional<std::chrono::system_clock::time_point> expiry;
};
Result<ExecCredential> parse_exec_credential(std::string_view json);

}  // namespace ep::discovery::kubernetes
