#pragma once
// The process-wide registry of secret values: every token, password and key the daemon reads,
// registered the moment it is read (from the config, the environment, a file, IMDS, STS...), so
// that everything printed (logs, /status, /metrics, `elasticproxy status`) masks it. Any part
// may register; ops/redact masks. Thread-safe.

#include <string>
#include <string_view>

namespace ep::secrets {

// Values shorter than 4 characters are ignored (masking "a" everywhere protects nothing).
void add(std::string_view value);
// Forgets every value (tests; a config reload re-registers).
void clear();
// Replaces every registered value in `text` by "***" (longest first).
void mask(std::string& text);

}  // namespace ep::secrets
