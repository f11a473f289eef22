#pragma once
// A parsed configuration tree with source positions, independent of the file format (YAML,
// EP2 INI). Each part reads its own options from it with MapReader, so an unknown key or a wrong
// type is reported as `file:line:col: message` wherever it is.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ep {

struct Mark {
  std::string file;
  int line = 0;             // 1-based; 0 = unknown
  int column = 0;           // 1-based
  std::string str() const;  // "file:line:col" (or just "file")
};

class ConfigNode {
 public:
  enum class Kind { kNull, kScalar, kSequence, kMap };

  Kind kind = Kind::kNull;
  Mark mark;
  std::string scalar;              // kScalar
  std::vector<ConfigNode> items;   // kSequence
  std::vector<std::string> keys;   // kMap, in file order
  std::vector<Mark> key_marks;     // kMap, parallel to keys
  std::vector<ConfigNode> values;  // kMap, parallel to keys

  static ConfigNode make_scalar(std::string value, Mark mark = {});
  static ConfigNode make_map(Mark mark = {});
  static ConfigNode make_sequence(Mark mark = {});
  void add(std::string key, ConfigNode value, Mark key_mark = {});  // kMap
  const ConfigNode* find(std::string_view key) const;               // kMap, else nullptr
  const char* kind_name() const;
};

// Collects errors as "file:line:col: message".
class Diagnostics {
 public:
  void error(const Mark& mark, std::string_view message);
  bool ok() const { return errors_.empty(); }
  const std::vector<std::string>& errors() const { return errors_; }
  std::string joined() const;  // one per line

 private:
  std::vector<std::string> errors_;
};

// Parses "250ms", "2s", "1m", "1h", "1.5s"; a bare number means seconds.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

// Reads a kMap node. Every getter marks its key as known; finish() reports the others as
// unknown keys. Getters leave `out` untouched when the key is absent and return false when
// the key is present but invalid (the error is recorded in Diagnostics).
class MapReader {
 public:
  MapReader(const ConfigNode& node, Diagnostics& diag, std::string_view what);

  bool valid() const { return valid_; }  // node was a map (or null = empty map)
  const ConfigNode* get(std::string_view key);
  bool has(std::string_view key) const;

  bool string(std::string_view key, std::string& out, bool required = false);
  bool integer(std::string_view key, long& out, long min, long max, bool required = false);
  bool number(std::string_view key, double& out, double min, double max);
  bool boolean(std::string_view key, bool& out);
  // A duration >= 0 ("500ms", "2s", "1m"); a negative one is an error naming the key.
  bool duration(std::string_view key, std::chrono::milliseconds& out);
  // An interval or timeout: a duration > 0. Zero would mean a hot loop (an interval) or a request
  // that can never finish (a timeout), so it is an error at the key's position.
  bool positive_duration(std::string_view key, std::chrono::milliseconds& out);
  // A size in bytes: a whole number, optionally with B, KiB, MiB, GiB (or KB, MB, GB: powers of
  // 1000); between `min` and `max`.
  bool byte_size(std::string_view key, std::size_t& out, std::size_t min, std::size_t max);
  // A scalar or a sequence of scalars; a scalar with commas is NOT split.
  bool string_list(std::string_view key, std::vector<std::string>& out, bool required = false);
  bool one_of(std::string_view key, std::string& out,
              std::initializer_list<std::string_view> allowed);

  // Several spellings of one option (e.g. `region` and EP2's `region_name`): giving more than one
  // is an error at the second one's position naming both, never "the later one wins". Returns
  // false when more than one is present.
  bool one_spelling(std::initializer_list<std::string_view> spellings);

  // Reports unknown keys; returns true when no error was recorded by this reader.
  bool finish();

  const ConfigNode& node() const { return node_; }
  Diagnostics& diag() { return diag_; }

 private:
  const ConfigNode& node_;
  Diagnostics& diag_;
  std::string what_;
  std::vector<bool> used_;
  bool valid_ = true;
  size_t errors_at_start_;
};

}  // namespace ep
