#include "discovery/consul/token.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/log.h"
#include "core/secrets.h"

namespace ep::discovery::consul {

TokenReader::TokenReader(std::string token, std::string file, std::string owner)
    : token_(std::move(token)), file_(std::move(file)), owner_(std::move(owner)) {}

Result<std::string> TokenReader::get(bool force_reload) {
  std::lock_guard<std::mutex> lock(mu_);
  if (file_.empty()) return token_;
  struct stat st {};
  if (::stat(file_.c_str(), &st) != 0) {
    return Error::invalid(
        fmt::format("cannot read the Consul token file {}: {}", file_, std::strerror(errno)));
  }
  const std::int64_t mtime =
      static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  if (!force_reload && mtime == mtime_) return token_;
  std::ifstream in(file_);
  if (!in) {
    return Error::invalid(
        fmt::format("cannot read the Consul token file {}: {}", file_, std::strerror(errno)));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  std::string t = ss.str();
  while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) t.pop_back();
  size_t start = 0;
  while (start < t.size() && std::isspace(static_cast<unsigned char>(t[start]))) ++start;
  t.erase(0, start);
  if (t.find_first_of("\r\n") != std::string::npos || t.size() > 4096) {
    return Error::invalid("the Consul token file " + file_ + " must hold one token on one line");
  }
  if (mtime_ >= 0 && t != token_) {
    log::info("consul", "{}: token file {} changed; using the new token", owner_, file_);
  }
  secrets::add(t);  // masked in logs, /status and /metrics from the moment it is read
  token_ = std::move(t);
  mtime_ = mtime;
  return token_;
}

}  // namespace ep::discovery::consul
