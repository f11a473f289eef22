#include "haproxy/runtime/commands.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>

namespace ep::haproxy::cmd {

namespace {

std::string printable(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\0') {
      out += "\\0";
    } else {
      out += c;
    }
  }
  return out;
}

Result<std::string> server_ref(std::string_view backend, std::string_view server) {
  // A '/' cannot be escaped: HAProxy splits <backend>/<server> at the first one.
  if (backend.find('/') != std::string_view::npos) {
    return Error::invalid(fmt::format("backend name '{}' contains '/'", printable(backend)));
  }
  if (server.find('/') != std::string_view::npos) {
    return Error::invalid(fmt::format("server name '{}' contains '/'", printable(server)));
  }
  auto b = escape(backend, "backend name");
  if (!b) return b.error();
  auto s = escape(server, "server name");
  if (!s) return s.error();
  return *b + "/" + *s;
}

// Canonical text of an IP literal, or an error. Hostnames are refused (HAProxy would keep them
// unresolved; reference 3.2).
Result<std::string> ip_literal(std::string_view address, bool* is_v6) {
  std::string a(address);
  if (a.size() > 2 && a.front() == '[' && a.back() == ']') a = a.substr(1, a.size() - 2);
  in_addr v4{};
  in6_addr v6{};
  char buf[INET6_ADDRSTRLEN];
  if (::inet_pton(AF_INET, a.c_str(), &v4) == 1) {
    *is_v6 = false;
    ::inet_ntop(AF_INET, &v4, buf, sizeof(buf));
    return std::string(buf);
  }
  if (::inet_pton(AF_INET6, a.c_str(), &v6) == 1) {
    *is_v6 = true;
    ::inet_ntop(AF_INET6, &v6, buf, sizeof(buf));
    return std::string(buf);
  }
  return Error::invalid(
      fmt::format("address '{}' is not an IPv4 or IPv6 literal", printable(address)));
}

Status check_port(int port) {
  if (port < 1 || port > 65535) {
    return Error::invalid(fmt::format("port {} is outside 1-65535", port));
  }
  return {};
}

Status check_weight(int weight) {
  if (weight < 0 || weight > 256) {
    return Error::invalid(fmt::format("weight {} is outside 0-256", weight));
  }
  return {};
}

Result<std::string> on_server(std::string_view verb, std::string_view backend,
                              std::string_view server, std::string_view tail) {
  auto ref = server_ref(backend, server);
  if (!ref) return ref.error();
  if (tail.empty()) return fmt::format("{} {}", verb, *ref);
  return fmt::format("{} {} {}", verb, *ref, tail);
}

}  // namespace

Result<std::string> escape(std::string_view value, std::string_view what) {
  if (value.empty()) return Error::invalid(fmt::format("{} is empty", what));
  std::string out;
  out.reserve(value.size() + 4);
  for (char c : value) {
    if (c == '\r' || c == '\n' || c == '\0') {
      return Error::invalid(fmt::format("{} '{}' contains CR, LF or NUL", what, printable(value)));
    }
    if (c == ';' || c == '\\' || c == ' ' || c == '\t') out += '\\';
    out += c;
  }
  return out;
}

Result<std::vector<std::string>> split_options(std::string_view options) {
  std::vector<std::string> words;
  std::size_t i = 0;
  while (i < options.size()) {
    while (i < options.size() && (options[i] == ' ' || options[i] == '\t')) ++i;
    std::size_t start = i;
    while (i < options.size() && options[i] != ' ' && options[i] != '\t') ++i;
    if (i > start) {
      auto w = escape(options.substr(start, i - start), "server option");
      if (!w) {
        return Error::invalid(
            fmt::format("server_options '{}': {}", printable(options), w.error().message));
      }
      words.push_back(std::move(*w));
    }
  }
  return words;
}

Result<std::string> set_addr(std::string_view backend, std::string_view server,
                             std::string_view address, int port) {
  bool v6 = false;
  auto ip = ip_literal(address, &v6);
  if (!ip) return ip.error();
  if (auto st = check_port(port); !st) return st.error();
  return on_server("set server", backend, server, fmt::format("addr {} port {}", *ip, port));
}

Result<std::string> set_weight(std::string_view backend, std::string_view server, int weight) {
  if (auto st = check_weight(weight); !st) return st.error();
  return on_server("set server", backend, server, fmt::format("weight {}", weight));
}

Result<std::string> set_weight_percent(std::string_view backend, std::string_view server,
                                       int percent) {
  if (percent != 0 && percent != 100) {
    return Error::invalid(fmt::format("weight percentage {} is not 0 or 100", percent));
  }
  return on_server("set server", backend, server, fmt::format("weight {}%", percent));
}

Result<std::string> set_state(std::string_view backend, std::string_view server, State state) {
  const char* s = state == State::kReady ? "ready" : state == State::kDrain ? "drain" : "maint";
  return on_server("set server", backend, server, fmt::format("state {}", s));
}

Result<std::string> set_health(std::string_view backend, std::string_view server, Health health) {
  return on_server("set server", backend, server,
                   health == Health::kUp ? "health up" : "health down");
}

Result<std::string> warm_line(std::string_view backend, std::string_view server, bool checks) {
  if (!checks) return set_state(backend, server, State::kReady);
  auto drain = set_state(backend, server, State::kDrain);
  if (!drain) return drain;
  auto down = set_health(backend, server, Health::kDown);
  if (!down) return down.error();
  return *drain + ";" + *down;
}

Result<std::string> add_server(std::string_view backend, std::string_view server,
                               std::string_view address, int port, int weight, bool backup,
                               std::string_view server_options) {
  bool v6 = false;
  auto ip = ip_literal(address, &v6);
  if (!ip) return ip.error();
  if (auto st = check_port(port); !st) return st.error();
  if (auto st = check_weight(weight); !st) return st.error();
  auto words = split_options(server_options);
  if (!words) return words.error();
  std::string tail = v6 ? fmt::format("[{}]:{} weight {}", *ip, port, weight)
                        : fmt::format("{}:{} weight {}", *ip, port, weight);
  // "add server B/S addr:port weight W" is 6 words.
  std::size_t count = 6 + (backup ? 1 : 0) + words->size();
  if (count > kMaxWords) {
    return Error::invalid(fmt::format(
        "add server {}/{}: {} words exceed HAProxy's limit of {} per command (server_options has "
        "{} words)",
        printable(backend), printable(server), count, kMaxWords, words->size()));
  }
  if (backup) tail += " backup";
  for (const auto& w : *words) {
    tail += ' ';
    tail += w;
  }
  // HAProxy 2.6 gives a server added at runtime no idle-connection pool (purge delay 0): every
  // request opens a new backend connection (measured: 2.5x less throughput than a config
  // server). Give it what a config server has, unless server_options says otherwise (or there is
  // no room left under the word limit).
  auto has = [&](std::string_view k) {
    return std::find(words->begin(), words->end(), k) != words->end();
  };
  if (!has("pool-purge-delay") && count + 2 <= kMaxWords) {
    tail += " pool-purge-delay 5s";
    count += 2;
  }
  if (!has("pool-max-conn") && count + 2 <= kMaxWords) tail += " pool-max-conn -1";
  return on_server("add server", backend, server, tail);
}

Result<std::string> del_server(std::string_view backend, std::string_view server) {
  return on_server("del server", backend, server, "");
}

Result<std::string> enable_health(std::string_view backend, std::string_view server) {
  return on_server("enable health", backend, server, "");
}

Result<std::string> enable_agent(std::string_view backend, std::string_view server) {
  return on_server("enable agent", backend, server, "");
}

Result<std::string> shutdown_sessions(std::string_view backend, std::string_view server) {
  return on_server("shutdown sessions server", backend, server, "");
}

std::string show_info() { return "show info"; }

Result<std::string> show_servers_state(std::string_view backend) {
  auto b = escape(backend, "backend name");
  if (!b) return b.error();
  return "show servers state " + *b;
}

Result<std::string> show_stat(std::string_view backend) {
  auto b = escape(backend, "backend name");
  if (!b) return b.error();
  return "show stat " + *b + " -1 -1";
}

Result<std::string> show_stat_backend_row(std::string_view backend) {
  auto b = escape(backend, "backend name");
  if (!b) return b.error();
  return "show stat " + *b + " 2 -1";
}

std::string show_servers_state_all() { return "show servers state"; }

Result<std::string> show_stat_proxy(int proxy_id) {
  if (proxy_id <= 0) {
    return Error::invalid(fmt::format("proxy id {} is not a positive number", proxy_id));
  }
  return fmt::format("show stat {} 6 -1", proxy_id);
}

Result<std::string> show_stat_proxy_backend_row(int proxy_id) {
  if (proxy_id <= 0) {
    return Error::invalid(fmt::format("proxy id {} is not a positive number", proxy_id));
  }
  return fmt::format("show stat {} 2 -1", proxy_id);
}

std::string show_stat_backends() { return "show stat -1 6 -1"; }

std::string show_stat_backend_rows() { return "show stat -1 2 -1"; }

}  // namespace ep::haproxy::cmd
