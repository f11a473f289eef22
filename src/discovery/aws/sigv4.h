#pragma once
// AWS Signature Version 4 (aws.md §2), as pure functions over bytes: no clock, no network, no
// globals. Conformance: every case of the official aws-c-auth SigV4 suite (header and query
// signing) passes in tests/unit/aws/sigv4_suite_test.cc.
//
// Thread-safety: every function here is reentrant.

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "discovery/aws/credentials.h"

namespace ep::aws {

inline constexpr std::string_view kSigV4Algorithm = "AWS4-HMAC-SHA256";
// Hex SHA-256 of the empty string: the payload hash of a request without a body.
inline constexpr std::string_view kEmptyPayloadSha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

struct HttpHeader {
  std::string name;
  std::string value;

  bool operator==(const HttpHeader&) const = default;
};

// The parts of an HTTP request that SigV4 covers.
struct SignableRequest {
  std::string method = "GET";
  // Path as it goes on the wire ("/" for every API ElasticProxy calls). It is URI-encoded once
  // more while signing (AWS double-encodes the path for every service but S3), so a literal
  // space here becomes %20 in the canonical request.
  std::string path = "/";
  // Query string without the '?', e.g. "b=2&a=1". Names and values may be raw or
  // percent-encoded: they are decoded and re-encoded canonically.
  std::string query;
  // In sending order. Must contain Host. Values may use obs-fold continuation ("v1\r\n  v2");
  // any other CR or LF is rejected. Authorization, X-Amz-Date and X-Amz-Security-Token
  // must not be present yet (the signer adds them).
  std::vector<HttpHeader> headers;
  std::string body;
};

struct SigningConfig {
  std::string region;                          // "eu-west-1"
  std::string service;                         // SigV4 name: "autoscaling", "ec2", "sqs", "sts"
  std::chrono::system_clock::time_point time;  // request time (UTC); caller adds any skew offset
  // Remove "." / ".." segments and duplicate slashes. True for every service but S3.
  bool normalize_path = true;
  // Add and sign "x-amz-content-sha256" (S3 style; the suite's sign_body). Auto Scaling, EC2,
  // SQS and STS do not need it.
  bool add_content_sha256_header = false;
  // With session credentials: true signs X-Amz-Security-Token (what our services require);
  // false adds it after signing, unsigned (the suite's omit_session_token).
  bool sign_session_token = true;
  // Query (presigned URL) signing only: X-Amz-Expires.
  std::chrono::seconds presign_expires{3600};
};

struct SigningResult {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signature;       // lower-case hex
  std::string signed_headers;  // "host;x-amz-date"
  // Header signing: headers to append to the request, in this order (X-Amz-Security-Token,
  // X-Amz-Date, x-amz-content-sha256, Authorization; each only when it applies).
  std::vector<HttpHeader> added_headers;
  std::string authorization;  // the Authorization value (header signing only)
  // Query signing: parameters to append to the request's query string (after '&' if it
  // already has one), already encoded, ending with X-Amz-Signature.
  std::string added_query;
};

// Signs with an Authorization header. Errors (kInvalid) name the offending input: empty key id or
// secret, empty region/service, missing Host, a header name that is not an HTTP token, a bare
// CR/LF in a header value, a request that already carries Authorization, X-Amz-Date or
// X-Amz-Security-Token.
Result<SigningResult> sign_request(const SignableRequest& request, const Credentials& credentials,
                                   const SigningConfig& config);

// Signs into the query string (presigned URL: X-Amz-Algorithm, -Credential, -Date, -Expires,
// -SignedHeaders, [-Security-Token], -Signature). Same errors as sign_request.
Result<SigningResult> presign_request(const SignableRequest& request,
                                      const Credentials& credentials, const SigningConfig& config);

// ---- building blocks (exposed for tests and for callers that cache signing keys) ----

// "YYYYMMDDTHHMMSSZ" in UTC.
std::string format_amz_date(std::chrono::system_clock::time_point time);

// RFC 3986 encoding as SigV4 wants it: A-Z a-z 0-9 - _ . ~ kept, everything else %XX (upper-case
// hex) per UTF-8 byte; '/' kept only when keep_slash.
std::string uri_encode(std::string_view text, bool keep_slash);

// Percent-decoding; an invalid escape ("%zz", "%4") is kept literally.
std::string uri_decode(std::string_view text);

// Canonical URI: normalised (if asked) then encoded with '/' kept; empty path → "/".
std::string canonical_uri(std::string_view path, bool normalize);

// Canonical query string: each name and value decoded then encoded, sorted by name then value,
// "name=value" joined by '&' (a parameter without '=' gets an empty value).
std::string canonical_query_string(std::string_view query);

// Header value as it enters the canonical request: trimmed, inner whitespace runs (including
// obs-fold line breaks) collapsed to one space.
std::string canonical_header_value(std::string_view value);

std::string sha256_hex(std::string_view data);
std::string hmac_sha256(std::string_view key, std::string_view data);  // raw 32 bytes
std::string hex_encode(std::string_view bytes);                        // lower-case

// The signing key: HMAC chain "AWS4"+secret → date (YYYYMMDD) → region → service →
// "aws4_request". Raw 32 bytes; valid for one day/region/service, so callers may cache it.
std::string derive_signing_key(std::string_view secret_access_key, std::string_view date_stamp,
                               std::string_view region, std::string_view service);

// "<date>/<region>/<service>/aws4_request"
std::string credential_scope(std::string_view date_stamp, std::string_view region,
                             std::string_view service);

}  // namespace ep::aws
