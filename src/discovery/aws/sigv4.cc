#include "discovery/aws/sigv4.h"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <ctime>
#include <map>
#include <utility>

namespace ep::aws {
namespace {

constexpr std::string_view kHex = "0123456789ABCDEF";

bool is_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.' || c == '~';
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// RFC 7230 token characters.
bool is_token_char(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return true;
  if (c >= 'a' && c <= 'z') return true;
  if (c >= '0' && c <= '9') return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

// A line break is acceptable only as obs-fold (CRLF or LF followed by SP/HT): anything else would
// let a value smuggle a header or end the header block.
bool value_has_bare_line_break(std::string_view v) {
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '\0') return true;
    if (v[i] == '\r') {
      if (i + 1 >= v.size() || v[i + 1] != '\n') return true;
      continue;
    }
    if (v[i] == '\n') {
      if (i + 1 >= v.size() || (v[i + 1] != ' ' && v[i + 1] != '\t')) return true;
    }
  }
  return false;
}

// Headers a proxy or the HTTP client may add, change or drop in transit; signing them would make
// a valid request fail verification (same list as aws-c-auth's skip list).
bool skipped_header(std::string_view lower) {
  static constexpr std::string_view kSkip[] = {"authorization",    "user-agent", "x-amzn-trace-id",
                                               "expect",           "connection", "upgrade",
                                               "transfer-encoding"};
  return std::find(std::begin(kSkip), std::end(kSkip), lower) != std::end(kSkip);
}

struct Canonical {
  std::string headers;         // "name:value\n" lines
  std::string signed_headers;  // "a;b;c"
};

Canonical canonicalize_headers(const std::vector<HttpHeader>& headers) {
  // std::map sorts by lower-case name; values of repeated names keep their order.
  std::map<std::string, std::vector<std::string>> by_name;
  for (const auto& h : headers) {
    std::string lower = to_lower(h.name);
    if (skipped_header(lower)) continue;
    by_name[std::move(lower)].push_back(canonical_header_value(h.value));
  }
  Canonical out;
  for (const auto& [name, values] : by_name) {
    out.headers += name;
    out.headers += ':';
    for (size_t i = 0; i < values.size(); ++i) {
      if (i) out.headers += ',';
      out.headers += values[i];
    }
    out.headers += '\n';
    if (!out.signed_headers.empty()) out.signed_headers += ';';
    out.signed_headers += name;
  }
  return out;
}

struct QueryParam {
  std::string name;
  std::string value;
};

std::vector<QueryParam> split_query(std::string_view query) {
  std::vector<QueryParam> out;
  size_t pos = 0;
  while (pos <= query.size() && !query.empty()) {
    size_t amp = query.find('&', pos);
    if (amp == std::string_view::npos) amp = query.size();
    std::string_view part = query.substr(pos, amp - pos);
    if (!part.empty()) {
      const size_t eq = part.find('=');
      if (eq == std::string_view::npos) {
        out.push_back({uri_encode(uri_decode(part), false), ""});
      } else {
        out.push_back({uri_encode(uri_decode(part.substr(0, eq)), false),
                       uri_encode(uri_decode(part.substr(eq + 1)), false)});
      }
    }
    pos = amp + 1;
    if (amp == query.size()) break;
  }
  return out;
}

std::string join_sorted(std::vector<QueryParam> params) {
  std::sort(params.begin(), params.end(), [](const QueryParam& a, const QueryParam& b) {
    return a.name != b.name ? a.name < b.name : a.value < b.value;
  });
  std::string out;
  for (const auto& p : params) {
    if (!out.empty()) out += '&';
    out += p.name;
    out += '=';
    out += p.value;
  }
  return out;
}

Status validate(const SignableRequest& request, const Credentials& credentials,
                const SigningConfig& config) {
  if (credentials.access_key_id.empty()) return Error::invalid("sigv4: empty access key id");
  if (credentials.secret_access_key.empty()) {
    return Error::invalid("sigv4: empty secret access key");
  }
  if (config.region.empty()) return Error::invalid("sigv4: empty region");
  if (config.service.empty()) return Error::invalid("sigv4: empty service name");
  if (request.method.empty()) return Error::invalid("sigv4: empty HTTP method");
  for (unsigned char c : request.method) {
    if (!is_token_char(c)) return Error::invalid("sigv4: HTTP method is not a token");
  }
  bool has_host = false;
  for (const auto& h : request.headers) {
    if (h.name.empty()) return Error::invalid("sigv4: empty header name");
    for (unsigned char c : h.name) {
      if (!is_token_char(c)) {
        return Error::invalid(
            fmt::format("sigv4: header name '{}' has a character not allowed in HTTP", h.name));
      }
    }
    if (value_has_bare_line_break(h.value)) {
      return Error::invalid(
          fmt::format("sigv4: value of header '{}' has a line break or NUL", h.name));
    }
    const std::string lower = to_lower(h.name);
    if (lower == "host") has_host = true;
    if (lower == "authorization" || lower == "x-amz-date" || lower == "x-amz-security-token") {
      return Error::invalid(fmt::format("sigv4: request already has a {} header", h.name));
    }
  }
  if (!has_host) return Error::invalid("sigv4: request has no Host header");
  return {};
}

std::string build_canonical_request(const SignableRequest& request, std::string_view query,
                                    const Canonical& headers, bool normalize,
                                    std::string_view payload_hash) {
  std::string out;
  out += request.method;
  out += '\n';
  out += canonical_uri(request.path, normalize);
  out += '\n';
  out += query;
  out += '\n';
  out += headers.headers;
  out += '\n';
  out += headers.signed_headers;
  out += '\n';
  out += payload_hash;
  return out;
}

std::string build_string_to_sign(std::string_view amz_date, std::string_view scope,
                                 std::string_view canonical_request) {
  return fmt::format("{}\n{}\n{}\n{}", kSigV4Algorithm, amz_date, scope,
                     sha256_hex(canonical_request));
}

}  // namespace

std::string format_amz_date(std::chrono::system_clock::time_point time) {
  const std::time_t t = std::chrono::system_clock::to_time_t(time);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:04}{:02}{:02}T{:02}{:02}{:02}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

std::string uri_encode(std::string_view text, bool keep_slash) {
  std::string out;
  out.reserve(text.size() * 3);
  for (unsigned char c : text) {
    if (is_unreserved(c) || (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    }
  }
  return out;
}

std::string uri_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 &&
        hex_value(text[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2]));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

std::string canonical_uri(std::string_view path, bool normalize) {
  if (path.empty()) return "/";
  if (!normalize) return uri_encode(path, true);
  // Remove empty and "." segments, let ".." pop one; keep a trailing slash (aws-c-auth rules).
  std::vector<std::string_view> segments;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string_view::npos) slash = path.size();
    std::string_view seg = path.substr(pos, slash - pos);
    if (seg == "..") {
      if (!segments.empty()) segments.pop_back();
    } else if (!seg.empty() && seg != ".") {
      segments.push_back(seg);
    }
    pos = slash + 1;
  }
  const bool trailing_slash = path.back() == '/';
  std::string out = "/";
  for (size_t i = 0; i < segments.size(); ++i) {
    out += uri_encode(segments[i], false);
    if (i + 1 < segments.size() || trailing_slash) out += '/';
  }
  return out;
}

std::string canonical_query_string(std::string_view query) {
  return join_sorted(split_query(query));
}

std::string canonical_header_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  bool pending_space = false;
  for (char c : value) {
    if (is_ws(c)) {
      pending_space = !out.empty();
    } else {
      if (pending_space) out += ' ';
      pending_space = false;
      out += c;
    }
  }
  return out;
}

std::string sha256_hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr);
  return hex_encode(std::string_view(reinterpret_cast<const char*>(digest), len));
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest, &len);
  return std::string(reinterpret_cast<const char*>(digest), len);
}

std::string hex_encode(std::string_view bytes) {
  static constexpr std::string_view kLowerHex = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += kLowerHex[c >> 4];
    out += kLowerHex[c & 0xF];
  }
  return out;
}

std::string derive_signing_key(std::string_view secret_access_key, std::string_view date_stamp,
                               std::string_view region, std::string_view service) {
  std::string key = "AWS4";
  key += secret_access_key;
  std::string k_date = hmac_sha256(key, date_stamp);
  std::string k_region = hmac_sha256(k_date, region);
  std::string k_service = hmac_sha256(k_region, service);
  return hmac_sha256(k_service, "aws4_request");
}

std::string credential_scope(std::string_view date_stamp, std::string_view region,
                             std::string_view service) {
  return fmt::format("{}/{}/{}/aws4_request", date_stamp, region, service);
}

Result<SigningResult> sign_request(const SignableRequest& request, const Credentials& credentials,
                                   const SigningConfig& config) {
  if (auto st = validate(request, credentials, config); !st) return st.error();
  const std::string amz_date = format_amz_date(config.time);
  const std::string date_stamp = amz_date.substr(0, 8);
  const std::string scope = credential_scope(date_stamp, config.region, config.service);
  const std::string payload_hash = sha256_hex(request.body);

  SigningResult result;
  std::vector<HttpHeader> to_sign = request.headers;
  if (credentials.temporary()) {
    result.added_headers.push_back({"X-Amz-Security-Token", credentials.session_token});
    if (config.sign_session_token) to_sign.push_back(result.added_headers.back());
  }
  result.added_headers.push_back({"X-Amz-Date", amz_date});
  to_sign.push_back(result.added_headers.back());
  if (config.add_content_sha256_header) {
    result.added_headers.push_back({"x-amz-content-sha256", payload_hash});
    to_sign.push_back(result.added_headers.back());
  }

  const Canonical canonical = canonicalize_headers(to_sign);
  result.signed_headers = canonical.signed_headers;
  result.canonical_request =
      build_canonical_request(request, canonical_query_string(request.query), canonical,
                              config.normalize_path, payload_hash);
  result.string_to_sign = build_string_to_sign(amz_date, scope, result.canonical_request);
  const std::string key =
      derive_signing_key(credentials.secret_access_key, date_stamp, config.region, config.service);
  result.signature = hex_encode(hmac_sha256(key, result.string_to_sign));
  result.authorization =
      fmt::format("{} Credential={}/{}, SignedHeaders={}, Signature={}", kSigV4Algorithm,
                  credentials.access_key_id, scope, result.signed_headers, result.signature);
  result.added_headers.push_back({"Authorization", result.authorization});
  return result;
}

Result<SigningResult> presign_request(const SignableRequest& request,
                                      const Credentials& credentials, const SigningConfig& config) {
  if (auto st = validate(request, credentials, config); !st) return st.error();
  if (config.presign_expires.count() <= 0) {
    return Error::invalid("sigv4: presign expiry must be positive");
  }
  const std::string amz_date = format_amz_date(config.time);
  const std::string date_stamp = amz_date.substr(0, 8);
  const std::string scope = credential_scope(date_stamp, config.region, config.service);
  const std::string payload_hash = sha256_hex(request.body);

  SigningResult result;
  const Canonical canonical = canonicalize_headers(request.headers);
  result.signed_headers = canonical.signed_headers;

  // Appended in this order on the wire; sorted only inside the canonical request.
  std::vector<QueryParam> added = {
      {"X-Amz-Algorithm", std::string(kSigV4Algorithm)},
      {"X-Amz-Credential", uri_encode(credentials.access_key_id + "/" + scope, false)},
      {"X-Amz-Date", amz_date},
      {"X-Amz-SignedHeaders", uri_encode(result.signed_headers, false)},
      {"X-Amz-Expires", std::to_string(config.presign_expires.count())},
  };
  std::vector<QueryParam> signed_params = split_query(request.query);
  signed_params.insert(signed_params.end(), added.begin(), added.end());
  if (credentials.temporary()) {
    QueryParam token{"X-Amz-Security-Token", uri_encode(credentials.session_token, false)};
    if (config.sign_session_token) signed_params.push_back(token);
    added.push_back(token);
  }

  result.canonical_request = build_canonical_request(request, join_sorted(signed_params), canonical,
                                                     config.normalize_path, payload_hash);
  result.string_to_sign = build_string_to_sign(amz_date, scope, result.canonical_request);
  const std::string key =
      derive_signing_key(credentials.secret_access_key, date_stamp, config.region, config.service);
  result.signature = hex_encode(hmac_sha256(key, result.string_to_sign));
  added.push_back({"X-Amz-Signature", result.signature});
  for (const auto& p : added) {
    if (!result.added_query.empty()) result.added_query += '&';
    result.added_query += p.name + "=" + p.value;
  }
  return result;
}

}  // namespace ep::aws
