#include "discovery/kubernetes/kubeconfig.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/log.h"
#include "core/secrets.h"
#include "os/base64.h"
#include "os/file.h"
#include "os/json.h"
#include "os/process.h"
#include "os/strings.h"

namespace ep::discovery::kubernetes {

namespace fs = std::filesystem;
constexpr const char* kComponent = "source.kubernetes";

class PrivateDir {
 public:
  PrivateDir() {
    std::string tmpl = (fs::temp_directory_path() / "elasticproxy-k8s-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~PrivateDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  // Writes `data` to a 0600 file named `name` in the directory.
  Result<std::string> write(const std::string& name, const std::string& data) {
    if (path_.empty()) return Error::internal("kubernetes: cannot create a private temp directory");
    const std::string file = path_ + "/" + name;
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write);
    out << data;
    if (!out) return Error::internal("kubernetes: cannot write " + file);
    return file;
  }

 private:
  std::string path_;
};

std::string ClusterAccess::key() const {
  return fmt::format("{}|{}|{}|{}|{}|{}|{}", server, origin, cert_file, token_file,
                     exec ? exec->command : "", username, ca_file);
}

namespace {

std::string resolve(const fs::path& dir, const std::string& p) {
  if (p.empty()) return p;
  fs::path path(p);
  if (path.is_relative()) path = dir / path;
  return path.lexically_normal().string();
}

std::string scalar(const YAML::Node& n, const char* key) {
  if (!n || !n.IsMap()) return {};
  YAML::Node v = n[key];
  if (!v || !v.IsScalar()) return {};
  return v.Scalar();
}

struct NamedEntry {
  YAML::Node node;
  fs::path dir;  // of the file that defined it
  std::string file;
};

// Decodes a -data field to a private file.
Result<std::string> data_file(ClusterAccess& a, const std::string& b64, const std::string& name,
                              const std::string& what) {
  std::string clean;
  for (char c : b64)
    if (!std::isspace(static_cast<unsigned char>(c))) clean += c;
  auto decoded = os::base64_decode(clean);
  if (!decoded) return Error::invalid(what + ": " + decoded.error().message);
  if (!a.dir) a.dir = std::make_shared<PrivateDir>();
  return a.dir->write(name, *decoded);
}

Result<ClusterAccess> in_cluster(const Options& options) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (host == nullptr || *host == '\0' || port == nullptr || *port == '\0')
    return Error::invalid(
        "kubernetes: in cluster, but KUBERNETES_SERVICE_HOST / KUBERNETES_SERVICE_PORT are not "
        "set (not running in a pod? give a kubeconfig)");
  ClusterAccess a;
  std::string h = host;
  if (h.find(':') != std::string::npos) h = "[" + h + "]";
  a.server = fmt::format("https://{}:{}", h, port);
  const std::string dir = options.service_account_dir;
  a.token_file = dir + "/token";
  a.ca_file = dir + "/ca.crt";
  if (auto ns = os::read_file(dir + "/namespace", 4096); ns)
    a.namespace_ = std::string(os::trim(*ns));
  if (::access(a.token_file.c_str(), R_OK) != 0)
    return Error::invalid("kubernetes: in cluster, but the service-account token " + a.token_file +
                          " is not readable");
  a.origin = "in-cluster";
  return a;
}

}  // namespace

Result<ClusterAccess> load_access(const Options& options) {
  std::vector<std::string> files;
  if (!options.kubeconfig.empty()) {
    files.push_back(options.kubeconfig);
  } else if (const char* env = std::getenv("KUBECONFIG"); env != nullptr && *env != '\0') {
    std::string list = env;
    size_t start = 0;
    while (start <= list.size()) {
      size_t end = list.find(':', start);
      if (end == std::string::npos) end = list.size();
      if (end > start) files.push_back(list.substr(start, end - start));
      start = end + 1;
    }
  } else if (const char* home = std::getenv("HOME"); home != nullptr) {
    const std::string def = std::string(home) + "/.kube/config";
    if (fs::exists(def)) files.push_back(def);
  }
  const bool env_in_cluster = std::getenv("KUBERNETES_SERVICE_HOST") != nullptr;
  if (options.in_cluster == InCluster::kYes ||
      (options.in_cluster == InCluster::kAuto && options.kubeconfig.empty() && files.empty() &&
       env_in_cluster)) {
    return in_cluster(options);
  }
  if (files.empty())
    return Error::invalid(
        "kubernetes: no kubeconfig (set kubernetes.kubeconfig or $KUBECONFIG, create "
        "~/.kube/config, or run in a pod)");

  // Merge: the first file that sets a value wins (kubectl's rule).
  std::string current_context;
  std::map<std::string, NamedEntry> clusters, users, contexts;
  size_t loaded = 0;
  for (const std::string& file : files) {
    if (!fs::exists(file)) {
      if (!options.kubeconfig.empty())
        return Error::invalid("kubernetes: kubeconfig " + file + " does not exist");
      continue;  // $KUBECONFIG entries may be missing (kubectl ignores them)
    }
    YAML::Node root;
    try {
      root = YAML::LoadFile(file);
    } catch (const YAML::Exception& e) {
      return Error::invalid(fmt::format("kubernetes: kubeconfig {}: {}", file, e.what()));
    }
    ++loaded;
    if (!root || root.IsNull()) continue;
    if (!root.IsMap()) return Error::invalid("kubernetes: kubeconfig " + file + " is not a map");
    if (current_context.empty()) current_context = scalar(root, "current-context");
    const fs::path dir = fs::path(file).parent_path();
    for (auto [section, field, out] :
         {std::tuple{"clusters", "cluster", &clusters}, std::tuple{"users", "user", &users},
          std::tuple{"contexts", "context", &contexts}}) {
      YAML::Node list = root[section];
      if (!list || list.IsNull()) continue;
      if (!list.IsSequence())
        return Error::invalid(
            fmt::format("kubernetes: kubeconfig {}: '{}' is not a list", file, section));
      for (const YAML::Node& item : list) {
        const std::string name = scalar(item, "name");
        if (name.empty() || !item[field]) continue;
        out->emplace(name, NamedEntry{item[field], dir, file});
      }
    }
  }
  if (loaded == 0)
    return Error::invalid(
        fmt::format("kubernetes: none of the kubeconfig files exists ({})", fmt::join(files, ":")));
  const std::string where = fmt::format("{}", fmt::join(files, ":"));
  const std::string ctx_name = options.context.empty() ? current_context : options.context;
  if (ctx_name.empty())
    return Error::invalid("kubernetes: kubeconfig " + where +
                          " has no current-context; set kubernetes.context");
  auto ctx = contexts.find(ctx_name);
  if (ctx == contexts.end())
    return Error::invalid(
        fmt::format("kubernetes: kubeconfig {}: no context '{}'", where, ctx_name));
  const std::string cluster_name = scalar(ctx->second.node, "cluster");
  const std::string user_name = scalar(ctx->second.node, "user");
  auto cl = clusters.find(cluster_name);
  if (cl == clusters.end())
    return Error::invalid(
        fmt::format("kubernetes: kubeconfig {}: context '{}' names cluster '{}', "
                    "which is not defined",
                    where, ctx_name, cluster_name));
  ClusterAccess a;
  a.origin = fmt::format("kubeconfig {} context {}", where, ctx_name);
  a.namespace_ = scalar(ctx->second.node, "namespace");
  const YAML::Node& c = cl->second.node;
  const std::string what_c =
      fmt::format("kubernetes: kubeconfig {}: cluster '{}'", cl->second.file, cluster_name);
  a.server = scalar(c, "server");
  while (!a.server.empty() && a.server.back() == '/') a.server.pop_back();
  if (a.server.rfind("https://", 0) != 0 && a.server.rfind("http://", 0) != 0)
    return Error::invalid(what_c + ": server '" + a.server + "' must be an http(s):// URL");
  a.insecure = scalar(c, "insecure-skip-tls-verify") == "true";
  a.ca_file = resolve(cl->second.dir, scalar(c, "certificate-authority"));
  if (const std::string d = scalar(c, "certificate-authority-data"); !d.empty()) {
    a.ca_data_b64 = d;
    auto f = data_file(a, d, "ca.crt", what_c + ": certificate-authority-data");
    if (!f) return f.error();
    a.ca_file = *f;
  }
  if (!user_name.empty()) {
    auto us = users.find(user_name);
    if (us == users.end())
      return Error::invalid(
          fmt::format("kubernetes: kubeconfig {}: context '{}' names user '{}', "
                      "which is not defined",
                      where, ctx_name, user_name));
    const YAML::Node& u = us->second.node;
    const std::string what_u =
        fmt::format("kubernetes: kubeconfig {}: user '{}'", us->second.file, user_name);
    a.token = scalar(u, "token");
    secrets::add(a.token);
    a.token_file = resolve(us->second.dir, scalar(u, "tokenFile"));
    a.username = scalar(u, "username");
    a.password = scalar(u, "password");
    secrets::add(a.password);
    a.cert_file = resolve(us->second.dir, scalar(u, "client-certificate"));
    a.key_file = resolve(us->second.dir, scalar(u, "client-key"));
    if (const std::string d = scalar(u, "client-certificate-data"); !d.empty()) {
      auto f = data_file(a, d, "client.crt", what_u + ": client-certificate-data");
      if (!f) return f.error();
      a.cert_file = *f;
    }
    if (const std::string d = scalar(u, "client-key-data"); !d.empty()) {
      auto f = data_file(a, d, "client.key", what_u + ": client-key-data");
      if (!f) return f.error();
      a.key_file = *f;
    }
    if (a.cert_file.empty() != a.key_file.empty())
      return Error::invalid(what_u + ": client-certificate and client-key go together");
    if (YAML::Node e = u["exec"]; e && e.IsMap()) {
      ExecConfig x;
      x.api_version = scalar(e, "apiVersion");
      x.command = scalar(e, "command");
      if (x.command.empty()) return Error::invalid(what_u + ": exec.command is missing");
      if (x.command.find('/') != std::string::npos) x.command = resolve(us->second.dir, x.command);
      if (x.api_version != "client.authentication.k8s.io/v1" &&
          x.api_version != "client.authentication.k8s.io/v1beta1")
        return Error::invalid(what_u + ": exec.apiVersion '" + x.api_version +
                              "' is not client.authentication.k8s.io/v1 or v1beta1");
      if (YAML::Node args = e["args"]; args && args.IsSequence())
        for (const auto& arg : args) x.args.push_back(arg.Scalar());
      if (YAML::Node env = e["env"]; env && env.IsSequence())
        for (const auto& kv : env) x.env.emplace_back(scalar(kv, "name"), scalar(kv, "value"));
      x.provide_cluster_info = scalar(e, "provideClusterInfo") == "true";
      if (scalar(e, "interactiveMode") == "Always")
        return Error::invalid(what_u +
                              ": exec.interactiveMode Always needs a terminal; a daemon "
                              "cannot answer it");
      a.exec = std::move(x);
    }
    if (u["auth-provider"])
      return Error::invalid(what_u +
                            ": auth-provider plugins were removed from Kubernetes; use "
                            "an exec plugin (e.g. gke-gcloud-auth-plugin)");
  }
  return a;
}

// ---- Credentials ----

Credentials::Credentials(ClusterAccess access) : access_(std::move(access)) {}

std::uint64_t Credentials::exec_runs() const {
  std::lock_guard lock(mu_);
  return exec_runs_;
}

void Credentials::rejected() {
  std::lock_guard lock(mu_);
  exec_valid_ = false;
  file_mtime_ns_ = -1;
}

Result<std::string> Credentials::file_token() {
  struct stat st {};
  if (::stat(access_.token_file.c_str(), &st) != 0)
    return Error::unavailable("kubernetes: cannot read token file " + access_.token_file);
  const std::int64_t mtime = std::int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
  if (mtime != file_mtime_ns_ || static_cast<std::uintmax_t>(st.st_size) != file_size_) {
    auto text = os::read_file(access_.token_file, 1u << 20);
    if (!text)
      return Error::unavailable("kubernetes: cannot read token file " + access_.token_file);
    file_token_ = std::string(os::trim(*text));
    secrets::add(file_token_);
    file_mtime_ns_ = mtime;
    file_size_ = static_cast<std::uintmax_t>(st.st_size);
  }
  return file_token_;
}

Result<ExecCredential> parse_exec_credential(std::string_view text) {
  auto doc = os::parse_json(text, "ExecCredential");
  if (!doc) return doc.error();
  if (!doc->is_object() || doc->value("kind", "") != "ExecCredential")
    return Error::invalid("the exec plugin's output is not an ExecCredential object");
  auto st = doc->find("status");
  if (st == doc->end() || !st->is_object())
    return Error::invalid("ExecCredential: no status object");
  ExecCredential out;
  auto str = [&](const char* k) {
    auto it = st->find(k);
    return it != st->end() && it->is_string() ? it->get<std::string>() : std::string{};
  };
  out.token = str("token");
  out.client_certificate_data = str("clientCertificateData");
  out.client_key_data = str("clientKeyData");
  if (out.token.empty() && (out.client_certificate_data.empty() || out.client_key_data.empty()))
    return Error::invalid(
        "ExecCredential: status has neither a token nor a client certificate/key");
  if (const std::string ts = str("expirationTimestamp"); !ts.empty()) {
    std::tm tm{};
    const char* end = ::strptime(ts.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
    if (end == nullptr)
      return Error::invalid("ExecCredential: expirationTimestamp '" + os::printable(ts, 40) +
                            "' is not RFC 3339");
    while (*end == '.' || std::isdigit(static_cast<unsigned char>(*end))) ++end;
    if (*end != 'Z' && *end != 'z')
      return Error::invalid("ExecCredential: expirationTimestamp '" + os::printable(ts, 40) +
                            "' must be UTC (Z)");
    out.expiry = std::chrono::system_clock::from_time_t(::timegm(&tm));
  }
  return out;
}

std::vector<std::string> Credentials::exec_argv_locked() {
  const ExecConfig& x = *access_.exec;
  nlohmann::json info = {{"apiVersion", x.api_version},
                         {"kind", "ExecCredential"},
                         {"spec", {{"interactive", false}}}};
  if (x.provide_cluster_info) {
    info["spec"]["cluster"] = {{"server", access_.server},
                               {"insecure-skip-tls-verify", access_.insecure}};
    if (!access_.ca_data_b64.empty())
      info["spec"]["cluster"]["certificate-authority-data"] = access_.ca_data_b64;
  }
  std::vector<std::string> argv = {"env", "KUBERNETES_EXEC_INFO=" + info.dump()};
  for (const auto& [k, v] : x.env) argv.push_back(k + "=" + v);
  argv.push_back(x.command);
  argv.insert(argv.end(), x.args.begin(), x.args.end());
  ++exec_runs_;
  return argv;
}

std::vector<std::string> Credentials::exec_argv() {
  std::lock_guard lock(mu_);
  return exec_argv_locked();
}

bool Credentials::exec_needed_locked() const {
  if (!access_.exec) return false;
  const auto now = std::chrono::system_clock::now();
  return !exec_valid_ || (exec_expiry_ && *exec_expiry_ - std::chrono::minutes(1) <= now);
}

bool Credentials::exec_needed() const {
  std::lock_guard lock(mu_);
  return exec_needed_locked();
}

Status Credentials::exec_finished(const Result<os::ProcessResult>& run) {
  std::lock_guard lock(mu_);
  return exec_finished_locked(run);
}

Status Credentials::exec_finished_locked(const Result<os::ProcessResult>& run) {
  const ExecConfig& x = *access_.exec;
  if (!run)
    return Error::unavailable("kubernetes: exec plugin " + x.command + ": " + run.error().message);
  if (!run->succeeded()) {
    std::string err = run->error_output;
    secrets::mask(err);
    return Error::unavailable(fmt::format(
        "kubernetes: exec plugin {} failed ({}): {}", x.command,
        run->timed_out ? std::string("timed out") : fmt::format("exit {}", run->exit_code),
        os::printable(err, 300)));
  }
  auto cred = parse_exec_credential(run->output);
  if (!cred)
    return Error::invalid("kubernetes: exec plugin " + x.command + ": " + cred.error().message);
  secrets::add(cred->token);
  exec_token_ = cred->token;
  exec_expiry_ = cred->expiry;
  exec_cert_file_.clear();
  exec_key_file_.clear();
  if (!cred->client_certificate_data.empty()) {
    if (!access_.dir) access_.dir = std::make_shared<PrivateDir>();
    auto c = access_.dir->write("exec.crt", cred->client_certificate_data);
    auto k = access_.dir->write("exec.key", cred->client_key_data);
    if (!c || !k) return Error::internal("kubernetes: cannot store the exec client certificate");
    exec_cert_file_ = *c;
    exec_key_file_ = *k;
  }
  exec_valid_ = true;
  return {};
}

Status Credentials::refresh_exec(std::chrono::milliseconds timeout) {
  os::ProcessOptions po;
  po.timeout = timeout;
  po.merge_stderr = false;
  po.max_output = 1u << 20;
  return exec_finished_locked(os::run_process(exec_argv_locked(), po));
}

Status Credentials::apply(net::HttpRequest& req, std::chrono::milliseconds timeout, bool run_exec) {
  std::lock_guard lock(mu_);
  req.tls.ca_file = access_.ca_file;
  req.tls.verify = !access_.insecure;
  req.tls.cert_file = access_.cert_file;
  req.tls.key_file = access_.key_file;
  std::string bearer;
  if (access_.exec) {
    if (!run_exec) {
      // The caller ran the plugin (if it had to) just before: a valid credential is used even
      // when it expires within the minute.
      if (!exec_valid_)
        return Error::unavailable("kubernetes: exec plugin " + access_.exec->command +
                                  ": no valid credential yet");
    } else if (exec_needed_locked()) {
      Status s = refresh_exec(timeout);
      if (!s) return s;
    }
    bearer = exec_token_;
    if (!exec_cert_file_.empty()) {
      req.tls.cert_file = exec_cert_file_;
      req.tls.key_file = exec_key_file_;
    }
  }
  if (bearer.empty() && !access_.token_file.empty()) {
    auto t = file_token();
    if (!t) return t.error();
    bearer = *t;
  }
  if (bearer.empty()) bearer = access_.token;
  if (!bearer.empty()) {
    req.headers.emplace_back("Authorization", "Bearer " + bearer);
  } else if (!access_.username.empty()) {
    req.headers.emplace_back(
        "Authorization", "Basic " + os::base64_encode(access_.username + ":" + access_.password));
  }
  return {};
}

}  // namespace ep::discovery::kubernetes
