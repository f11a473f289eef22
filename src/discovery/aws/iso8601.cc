#include "discovery/aws/iso8601.h"

#include <fmt/format.h>

#include <ctime>

namespace ep::aws {
namespace {

bool digits(std::string_view s, size_t pos, size_t n, int& out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  out = v;
  return true;
}

// Days since 1970-01-01 for a proleptic Gregorian date (H. Hinnant's algorithm); avoids timegm's
// dependence on the process time zone and on glibc extensions.
long long days_from_civil(int y, int m, int d) {
  y -= m <= 2;
  const int era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return static_cast<long long>(era) * 146097 + static_cast<long long>(doe) - 719468;
}

bool leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

}  // namespace

Result<SystemTime> parse_iso8601(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return Error::invalid(fmt::format("invalid timestamp '{}': {}", text.substr(0, 64), why));
  };
  int y, mo, d, h, mi, s;
  if (!digits(text, 0, 4, y) || text.size() < 19 || text[4] != '-' || !digits(text, 5, 2, mo) ||
      text[7] != '-' || !digits(text, 8, 2, d) || (text[10] != 'T' && text[10] != 't') ||
      !digits(text, 11, 2, h) || text[13] != ':' || !digits(text, 14, 2, mi) || text[16] != ':' ||
      !digits(text, 17, 2, s)) {
    return bad("expected YYYY-MM-DDTHH:MM:SS followed by a zone");
  }
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (mo < 1 || mo > 12) return bad("month out of range");
  const int mdays = kDays[mo - 1] + (mo == 2 && leap(y) ? 1 : 0);
  if (d < 1 || d > mdays) return bad("day out of range");
  if (h > 23 || mi > 59 || s > 60) return bad("time out of range");
  size_t pos = 19;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    const size_t start = pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') ++pos;
    if (pos == start) return bad("empty fraction");
  }
  long long offset = 0;
  if (pos < text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
    ++pos;
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    const int sign = text[pos] == '-' ? -1 : 1;
    int oh, om;
    if (!digits(text, pos + 1, 2, oh)) return bad("bad zone offset");
    size_t p = pos + 3;
    if (p < text.size() && text[p] == ':') ++p;
    if (!digits(text, p, 2, om) || oh > 23 || om > 59) return bad("bad zone offset");
    pos = p + 2;
    offset = sign * (oh * 3600LL + om * 60LL);
  } else {
    return bad("missing time zone (Z or +HH:MM)");
  }
  if (pos != text.size()) return bad("trailing characters");
  const long long secs = days_from_civil(y, mo, d) * 86400LL + h * 3600LL + mi * 60LL + s - offset;
  return SystemTime{std::chrono::seconds(secs)};
}

std::string format_iso8601(SystemTime time) {
  const std::time_t t = std::chrono::system_clock::to_time_t(time);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

}  // namespace ep::aws
