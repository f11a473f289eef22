#include "ops/redact.h"

#include <algorithm>
#include <cctype>

#include "core/config_node.h"
#include "core/secrets.h"

namespace ep::ops {
namespace {

std::string normalized_key(std::string_view key) {
  std::string out;
  for (char c : key) {
    if (c == '-' || c == '_' || c == ' ' || c == '.') continue;
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

bool is_key_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
}

// Characters that end an unquoted secret value.
bool ends_value(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '&' || c == ',' || c == ';' ||
         c == '"' || c == '\'' || c == '}' || c == ')' || c == ']';
}

// AKIA/ASIA/AGPA/AIDA/AROA… + 16 upper-case alphanumerics: AWS key ids.
void mask_aws_key_ids(std::string& s) {
  static const char* kPrefixes[] = {"AKIA", "ASIA", "AGPA", "AIDA", "AROA", "ANPA", "AIPA"};
  for (size_t i = 0; i + 20 <= s.size(); ++i) {
    bool prefix = false;
    for (const char* p : kPrefixes) prefix = prefix || s.compare(i, 4, p) == 0;
    if (!prefix || (i > 0 && std::isalnum(static_cast<unsigned char>(s[i - 1])))) continue;
    size_t j = i + 4;
    while (j < s.size() && (std::isupper(static_cast<unsigned char>(s[j])) ||
                            std::isdigit(static_cast<unsigned char>(s[j])))) {
      ++j;
    }
    if (j - i == 20) {
      s.replace(i, 20, kRedacted);
      i += kRedacted.size() - 1;
    }
  }
}

// key=value, key: value, "key": "value", key value-after-Bearer: masks the value when the key
// looks like a secret.
void mask_key_values(std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    if (!is_key_char(s[i]) || (i > 0 && is_key_char(s[i - 1]))) {
      ++i;
      continue;
    }
    size_t k = i;
    while (k < s.size() && is_key_char(s[k])) ++k;
    const std::string_view key(s.data() + i, k - i);
    if (!is_secret_key(key)) {
      i = k;
      continue;
    }
    size_t v = k;
    if (v < s.size() && (s[v] == '"' || s[v] == '\'')) ++v;  // closing quote of a JSON key
    while (v < s.size() && s[v] == ' ') ++v;
    if (v >= s.size() || (s[v] != '=' && s[v] != ':')) {
      i = k;
      continue;
    }
    ++v;
    while (v < s.size() && s[v] == ' ') ++v;
    char quote = 0;
    if (v < s.size() && (s[v] == '"' || s[v] == '\'')) quote = s[v++];
    // "Authorization: Bearer xyz" / "Basic xyz": keep the scheme, mask the credential.
    for (std::string_view scheme : {"Bearer ", "Basic ", "bearer ", "basic "}) {
      if (s.compare(v, scheme.size(), scheme) == 0) v += scheme.size();
    }
    size_t e = v;
    if (quote != 0) {
      while (e < s.size() && s[e] != quote) e += (s[e] == '\\' && e + 1 < s.size()) ? 2 : 1;
      e = std::min(e, s.size());
    } else {
      while (e < s.size() && !ends_value(s[e])) ++e;
    }
    if (e > v && s.compare(v, e - v, kRedacted) != 0) {
      s.replace(v, e - v, kRedacted);
      e = v + kRedacted.size();
    }
    i = e;
  }
}

// scheme://user:password@host → scheme://user:***@host
void mask_url_userinfo(std::string& s) {
  size_t pos = 0;
  while ((pos = s.find("://", pos)) != std::string::npos) {
    size_t start = pos + 3;
    size_t end = start;
    // The password may hold , ; ) " and more: the userinfo ends at the authority's '@', before any
    // white space or '/'.
    while (end < s.size() && s[end] != ' ' && s[end] != '\t' && s[end] != '\n' && s[end] != '/' &&
           s[end] != '@') {
      ++end;
    }
    if (end < s.size() && s[end] == '@') {
      const size_t colon = s.find(':', start);
      if (colon != std::string::npos && colon < end && colon + 1 < end) {
        s.replace(colon + 1, end - colon - 1, kRedacted);
      }
    }
    pos = start;
  }
}

}  // namespace

void register_secret(std::string_view value) { secrets::add(value); }

void clear_secrets() { secrets::clear(); }

bool is_secret_key(std::string_view key) {
  const std::string k = normalized_key(key);
  static const char* kExact[] = {"token",
                                 "password",
                                 "passwd",
                                 "pass",
                                 "secret",
                                 "secretaccesskey",
                                 "awssecretaccesskey",
                                 "sessiontoken",
                                 "awssessiontoken",
                                 "securitytoken",
                                 "apikey",
                                 "accesstoken",
                                 "authorization",
                                 "xconsultoken",
                                 "xvaulttoken",
                                 "credentials",
                                 "privatekey",
                                 "clientsecret",
                                 "bearer",
                                 "aclToken"};
  for (const char* e : kExact) {
    if (k == normalized_key(e)) return true;
  }
  // Suffixes: consul_token, etcd_password, my_secret, …
  for (std::string_view suffix : {"token", "password", "passwd", "secret", "apikey"}) {
    if (k.size() > suffix.size() &&
        k.compare(k.size() - suffix.size(), suffix.size(), suffix) == 0) {
      return true;
    }
  }
  return false;
}

void register_secrets_in(const ConfigNode& node) {
  if (node.kind == ConfigNode::Kind::kMap) {
    for (size_t i = 0; i < node.keys.size(); ++i) {
      const ConfigNode& v = node.values[i];
      if (is_secret_key(node.keys[i]) && v.kind == ConfigNode::Kind::kScalar) {
        register_secret(v.scalar);
      } else {
        register_secrets_in(v);
      }
    }
  } else if (node.kind == ConfigNode::Kind::kSequence) {
    for (const auto& item : node.items) register_secrets_in(item);
  }
}

std::string redact(std::string_view text) {
  std::string s(text);
  secrets::mask(s);
  mask_aws_key_ids(s);
  mask_url_userinfo(s);
  mask_key_values(s);
  return s;
}

}  // namespace ep::ops
