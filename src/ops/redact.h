#pragma once
// Secret redaction for everything ElasticProxy prints: log lines (both formats) and the /status
// document. Two layers:
//  - a registry of known secret values (tokens, passwords, keys read from the configuration or
//    from a credentials provider): every occurrence is replaced by "***";
//  - patterns for secrets that were never registered: AWS access key ids (AKIA…/ASIA…), the
//    value after secret-looking keys (`token=`, `password: `, `X-Consul-Token: `,
//    `"secret_access_key": "…"`, `Authorization: Bearer …`) and `user:password@` in URLs.
// Thread-safe. The registry is process-wide: register a secret as soon as it is known.

#include <string>
#include <string_view>
#include <vector>

namespace ep {
class ConfigNode;
}

namespace ep::ops {

inline constexpr std::string_view kRedacted = "***";

// Registers a secret value. Values shorter than 4 characters are ignored (masking "a" or "1"
// everywhere would destroy the logs and protect nothing).
void register_secret(std::string_view value);
// Forgets every registered secret (tests; config reload re-registers).
void clear_secrets();

// Registers the value of every scalar in `node` (recursively) whose key looks like a secret:
// token, password, passwd, secret, secret_access_key, session_token, api_key, credentials, ...
void register_secrets_in(const ConfigNode& node);

// True for key names that hold secrets (case-insensitive; `-`/`_` ignored).
bool is_secret_key(std::string_view key);

// `text` with every registered secret and every secret-looking pattern replaced by "***".
std::string redact(std::string_view text);

}  // namespace ep::ops
