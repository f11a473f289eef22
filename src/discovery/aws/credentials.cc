#include "discovery/aws/credentials.h"

namespace ep::aws {

bool Credentials::expires_within(SystemTime now, std::chrono::seconds margin) const {
  return expiration.has_value() && *expiration <= now + margin;
}

std::string redacted(const Credentials& c) {
  const std::string& id = c.access_key_id;
  const std::string tail = id.size() > 4 ? id.substr(id.size() - 4) : std::string();
  return fmt::format("Credentials{{key_id=…{}, secret={}, token={}, expires={}, source={}}}", tail,
                     c.secret_access_key.empty() ? "<none>" : "<redacted>",
                     c.session_token.empty() ? "<none>" : "<redacted>",
                     c.expiration ? format_iso8601(*c.expiration) : "never",
                     c.source.empty() ? "?" : c.source);
}

std::ostream& operator<<(std::ostream& os, const Credentials& c) { return os << redacted(c); }

}  // namespace ep::aws
