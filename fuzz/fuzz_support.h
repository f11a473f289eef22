#pragma once
// Shared helpers for the libFuzzer targets: invariant checks that abort (a crash libFuzzer
// records with its input) and the guard/command round trip every parsed endpoint goes through.

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "core/model.h"

namespace ep::fuzz {

// Aborts with the failed condition and the location when `cond` is false.
void check(bool cond, const char* what, const char* file, int line);
#define EP_FUZZ_CHECK(cond) ::ep::fuzz::check((cond), #cond, __FILE__, __LINE__)

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Runs every endpoint through discovery::validate_endpoint with a few backend policies and checks
// what "nothing unchecked reaches HAProxy" promises for each accepted one: the address is an IP
// literal without space/newline/`;`, port 1..65535, weight 0..256, the name only
// [A-Za-z0-9_.:-] and at most 100 + prefix characters, and the runtime commands built from it
// (add server / set addr / del server) are single lines. validate_all must not crash either.
void check_endpoints(const std::vector<Endpoint>& endpoints);

}  // namespace ep::fuzz
