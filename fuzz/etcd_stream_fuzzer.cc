// etcd watch stream framing: JsonObjectSplitter fed the input whole and in chunks of 1, 7 and 64
// bytes. Invariants: chunking does not change the objects split out, nor whether an error
// occurs; every object is then parsed as a watch message.
#include <string>
#include <vector>

#include "discovery/etcd/parse.h"
#include "fuzz/fuzz_support.h"

namespace etcd = ep::discovery::etcd;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto stream = ep::fuzz::as_text(data, size);

  etcd::JsonObjectSplitter whole;
  std::vector<std::string> all = whole.feed(stream);
  for (const auto& object : all) {
    EP_FUZZ_CHECK(object.size() >= 2 && object.front() == '{');
    (void)etcd::parse_watch_message(object);
  }

  for (std::size_t step : {1, 7, 64}) {
    etcd::JsonObjectSplitter chunked;
    std::vector<std::string> pieces;
    for (std::size_t pos = 0; pos < stream.size() && !chunked.error(); pos += step) {
      auto out = chunked.feed(stream.substr(pos, step));
      pieces.insert(pieces.end(), out.begin(), out.end());
    }
    EP_FUZZ_CHECK(whole.error().has_value() == chunked.error().has_value());
    EP_FUZZ_CHECK(all == pieces);
    if (!whole.error()) EP_FUZZ_CHECK(whole.buffered() == chunked.buffered());
  }
  return 0;
}
