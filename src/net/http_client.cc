#include "net/http_client.h"

#include <algorithm>
#include <cctype>

namespace ep::net {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool secret_param(std::string_view name) {
  const std::string n = lower(name);
  return n.find("token") != std::string::npos || n.find("secret") != std::string::npos ||
         n.find("password") != std::string::npos || n == "key" || n == "signature" ||
         n.find("x-amz-") == 0;
}

}  // namespace

void HttpHeaders::add(std::string name, std::string value) {
  entries_.emplace_back(std::move(name), std::move(value));
}

std::optional<std::string> HttpHeaders::get(std::string_view name) const {
  for (const auto& [n, v] : entries_) {
    if (iequals(n, name)) return v;
  }
  return std::nullopt;
}

std::vector<std::string> HttpHeaders::get_all(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& [n, v] : entries_) {
    if (iequals(n, name)) out.push_back(v);
  }
  return out;
}

bool is_secret_header(std::string_view name) {
  const std::string n = lower(name);
  return n == "authorization" || n == "proxy-authorization" || n == "cookie" ||
         n == "x-consul-token" || n.find("token") != std::string::npos ||
         n.find("secret") != std::string::npos;
}

std::string redact_url(std::string_view url) {
  std::string out;
  // userinfo: scheme://user:pass@host
  size_t scheme_end = url.find("://");
  size_t authority_start = scheme_end == std::string_view::npos ? 0 : scheme_end + 3;
  size_t authority_end = url.find_first_of("/?#", authority_start);
  if (authority_end == std::string_view::npos) authority_end = url.size();
  std::string_view authority = url.substr(authority_start, authority_end - authority_start);
  out.append(url.substr(0, authority_start));
  if (size_t at = authority.rfind('@'); at != std::string_view::npos) {
    out += "REDACTED@";
    out.append(authority.substr(at + 1));
  } else {
    out.append(authority);
  }
  size_t q = url.find('?', authority_end);
  if (q == std::string_view::npos) {
    out.append(url.substr(authority_end));
    return out;
  }
  out.append(url.substr(authority_end, q + 1 - authority_end));
  size_t hash = url.find('#', q);
  std::string_view query =
      url.substr(q + 1, (hash == std::string_view::npos ? url.size() : hash) - q - 1);
  bool first = true;
  while (true) {
    size_t amp = query.find('&');
    std::string_view part = query.substr(0, amp);
    if (!first) out += '&';
    first = false;
    size_t eq = part.find('=');
    if (eq != std::string_view::npos && secret_param(part.substr(0, eq))) {
      out.append(part.substr(0, eq + 1));
      out += "REDACTED";
    } else {
      out.append(part);
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  if (hash != std::string_view::npos) out.append(url.substr(hash));
  return out;
}

std::string url_encode(std::string_view text) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    }
  }
  return out;
}

}  // namespace ep::net
