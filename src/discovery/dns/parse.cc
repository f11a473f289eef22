#include "discovery/dns/parse.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>
#include <tuple>

namespace ep::discovery::dns {
namespace {

constexpr std::uint16_t kTypeA = 1;
constexpr std::uint16_t kTypeAaaa = 28;
constexpr std::uint16_t kTypeSrv = 33;
constexpr std::uint16_t kClassIn = 1;

class Reader {
 public:
  explicit Reader(std::string_view m) : m_(m) {}
  std::size_t pos() const { return pos_; }
  bool need(std::size_t n) const { return pos_ + n <= m_.size(); }
  Result<std::uint16_t> u16() {
    if (!need(2)) return err("truncated 16-bit field");
    const auto v = static_cast<std::uint16_t>((byte(pos_) << 8) | byte(pos_ + 1));
    pos_ += 2;
    return v;
  }
  Result<std::uint32_t> u32() {
    if (!need(4)) return err("truncated 32-bit field");
    const std::uint32_t v = (static_cast<std::uint32_t>(byte(pos_)) << 24) |
                            (static_cast<std::uint32_t>(byte(pos_ + 1)) << 16) |
                            (static_cast<std::uint32_t>(byte(pos_ + 2)) << 8) | byte(pos_ + 3);
    pos_ += 4;
    return v;
  }
  // A possibly compressed name starting at the cursor; the cursor moves past it.
  Result<std::string> name() {
    auto n = name_at(pos_, &pos_);
    return n;
  }
  Result<std::string> name_at(std::size_t at, std::size_t* end) const {
    std::string out;
    std::size_t p = at;
    bool jumped = false;
    int jumps = 0;
    for (;;) {
      if (p >= m_.size()) return err_at(p, "name runs past the end");
      const unsigned len = byte(p);
      if ((len & 0xc0) == 0xc0) {
        if (p + 1 >= m_.size()) return err_at(p, "truncated compression pointer");
        const std::size_t target = ((len & 0x3f) << 8) | byte(p + 1);
        if (!jumped && end != nullptr) *end = p + 2;
        jumped = true;
        if (++jumps > 64 || target >= p) return err_at(p, "bad compression pointer");
        p = target;
        continue;
      }
      if ((len & 0xc0) != 0) return err_at(p, "bad label type");
      if (len == 0) {
        if (!jumped && end != nullptr) *end = p + 1;
        break;
      }
      if (p + 1 + len > m_.size()) return err_at(p, "label runs past the end");
      if (!out.empty()) out += '.';
      for (unsigned i = 0; i < len; ++i)
        out += static_cast<char>(std::tolower(static_cast<unsigned char>(m_[p + 1 + i])));
      if (out.size() > 255) return err_at(p, "name longer than 255 bytes");
      p += 1 + len;
    }
    return out;
  }
  Status skip(std::size_t n) {
    if (!need(n)) return err("record data runs past the end");
    pos_ += n;
    return {};
  }
  void seek(std::size_t at) { pos_ = at; }  // callers checked `at` with need()
  std::string_view bytes(std::size_t at, std::size_t n) const { return m_.substr(at, n); }

 private:
  unsigned byte(std::size_t i) const { return static_cast<unsigned char>(m_[i]); }
  Error err(std::string_view what) const { return err_at(pos_, what); }
  Error err_at(std::size_t at, std::string_view what) const {
    return Error::invalid(fmt::format("malformed DNS reply at byte {}: {}", at, what));
  }
  std::string_view m_;
  std::size_t pos_ = 0;
};

}  // namespace

std::string normalize_name(std::string_view name) {
  std::string out;
  for (char c : name) out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  while (!out.empty() && out.back() == '.') out.pop_back();
  return out;
}

const char* to_string(Outcome outcome) {
  switch (outcome) {
    case Outcome::kData:
      return "data";
    case Outcome::kNoData:
      return "NODATA";
    case Outcome::kNxDomain:
      return "NXDOMAIN";
    case Outcome::kServFail:
      return "SERVFAIL";
    case Outcome::kRefused:
      return "REFUSED";
    case Outcome::kTimeout:
      return "timeout";
    case Outcome::kOther:
      return "error";
  }
  return "?";
}

Result<DnsReply> parse_reply(std::string_view message) {
  Reader r(message);
  DnsReply out;
  if (message.size() < 12) return Error::invalid("malformed DNS reply: shorter than a header");
  out.id = *r.u16();
  const std::uint16_t flags = *r.u16();
  if ((flags & 0x8000) == 0) return Error::invalid("malformed DNS reply: QR bit not set");
  out.truncated = (flags & 0x0200) != 0;
  out.rcode = flags & 0x000f;
  const std::uint16_t qd = *r.u16();
  const std::uint16_t an = *r.u16();
  const std::uint16_t ns = *r.u16();
  const std::uint16_t ar = *r.u16();
  out.answer_count = an;
  for (unsigned i = 0; i < qd; ++i) {
    if (auto n = r.name(); !n) return n.error();
    if (auto s = r.skip(4); !s) return s.error();
  }
  const unsigned total = an + ns + ar;
  for (unsigned i = 0; i < total; ++i) {
    const bool answer = i < an;
    const bool additional = i >= an + ns;
    auto owner = r.name();
    if (!owner) return owner.error();
    auto type = r.u16();
    if (!type) return type.error();
    auto klass = r.u16();
    if (!klass) return klass.error();
    auto ttl = r.u32();
    if (!ttl) return ttl.error();
    auto rdlen = r.u16();
    if (!rdlen) return rdlen.error();
    const std::size_t rdata = r.pos();
    if (!r.need(*rdlen))
      return Error::invalid(
          fmt::format("malformed DNS reply at byte {}: record data runs past the end", rdata));
    if (*klass == kClassIn && (answer || additional)) {
      if (*type == kTypeSrv && answer) {
        if (*rdlen < 7)
          return Error::invalid(fmt::format("malformed DNS reply at byte {}: short SRV", rdata));
        SrvRecord srv;
        srv.owner = *owner;
        srv.ttl = *ttl;
        srv.priority = *r.u16();
        srv.weight = *r.u16();
        srv.port = *r.u16();
        std::size_t end = 0;
        auto target = r.name_at(r.pos(), &end);
        if (!target) return target.error();
        if (end > rdata + *rdlen)
          return Error::invalid(
              fmt::format("malformed DNS reply at byte {}: SRV target past its record", rdata));
        srv.target = std::move(*target);
        out.srv.push_back(std::move(srv));
      } else if ((*type == kTypeA && *rdlen == 4) || (*type == kTypeAaaa && *rdlen == 16)) {
        char text[INET6_ADDRSTRLEN] = {0};
        const std::string_view raw = r.bytes(rdata, *rdlen);
        ::inet_ntop(*type == kTypeA ? AF_INET : AF_INET6, raw.data(), text, sizeof text);
        out.addresses.push_back({*owner, text, *ttl});
      } else if (*type == kTypeA || *type == kTypeAaaa) {
        return Error::invalid(fmt::format(
            "malformed DNS reply at byte {}: address record of length {}", rdata, *rdlen));
      }
    }
    r.seek(rdata + *rdlen);  // continue after this record whatever was read inside it
  }
  return out;
}

Mapped map_srv(const std::vector<SrvRecord>& records,
               const std::map<std::string, std::vector<AddressRecord>>& addresses,
               const MapOptions& options) {
  Mapped out;
  std::vector<const SrvRecord*> usable;
  for (const auto& rec : records) {
    if (rec.target.empty()) continue;  // "." = service decidedly not available at this record
    usable.push_back(&rec);
  }
  if (usable.empty()) return out;
  std::uint16_t lowest = 0xffff;
  unsigned max_weight = 0;
  for (const auto* rec : usable) lowest = std::min(lowest, rec->priority);
  for (const auto* rec : usable) {
    if (rec->priority == lowest || options.backup_other_priorities)
      max_weight = std::max<unsigned>(max_weight, rec->weight);
  }
  // Most preferred first, so duplicates keep the best record.
  std::stable_sort(usable.begin(), usable.end(), [](const SrvRecord* a, const SrvRecord* b) {
    return std::tie(a->priority, b->weight) < std::tie(b->priority, a->weight);
  });
  std::set<std::pair<std::string, std::uint16_t>> seen;
  std::set<std::string> unresolved;
  for (const auto* rec : usable) {
    const bool backup = rec->priority != lowest;
    if (backup && !options.backup_other_priorities) continue;
    auto it = addresses.find(rec->target);
    if (it == addresses.end() || it->second.empty()) {
      unresolved.insert(rec->target);
      continue;
    }
    out.min_ttl = std::min(out.min_ttl, rec->ttl);
    long weight = 1;
    if (max_weight > 0) {
      weight = std::lround(static_cast<double>(rec->weight) * 256.0 / max_weight);
      weight = std::clamp(weight, 1L, 256L);
    }
    for (const auto& addr : it->second) {
      if (!seen.insert({addr.address, rec->port}).second) continue;
      out.min_ttl = std::min(out.min_ttl, addr.ttl);
      Endpoint e;
      e.address = addr.address;
      e.port = rec->port;
      e.weight = weight;
      e.backup = backup;
      e.labels["srv_target"] = rec->target;
      e.labels["srv_priority"] = std::to_string(rec->priority);
      e.labels["srv_weight"] = std::to_string(rec->weight);
      out.endpoints.push_back(std::move(e));
    }
  }
  std::sort(out.endpoints.begin(), out.endpoints.end(), [](const Endpoint& a, const Endpoint& b) {
    return std::tie(a.backup, a.address, a.port) < std::tie(b.backup, b.address, b.port);
  });
  out.unresolved.assign(unresolved.begin(), unresolved.end());
  return out;
}

}  // namespace ep::discovery::dns
