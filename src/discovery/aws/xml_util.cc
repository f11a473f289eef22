#include "discovery/aws/xml_util.h"

#include <fmt/format.h>

#include <cstring>

namespace ep::aws::xml {

std::string_view local_name(const char* name) {
  std::string_view n(name);
  const size_t colon = n.find(':');
  return colon == std::string_view::npos ? n : n.substr(colon + 1);
}

pugi::xml_node child(pugi::xml_node parent, std::string_view local) {
  for (pugi::xml_node c = parent.first_child(); c; c = c.next_sibling()) {
    if (c.type() == pugi::node_element && local_name(c.name()) == local) return c;
  }
  return {};
}

std::vector<pugi::xml_node> children(pugi::xml_node parent, std::string_view local) {
  std::vector<pugi::xml_node> out;
  for (pugi::xml_node c = parent.first_child(); c; c = c.next_sibling()) {
    if (c.type() == pugi::node_element && local_name(c.name()) == local) out.push_back(c);
  }
  return out;
}

std::string text(pugi::xml_node node) {
  std::string_view v = node.text().get();
  const size_t b = v.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  const size_t e = v.find_last_not_of(" \t\r\n");
  return std::string(v.substr(b, e - b + 1));
}

std::string child_text(pugi::xml_node parent, std::string_view local) {
  return text(child(parent, local));
}

Result<pugi::xml_node> load(pugi::xml_document& doc, std::string_view text, std::string_view what) {
  if (text.size() > kMaxReplyBytes) {
    return Error::invalid(
        fmt::format("{}: {} bytes exceeds the {} byte limit", what, text.size(), kMaxReplyBytes));
  }
  // parse_default has no DTD/entity expansion beyond the predefined ones, so no entity bombs.
  pugi::xml_parse_result r =
      doc.load_buffer(text.data(), text.size(), pugi::parse_default, pugi::encoding_utf8);
  if (!r) {
    return Error::invalid(
        fmt::format("{}: malformed XML at byte {}: {}", what, r.offset, r.description()));
  }
  pugi::xml_node root = doc.document_element();
  if (!root) return Error::invalid(fmt::format("{}: XML has no root element", what));
  return root;
}

std::optional<AwsError> error_from_root(pugi::xml_node root) {
  const std::string_view name = local_name(root.name());
  pugi::xml_node err;
  AwsError e;
  if (name == "ErrorResponse") {
    err = child(root, "Error");
    e.request_id = child_text(root, "RequestId");
  } else if (name == "Response") {
    err = child(child(root, "Errors"), "Error");
    e.request_id = child_text(root, "RequestID");
  } else if (name == "Error") {
    err = root;  // bare <Error> (S3 style; seen from some endpoints and test doubles)
    e.request_id = child_text(root, "RequestId");
  } else {
    return std::nullopt;
  }
  if (!err) return std::nullopt;
  e.code = child_text(err, "Code");
  e.message = child_text(err, "Message");
  e.type = child_text(err, "Type");
  if (e.code.empty()) return std::nullopt;
  return e;
}

Error to_error(const AwsError& e, std::string_view what) {
  std::string msg = fmt::format("{}: AWS error {}: {}", what, e.code, e.message);
  if (!e.request_id.empty()) msg += fmt::format(" (request {})", e.request_id);
  if (is_throttling_code(e.code) || is_transient_code(e.code)) return Error::unavailable(msg);
  return Error::refused(msg);
}

Result<pugi::xml_node> load_reply(pugi::xml_document& doc, std::string_view text,
                                  std::string_view root_name, std::string_view ns,
                                  std::string_view what) {
  auto root = load(doc, text, what);
  if (!root) return root;
  if (auto e = error_from_root(*root)) return to_error(*e, what);
  const std::string_view name = local_name(root->name());
  if (name != root_name) {
    return Error::invalid(fmt::format("{}: root element is <{}>, expected <{}>", what,
                                      std::string_view(root->name()).substr(0, 80), root_name));
  }
  // The namespace in force on the root: xmlns, or xmlns:<prefix> for a prefixed root.
  std::string_view full(root->name());
  std::string attr = "xmlns";
  if (const size_t colon = full.find(':'); colon != std::string_view::npos) {
    attr += ":" + std::string(full.substr(0, colon));
  }
  pugi::xml_attribute a = root->attribute(attr.c_str());
  if (a && std::string_view(a.value()) != ns) {
    return Error::invalid(fmt::format("{}: namespace '{}' is not the expected '{}'", what,
                                      std::string_view(a.value()).substr(0, 120), ns));
  }
  return root;
}

}  // namespace ep::aws::xml
