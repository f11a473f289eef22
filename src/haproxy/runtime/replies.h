#pragma once
// Acceptance rules for HAProxy 2.6 runtime replies (haproxy-runtime.md 3). Pure functions over
// the reply text as AdminSocket returns it (trailing newlines stripped). Anything not listed as
// accepted is a failure whose message is HAProxy's exact text.

#include <string_view>

namespace ep::haproxy::reply {

// `set server … addr`: "IP changed from …", "port changed from …", "no need to change …",
// or "nothing changed". Severity prefixes ("[4]: ") are tolerated.
bool addr_accepted(std::string_view reply);

// weight / state / health / enable health / enable agent / shutdown sessions: empty on success.
bool empty_accepted(std::string_view reply);

// `add server`: "New server registered."
bool add_accepted(std::string_view reply);

enum class DelOutcome { kDeleted, kHasConnections, kFailed };
// `del server`: "Server deleted." / "Server still has connections attached to it, cannot remove
// it." / anything else.
DelOutcome del_outcome(std::string_view reply);

// "Proxy is disabled.": the connection is attached to an old worker (after a reload); reconnect
// and retry once.
bool proxy_disabled(std::string_view reply);

// "Backend is using a static LB algorithm and only accepts weights '0%' and '100%'."
bool static_weight_refused(std::string_view reply);

// Replies meaning the named backend does not exist: "Can't find backend." (show servers state),
// "No such proxy." (show stat), "No such backend." (set server on an unknown backend).
bool backend_missing(std::string_view reply);

}  // namespace ep::haproxy::reply
