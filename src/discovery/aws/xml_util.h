#pragma once
// INTERNAL to ep_aws (includes pugixml): namespace-tolerant helpers shared by the XML parsers.
// Not part of the public API; include only from .cc files of this folder.

#include <optional>
#include <pugixml.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "discovery/aws/parse.h"

namespace ep::aws::xml {

// "as:member" → "member".
std::string_view local_name(const char* name);
// First child element with this local name (null node when none).
pugi::xml_node child(pugi::xml_node parent, std::string_view local);
std::vector<pugi::xml_node> children(pugi::xml_node parent, std::string_view local);
// Text content, trimmed.
std::string text(pugi::xml_node node);
std::string child_text(pugi::xml_node parent, std::string_view local);

// Parses the document; returns its root element.
Result<pugi::xml_node> load(pugi::xml_document& doc, std::string_view text, std::string_view what);
// The AWS error carried by an <ErrorResponse> or EC2 <Response><Errors> root, if it is one.
std::optional<AwsError> error_from_root(pugi::xml_node root);
// An AWS error as an ep::Error: kUnavailable when worth retrying, else kRefused.
Error to_error(const AwsError& e, std::string_view what);
// load() + error document → to_error + root local name and namespace checks.
Result<pugi::xml_node> load_reply(pugi::xml_document& doc, std::string_view text,
                                  std::string_view root_name, std::string_view ns,
                                  std::string_view what);

}  // namespace ep::aws::xml
