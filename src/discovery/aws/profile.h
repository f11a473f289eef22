#pragma once
// The shared AWS `config` and `credentials` files (aws.md §3.2), parsed as pure functions over
// their text. Rules follow the SDKs' profile-file format:
//  - `#` or `;` at the start of a line is a comment; in a property value, ` #` / ` ;` (preceded
//    by whitespace) starts a comment.
//  - config file: `[default]`, `[profile NAME]`, `[services NAME]`, `[sso-session NAME]`;
//    a bare `[NAME]` other than default is ignored (the SDKs ignore it too).
//    `[profile default]` wins over `[default]`.
//  - credentials file: `[NAME]` (no `profile ` prefix).
//  - `key = value`; an indented line after a key with a value continues that value (joined
//    with '\n'); indented `k = v` lines after a key with an EMPTY value are its sub-properties
//    (used by `[services x]` → `ec2 =\n  endpoint_url = …`).
//  - Repeated sections merge; a repeated key takes the later value.
// Errors (kInvalid) carry "<file>:<line>: <what>".

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"

namespace ep::aws {

struct Profile {
  std::string name;
  std::map<std::string, std::string> properties;  // keys as written (AWS keys are lower-case)
  std::map<std::string, std::map<std::string, std::string>> sub_properties;

  // The value of `key`, or nullopt when absent. Empty values are returned as "".
  std::optional<std::string> get(std::string_view key) const;
  // A sub-property (`services` sections): `ec2` → `endpoint_url`.
  std::optional<std::string> get(std::string_view key, std::string_view sub_key) const;
};

struct ProfileFile {
  std::map<std::string, Profile> profiles;  // by profile name ("default", "prod")
  std::map<std::string, Profile> services;  // `[services NAME]` sections (config file only)
};

enum class ProfileFileKind { kConfig, kCredentials };

Result<ProfileFile> parse_profile_file(std::string_view text, ProfileFileKind kind,
                                       std::string_view file_name);

// Merges the two files the way the SDKs do: for a profile present in both, the credentials
// file's values win key by key. `services` come from the config file only.
ProfileFile merge_profile_files(const ProfileFile& config, const ProfileFile& credentials);

}  // namespace ep::aws
