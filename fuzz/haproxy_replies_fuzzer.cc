// HAProxy command replies and CLI line framing: the reply classifiers, count_commands, and the
// command builders' escaping. Invariants: a classifier never accepts an error and a success at
// once; an escaped value never contains an unescaped `;`, space, tab or a newline, so a built
// command is always exactly the commands it was meant to be.
#include <string>

#include "fuzz/fuzz_support.h"
#include "haproxy/runtime/admin_socket.h"
#include "haproxy/runtime/commands.h"
#include "haproxy/runtime/replies.h"

namespace reply = ep::haproxy::reply;
namespace cmd = ep::haproxy::cmd;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto text = ep::fuzz::as_text(data, size);
  (void)reply::addr_accepted(text);
  (void)reply::empty_accepted(text);
  (void)reply::add_accepted(text);
  (void)reply::del_outcome(text);
  (void)reply::proxy_disabled(text);
  (void)reply::static_weight_refused(text);
  (void)reply::backend_missing(text);
  EP_FUZZ_CHECK(!(reply::add_accepted(text) && reply::backend_missing(text)));

  EP_FUZZ_CHECK(ep::haproxy::count_commands(text) >= 1);
  if (auto escaped = cmd::escape(text, "fuzz value")) {
    EP_FUZZ_CHECK(ep::haproxy::count_commands(*escaped) == 1);
    EP_FUZZ_CHECK(escaped->find_first_of(std::string_view("\r\n\0", 3)) == std::string::npos);
  }
  // Names: the commands built from them are one line and one command (two for warm_line).
  if (auto line = cmd::del_server(text, "srv1")) {
    EP_FUZZ_CHECK(ep::haproxy::count_commands(*line) == 1);
  }
  if (auto line = cmd::warm_line("be", text, true)) {
    EP_FUZZ_CHECK(ep::haproxy::count_commands(*line) == 2);
  }
  if (auto line = cmd::set_addr("be", "srv", text, 80)) {
    EP_FUZZ_CHECK(ep::haproxy::count_commands(*line) == 1);
  }
  if (auto line = cmd::add_server("be", "srv", "10.0.0.1", 80, 1, false, text)) {
    EP_FUZZ_CHECK(ep::haproxy::count_commands(*line) == 1);
    EP_FUZZ_CHECK(line->find_first_of(std::string_view("\r\n\0", 3)) == std::string::npos);
  }
  if (auto words = cmd::split_options(text)) {
    for (const auto& word : *words) EP_FUZZ_CHECK(ep::haproxy::count_commands(word) == 1);
  }
  return 0;
}
