#pragma once
// Host names, host:port and URLs: the one parser every part uses for addresses it is given.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"

namespace ep::os {

struct HostPort {
  std::string host;                   // without brackets
  std::optional<std::uint16_t> port;  // absent when the text had none
  bool bracketed = false;             // written as [v6] or [v6]:port
};

// "host", "host:port", "[v6]", "[v6]:port", or an unbracketed IPv6 literal (two or more colons:
// all host, no port). kInvalid naming the text: '[' without ']', junk after ']', an empty host,
// an empty or non-numeric port, a port outside 1..65535.
Result<HostPort> split_host_port(std::string_view text);

struct Url {
  std::string scheme;    // lower-cased: "http", "https", ...
  std::string userinfo;  // "user:password" when the URL carried one (callers refuse it)
  HostPort authority;
  std::string path;  // from the first '/' after the authority (query included), may be empty
};

// scheme://[userinfo@]host[:port][/path]. kInvalid (the message never repeats a userinfo):
// no "://", an empty scheme or host, a bad host:port.
Result<Url> split_url(std::string_view url);

// localhost (and *.localhost), 127.0.0.0/8, ::1 (bracketed or not), ::ffff:127.x.y.z.
bool is_loopback_host(std::string_view host);

}  // namespace ep::os
