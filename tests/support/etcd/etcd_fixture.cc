#include "etcd/etcd_fixture.h"

#include <fmt/format.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "discovery/etcd/parse.h"
#include "net/curl_http_client.h"
#include "support/eventually.h"
#include "support/haproxy/loopback.h"

namespace ep::test {

using discovery::etcd::base64_encode;
using nlohmann::json;

EtcdFixture::EtcdFixture() : EtcdFixture(Options{}) {}
EtcdFixture::EtcdFixture(Options options) : options_(options) {
  client_port_ = free_port();
  peer_port_ = free_port();
  while (peer_port_ == client_port_) peer_port_ = free_port();
}
EtcdFixture::~EtcdFixture() { process_.kill(); }

std::string EtcdFixture::url() const {
  return fmt::format("{}://127.0.0.1:{}", options_.tls ? "https" : "http", client_port_);
}

Status EtcdFixture::make_certs() {
  const std::string d = dir_.path();
  {
    std::ofstream(d + "/server.ext")
        << "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n";
    std::ofstream(d + "/client.ext") << "extendedKeyUsage=clientAuth\n";
  }
  const std::string key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  const std::vector<std::string> cmds = {
      fmt::format("openssl req -x509 {} -keyout {d}/ca.key -out {d}/ca.pem -days 2 "
                  "-subj /CN=ep-test-ca",
                  key, fmt::arg("d", d)),
      fmt::format("openssl req {} -keyout {d}/server.key -out {d}/server.csr -subj /CN=127.0.0.1",
                  key, fmt::arg("d", d)),
      fmt::format("openssl x509 -req -in {d}/server.csr -CA {d}/ca.pem -CAkey {d}/ca.key "
                  "-CAcreateserial -out {d}/server.pem -days 2 -extfile {d}/server.ext",
                  fmt::arg("d", d)),
      fmt::format("openssl req {} -keyout {d}/client.key -out {d}/client.csr -subj /CN=ep-client",
                  key, fmt::arg("d", d)),
      fmt::format("openssl x509 -req -in {d}/client.csr -CA {d}/ca.pem -CAkey {d}/ca.key "
                  "-CAcreateserial -out {d}/client.pem -days 2 -extfile {d}/client.ext",
                  fmt::arg("d", d)),
  };
  for (const auto& c : cmds) {
    if (std::system((c + " >>" + d + "/openssl.log 2>&1").c_str()) != 0)
      return Error::unavailable("failed: " + c + "\n" + read_text(d + "/openssl.log"));
  }
  return {};
}

Status EtcdFixture::start() {
  const std::string peer = fmt::format("http://127.0.0.1:{}", peer_port_);
  std::vector<std::string> argv = {"etcd",
                                   "--name=ep-test",
                                   "--data-dir=" + dir_.path() + "/data",
                                   "--listen-client-urls=" + url(),
                                   "--advertise-client-urls=" + url(),
                                   "--listen-peer-urls=" + peer,
                                   "--initial-advertise-peer-urls=" + peer,
                                   "--initial-cluster=ep-test=" + peer,
                                   "--initial-cluster-state=new",
                                   "--log-level=warn",
                                   "--logger=zap"};
  if (options_.tls) {
    if (!std::ifstream(ca_file())) {
      if (auto s = make_certs(); !s) return s;
    }
    argv.push_back("--cert-file=" + dir_.path() + "/server.pem");
    argv.push_back("--key-file=" + dir_.path() + "/server.key");
    argv.push_back("--client-cert-auth");
    argv.push_back("--trusted-ca-file=" + ca_file());
  }
  if (options_.progress_interval.count() > 0) {
    argv.push_back(fmt::format("--experimental-watch-progress-notify-interval={}ms",
                               options_.progress_interval.count()));
  }
  if (auto s = process_.start(argv, dir_.path() + "/etcd.log"); !s) return s;
  bool exited = false;
  const bool ready = eventually(
      [&] {
        if (!process_.running()) return exited = true;
        return revision().ok();
      },
      std::chrono::seconds(20));
  if (exited) return Error::unavailable("etcd exited:\n" + log());
  if (ready) return {};
  return Error::unavailable("etcd did not become ready:\n" + log());
}

void EtcdFixture::stop() { process_.stop(); }
void EtcdFixture::kill() { process_.kill(); }
Status EtcdFixture::pause() { return process_.signal(SIGSTOP); }
Status EtcdFixture::resume() { return process_.signal(SIGCONT); }
std::string EtcdFixture::log() const { return read_text(dir_.path() + "/etcd.log"); }

Result<std::string> EtcdFixture::call(const std::string& path, const std::string& body) {
  net::CurlHttpClient client;
  auto authenticate = [&]() -> Status {
    net::HttpRequest auth;
    auth.method = "POST";
    auth.url = url() + "/v3/auth/authenticate";
    auth.timeout = std::chrono::seconds(5);
    auth.body = json{{"name", "root"}, {"password", root_password_}}.dump();
    if (options_.tls) {
      auth.tls.ca_file = ca_file();
      auth.tls.cert_file = client_cert();
      auth.tls.key_file = client_key();
    }
    auto a = client.perform(auth);
    if (!a) return a.error();
    auto token = discovery::etcd::parse_auth_reply(a->body);
    if (!token) return token.error();
    token_ = *token;
    return {};
  };
  if (!root_password_.empty() && token_.empty()) {
    if (auto s = authenticate(); !s) return s.error();
  }
  for (int attempt = 0; attempt < 2; ++attempt) {
    net::HttpRequest req;
    req.method = "POST";
    req.url = url() + path;
    req.body = body;
    // Long enough to outlast a SIGSTOP the test holds (windows up to ~6 s under sanitizers): a
    // put sent to a stopped etcd must wait for SIGCONT, not give up and never be written (the
    // cause of EtcdSourceStopped's one 60 s miss under ASan: its third trial held the stop for
    // 1.9 s x time scale 3 = 5.7 s, past the old 5 s timeout, so the put was dropped).
    req.timeout = test::scaled(std::chrono::milliseconds(30000));
    if (options_.tls) {
      req.tls.ca_file = ca_file();
      req.tls.cert_file = client_cert();
      req.tls.key_file = client_key();
    }
    if (!token_.empty()) req.headers.emplace_back("Authorization", token_);
    auto resp = client.perform(req);
    if (!resp) return resp.error();
    if (resp->status == 401 && !root_password_.empty() && attempt == 0) {
      if (auto s = authenticate(); !s) return s.error();
      continue;
    }
    if (resp->status != 200)
      return Error::unavailable(fmt::format("{}: HTTP {}: {}", path, resp->status, resp->body));
    return resp->body;
  }
  return Error::unavailable(path + ": unauthorized");
}

namespace {
Result<std::int64_t> header_revision(const Result<std::string>& body) {
  if (!body) return body.error();
  try {
    json doc = json::parse(*body);
    const auto& rev = doc.at("header").at("revision");
    return rev.is_string() ? std::stoll(rev.get<std::string>()) : rev.get<std::int64_t>();
  } catch (const std::exception& e) {
    return Error::invalid(std::string("bad etcd reply: ") + e.what() + ": " + *body);
  }
}
}  // namespace

Result<std::int64_t> EtcdFixture::put(const std::string& key, const std::string& value,
                                      std::int64_t lease) {
  json body = {{"key", base64_encode(key)}, {"value", base64_encode(value)}};
  if (lease != 0) body["lease"] = std::to_string(lease);
  return header_revision(call("/v3/kv/put", body.dump()));
}

Result<std::int64_t> EtcdFixture::del(const std::string& key) {
  return header_revision(call("/v3/kv/deleterange", json{{"key", base64_encode(key)}}.dump()));
}

Result<std::int64_t> EtcdFixture::grant_lease(int ttl_seconds) {
  auto body = call("/v3/lease/grant", json{{"TTL", std::to_string(ttl_seconds)}}.dump());
  if (!body) return body.error();
  try {
    json doc = json::parse(*body);
    const auto& id = doc.at("ID");
    return id.is_string() ? std::stoll(id.get<std::string>()) : id.get<std::int64_t>();
  } catch (const std::exception& e) {
    return Error::invalid(std::string("bad lease reply: ") + e.what());
  }
}

Status EtcdFixture::compact(std::int64_t revision) {
  auto body = call("/v3/kv/compaction",
                   json{{"revision", std::to_string(revision)}, {"physical", true}}.dump());
  if (!body) return body.error();
  return {};
}

Result<std::int64_t> EtcdFixture::revision() {
  return header_revision(call("/v3/kv/range", json{{"key", base64_encode("ep-probe")}}.dump()));
}

Status EtcdFixture::enable_auth(const std::string& root_password, const std::string& user,
                                const std::string& password, const std::string& prefix) {
  auto step = [&](const std::string& path, const json& body) -> Status {
    auto r = call(path, body.dump());
    if (!r) return r.error();
    return {};
  };
  if (auto s = step("/v3/auth/user/add", {{"name", "root"}, {"password", root_password}}); !s)
    return s;
  if (auto s = step("/v3/auth/user/grant", {{"user", "root"}, {"role", "root"}}); !s) return s;
  if (auto s = step("/v3/auth/role/add", {{"name", "reader"}}); !s) return s;
  if (auto s = step("/v3/auth/role/grant",
                    {{"name", "reader"},
                     {"perm",
                      {{"permType", "READ"},
                       {"key", base64_encode(prefix)},
                       {"range_end", base64_encode(discovery::etcd::prefix_range_end(prefix))}}}});
      !s)
    return s;
  if (auto s = step("/v3/auth/user/add", {{"name", user}, {"password", password}}); !s) return s;
  if (auto s = step("/v3/auth/user/grant", {{"user", user}, {"role", "reader"}}); !s) return s;
  if (auto s = step("/v3/auth/enable", json::object()); !s) return s;
  root_password_ = root_password;
  token_.clear();
  return {};
}

}  // namespace ep::test
