#include "discovery/aws/profile.h"

#include <fmt/format.h>

#include "os/strings.h"

namespace ep::aws {
namespace {

using os::trim;

// A comment in a value starts at '#' or ';' preceded by whitespace (so "a#b" and URLs with
// fragments survive, as in the SDKs).
std::string_view strip_value_comment(std::string_view v) {
  for (size_t i = 1; i < v.size(); ++i) {
    if ((v[i] == '#' || v[i] == ';') && (v[i - 1] == ' ' || v[i - 1] == '\t')) {
      return trim(v.substr(0, i));
    }
  }
  return trim(v);
}

struct Section {
  enum Kind { kNone, kProfile, kServices, kIgnored } kind = kNone;
  std::string name;
};

}  // namespace

std::optional<std::string> Profile::get(std::string_view key) const {
  auto it = properties.find(std::string(key));
  if (it == properties.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string> Profile::get(std::string_view key, std::string_view sub_key) const {
  auto it = sub_properties.find(std::string(key));
  if (it == sub_properties.end()) return std::nullopt;
  auto jt = it->second.find(std::string(sub_key));
  if (jt == it->second.end()) return std::nullopt;
  return jt->second;
}

Result<ProfileFile> parse_profile_file(std::string_view text, ProfileFileKind kind,
                                       std::string_view file_name) {
  ProfileFile out;
  Section section;
  // `[profile default]` wins over `[default]` in the config file; remember which one we saw.
  bool explicit_profile_default = false;
  Profile* current = nullptr;
  std::string last_key;         // property that indented lines continue
  bool last_key_empty = false;  // its value was empty → indented lines are sub-properties
  size_t line_no = 0;
  size_t pos = 0;
  auto fail = [&](std::string_view what) {
    return Error::invalid(fmt::format("{}:{}: {}", file_name, line_no, what));
  };
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view raw = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    if (!raw.empty() && raw.back() == '\r') raw.remove_suffix(1);
    const std::string_view line = trim(raw);
    if (line.empty() || line[0] == '#' || line[0] == ';') {
      if (nl == text.size()) break;
      continue;
    }
    const bool indented = raw[0] == ' ' || raw[0] == '\t';

    if (line[0] == '[' && !indented) {
      size_t close = line.find(']');
      if (close == std::string_view::npos) return fail("section header without ']'");
      std::string_view rest = trim(line.substr(close + 1));
      if (!rest.empty() && rest[0] != '#' && rest[0] != ';') {
        return fail("unexpected text after section header");
      }
      std::string_view name = trim(line.substr(1, close - 1));
      if (name.empty()) return fail("empty section name");
      section = Section{};
      current = nullptr;
      last_key.clear();
      auto prefixed = [&](std::string_view prefix, std::string_view& tail) {
        if (name.substr(0, prefix.size()) != prefix || name.size() == prefix.size()) return false;
        const char sep = name[prefix.size()];
        if (sep != ' ' && sep != '\t') return false;
        tail = trim(name.substr(prefix.size() + 1));
        return !tail.empty();
      };
      std::string_view tail;
      if (kind == ProfileFileKind::kCredentials) {
        section.kind = Section::kProfile;
        section.name = std::string(name);
      } else if (name == "default") {
        section.kind = explicit_profile_default ? Section::kIgnored : Section::kProfile;
        section.name = "default";
      } else if (prefixed("profile", tail)) {
        section.kind = Section::kProfile;
        section.name = std::string(tail);
        if (section.name == "default" && !explicit_profile_default) {
          explicit_profile_default = true;
          out.profiles.erase("default");  // drop what a plain [default] contributed
        }
      } else if (prefixed("services", tail)) {
        section.kind = Section::kServices;
        section.name = std::string(tail);
      } else {
        section.kind = Section::kIgnored;  // [name] without "profile ", [sso-session x], …
      }
      if (section.kind == Section::kProfile) {
        current = &out.profiles[section.name];
        current->name = section.name;
      } else if (section.kind == Section::kServices) {
        current = &out.services[section.name];
        current->name = section.name;
      }
    } else if (indented && !last_key.empty()) {
      if (section.kind == Section::kIgnored || current == nullptr) continue;
      if (last_key_empty) {
        const size_t eq = line.find('=');
        if (eq == std::string_view::npos) return fail("sub-property without '='");
        std::string_view k = trim(line.substr(0, eq));
        if (k.empty()) return fail("sub-property with an empty name");
        current->sub_properties[last_key][std::string(k)] =
            std::string(strip_value_comment(line.substr(eq + 1)));
      } else {
        std::string& v = current->properties[last_key];
        v += '\n';
        v += line;
      }
    } else {
      if (section.kind == Section::kNone) return fail("property before any [section]");
      const size_t eq = line.find('=');
      if (eq == std::string_view::npos) return fail("expected 'name = value'");
      std::string_view k = trim(line.substr(0, eq));
      if (k.empty()) return fail("property with an empty name");
      const std::string_view v = strip_value_comment(line.substr(eq + 1));
      last_key = std::string(k);
      last_key_empty = v.empty();
      if (current != nullptr) {
        current->properties[last_key] = std::string(v);
        if (last_key_empty) current->sub_properties.erase(last_key);
      }
    }
    if (nl == text.size()) break;
  }
  return out;
}

ProfileFile merge_profile_files(const ProfileFile& config, const ProfileFile& credentials) {
  ProfileFile out = config;
  for (const auto& [name, p] : credentials.profiles) {
    Profile& dst = out.profiles[name];
    dst.name = name;
    for (const auto& [k, v] : p.properties) dst.properties[k] = v;
    for (const auto& [k, v] : p.sub_properties) dst.sub_properties[k] = v;
  }
  return out;
}

}  // namespace ep::aws
