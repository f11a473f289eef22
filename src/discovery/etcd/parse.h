#pragma once
// Pure parsers and encoders for etcd v3's HTTP/JSON gateway (proto3 JSON mapping: bytes are
// base64, int64 are strings or numbers, default values are omitted) and for the values stored
// under a watched prefix. No I/O.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/model.h"
#include "core/result.h"
#include "os/base64.h"

namespace ep::discovery::etcd {

using os::base64_decode;  // os/base64.h
using os::base64_encode;

// range_end for "every key starting with prefix": the prefix without trailing 0xff bytes, last
// byte + 1 ("foo" → "fop"); "\0" (all keys) when the prefix is empty or all 0xff.
std::string prefix_range_end(std::string_view prefix);

struct KeyValue {
  std::string key;    // decoded
  std::string value;  // decoded
  std::int64_t mod_revision = 0;
  std::int64_t lease = 0;
};

struct RangeReply {
  std::int64_t revision = 0;  // header.revision
  std::vector<KeyValue> kvs;
  bool more = false;
  std::int64_t count = 0;
};

// A /v3/kv/range response body. An `{"error":...}` body or a body that is not a Range reply
// is an error; absent `kvs` is an empty list. Errors from the server keep their message (see
// is_auth_error()).
Result<RangeReply> parse_range_reply(std::string_view body);

// The token of a /v3/auth/authenticate response.
Result<std::string> parse_auth_reply(std::string_view body);

struct WatchEvent {
  bool is_delete = false;  // "type":"DELETE"; a PUT has no type
  KeyValue kv;
};

// One message of the watch stream (`{"result":{...}}`).
struct WatchMessage {
  std::int64_t revision = 0;  // header.revision (0 when absent)
  std::string watch_id;
  bool created = false;
  bool canceled = false;
  std::int64_t compact_revision = 0;
  std::string cancel_reason;
  bool fragment = false;
  std::vector<WatchEvent> events;
  // Neither created, canceled nor events: a progress notification.
  bool is_progress() const { return !created && !canceled && events.empty(); }
};

// Parses one stream message. `{"error":{...}}` (or any message without "result") is an error
// carrying the server's message.
Result<WatchMessage> parse_watch_message(std::string_view json);

// Splits a byte stream into top-level JSON objects ({...}), whatever the chunking and whatever
// separates them (the gateway writes a newline after each). Strings and escapes are honoured.
class JsonObjectSplitter {
 public:
  // Appends bytes; returns the complete objects now available, in order. Bytes outside objects
  // (whitespace) are skipped; anything else outside an object sets error() (the objects complete
  // before it are still returned) and every later call returns nothing.
  std::vector<std::string> feed(std::string_view bytes);
  const std::optional<Error>& error() const { return error_; }
  std::size_t buffered() const { return buffer_.size(); }

 private:
  std::string buffer_;
  std::size_t scan_ = 0;  // next byte of buffer_ to examine
  int depth_ = 0;
  bool in_string_ = false;
  bool escape_ = false;
  std::optional<Error> error_;
};

// True when an error message (or body) says the auth token is invalid or expired, so the source
// re-authenticates once and retries.
bool is_auth_error(std::string_view message);

// What a value under the prefix means.
struct ValueResult {
  bool remove = false;  // gRPC naming Op:1 (delete)
  Endpoint endpoint;    // valid when !remove
};

// Decodes one key's value. Accepted shapes (see docs/etcd.md):
//  1. gRPC naming: {"Op":0,"Addr":"10.0.0.5:8080","Metadata":{...}}; Op absent = 0 (add), 1 =
//     delete; Metadata may be any JSON; when an object, its optional "weight" (0..256, number or
//     numeric string) and "backup" (bool or "true"/"false") are used.
//  2. An object {"address":"10.0.0.5","port":8080,"weight":10,"backup":false} (port, weight and
//     backup optional; "host" is accepted for "address").
//  3. Plain text: "10.0.0.5:8080", "[2001:db8::7]:8080" or a bare address (port from the
//     backend's `port`). Surrounding whitespace is ignored.
// `id` becomes Endpoint::id (the key below the prefix). Errors name the key and the problem.
// Addresses are not validated here (the guard does).
Result<ValueResult> parse_value(std::string_view key, std::string_view value, std::string id);

// "host:port" / "[v6]:port" / "[v6]" / "host" → address + port (0 when absent). Errors for a
// port that is not 1..65535 or an unterminated bracket.
Result<Endpoint> split_host_port(std::string_view text);

}  // namespace ep::discovery::etcd
