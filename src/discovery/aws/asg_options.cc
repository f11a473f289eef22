#include "discovery/aws/asg_options.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "core/log.h"
#include "os/address.h"
#include "os/strings.h"

namespace ep::aws {

namespace {

using os::trim;

// ASG names: 1..255 characters, no control characters (they go into a form body and logs).
bool valid_group_name(std::string_view s) {
  if (s.empty() || s.size() > 255) return false;
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return false;
  }
  return true;
}

}  // namespace

const char* to_string(HookResult r) { return r == HookResult::kAbandon ? "ABANDON" : "CONTINUE"; }

bool is_pattern(std::string_view name) {
  return name.find_first_of("*?") != std::string_view::npos;
}

bool glob_match(std::string_view pattern, std::string_view text) {
  // Iterative with one backtrack point for the last '*': linear in practice, never recursive.
  size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

const char* to_string(HookTransition t) {
  switch (t) {
    case HookTransition::kLaunching:
      return "launching";
    case HookTransition::kTerminating:
      return "terminating";
    case HookTransition::kAny:
      break;
  }
  return "launching+terminating";
}

std::vector<LifecycleHookOptions> AsgOptions::hooks() const {
  if (!lifecycle_hooks.empty()) return lifecycle_hooks;
  if (lifecycle_hook.empty()) return {};
  LifecycleHookOptions h;
  h.name = lifecycle_hook;
  h.heartbeat_interval = heartbeat_interval;
  h.drain_timeout = hook_drain_timeout;
  h.on_drain_timeout = on_drain_timeout;
  h.launch_timeout = launch_timeout;
  return {h};
}

bool AsgOptions::has_launch_hook() const {
  for (const auto& h : hooks()) {
    if (h.launching()) return true;
  }
  return false;
}

bool AsgOptions::discovers_groups() const {
  if (!group_tags.empty()) return true;
  return std::any_of(groups.begin(), groups.end(),
                     [](const std::string& g) { return is_pattern(g); });
}

const char* to_string(AddressType t) {
  switch (t) {
    case AddressType::kPrivate:
      return "private";
    case AddressType::kPublic:
      return "public";
    case AddressType::kIpv6:
      return "ipv6";
  }
  return "?";
}

// Region, profile, keys, endpoints, allow_insecure, address: shared by aws_asg and aws_ec2.
void parse_connection(MapReader& r, const ConfigNode& node, Diagnostics& diag,
                      AwsConnectionOptions& o, AddressType& address_type, const std::string& what) {
  r.one_spelling({"region", "region_name"});
  r.one_spelling({"access_key_id", "aws_access_key_id"});
  r.one_spelling({"secret_access_key", "aws_secret_access_key"});
  r.one_spelling({"address", "ip_type"});
  r.string("region", o.region);
  r.string("region_name", o.region);  // EP2 spelling
  r.string("profile", o.profile);
  r.string("access_key_id", o.access_key_id);
  r.string("aws_access_key_id", o.access_key_id);  // EP2 spelling
  r.string("secret_access_key", o.secret_access_key);
  r.string("aws_secret_access_key", o.secret_access_key);  // EP2 spelling
  r.string("session_token", o.session_token);
  if (o.access_key_id.empty() != o.secret_access_key.empty()) {
    diag.error(node.mark,
               what + ": access_key_id and secret_access_key must be given together (or neither)");
  }
  if (const ConfigNode* eps = r.get("endpoints")) {
    MapReader er(*eps, diag, what + " endpoints");
    er.string("autoscaling", o.autoscaling_endpoint);
    er.string("ec2", o.ec2_endpoint);
    er.string("sqs", o.sqs_endpoint);
    er.string("sts", o.sts_endpoint);
    er.finish();
  }
  r.boolean("allow_insecure", o.allow_insecure);
  std::string address = "private";
  r.one_of("address", address, {"private", "public", "ipv6"});
  r.one_of("ip_type", address, {"private", "public", "ipv6"});  // EP2 spelling
  address_type = address == "public" ? AddressType::kPublic
                 : address == "ipv6" ? AddressType::kIpv6
                                     : AddressType::kPrivate;
}

// Signed requests over plain http to a host other than loopback: an error unless allowed.
void check_transport(const ConfigNode& node, Diagnostics& diag, const AwsConnectionOptions& o,
                     const std::string& queue_url, const std::string& what) {
  for (const auto& [key, url_text] :
       {std::pair<const char*, const std::string&>{"endpoints.autoscaling", o.autoscaling_endpoint},
        {"endpoints.ec2", o.ec2_endpoint},
        {"endpoints.sqs", o.sqs_endpoint},
        {"endpoints.sts", o.sts_endpoint},
        {"queue_url", queue_url}}) {
    auto url = os::split_url(url_text);
    if (!url.ok() || url->scheme != "http" || os::is_loopback_host(url->authority.host)) continue;
    if (!o.allow_insecure) {
      diag.error(node.mark, what + "." + key + ": signed requests would go to " + url_text +
                                " in clear text; use https://, or set allow_insecure: true");
    } else {
      log::warn("config", "{}: allow_insecure: signed requests go to {} in clear text", what,
                url_text);
    }
  }
}

std::optional<AsgOptions> parse_asg_options(const ConfigNode& node, Diagnostics& diag) {
  const size_t errors_before = diag.errors().size();
  MapReader r(node, diag, "aws_asg");
  if (!r.valid()) return std::nullopt;
  AsgOptions o;
  // Two spellings of one option are an error at the second one, not "the later one wins".
  r.one_spelling({"groups", "asg_names", "asg_name"});
  r.one_spelling({"queue_url", "sqs_queue_url"});
  std::vector<std::string> groups;
  r.string_list("groups", groups);
  r.string_list("asg_names", groups);
  std::string ep2_names;
  if (r.string("asg_name", ep2_names)) {
    size_t pos = 0;
    while (pos <= ep2_names.size()) {
      auto comma = ep2_names.find(',', pos);
      if (comma == std::string::npos) comma = ep2_names.size();
      std::string name(trim(std::string_view(ep2_names).substr(pos, comma - pos)));
      if (!name.empty()) groups.push_back(name);
      pos = comma + 1;
    }
  }
  for (const auto& g : groups) {
    if (!valid_group_name(g)) {
      diag.error(node.mark, fmt::format("aws_asg: invalid Auto Scaling group name '{}' (1-255 "
                                        "characters, no control characters)",
                                        g.substr(0, 80)));
    } else if (std::find(o.groups.begin(), o.groups.end(), g) == o.groups.end()) {
      o.groups.push_back(g);
    }
  }
  if (const ConfigNode* tags = r.get("asg_tags")) {
    if (tags->kind != ConfigNode::Kind::kMap || tags->keys.empty()) {
      diag.error(tags->mark, "aws_asg: asg_tags must be a non-empty map of tag key to value");
    } else {
      for (size_t i = 0; i < tags->keys.size(); ++i) {
        const ConfigNode& v = tags->values[i];
        if (v.kind != ConfigNode::Kind::kScalar && v.kind != ConfigNode::Kind::kNull) {
          diag.error(v.mark, fmt::format("aws_asg: asg_tags.{} must be a string", tags->keys[i]));
          continue;
        }
        if (!valid_group_name(tags->keys[i]) || tags->keys[i].size() > 128) {
          diag.error(tags->key_marks[i],
                     "aws_asg: invalid tag key in asg_tags (1-128 "
                     "characters, no control characters)");
          continue;
        }
        std::string value = v.kind == ConfigNode::Kind::kNull ? "" : v.scalar;
        if (value.size() > 256 || (!value.empty() && !valid_group_name(value))) {
          diag.error(v.mark, fmt::format("aws_asg: invalid value for asg_tags.{}", tags->keys[i]));
          continue;
        }
        o.group_tags.emplace_back(tags->keys[i], value == "*" ? "" : value);
      }
    }
  }
  if (groups.empty() && o.group_tags.empty()) {
    diag.error(node.mark,
               "aws_asg: 'groups' (or 'asg_names', EP2's 'asg_name', or 'asg_tags') is required");
  }
  parse_connection(r, node, diag, o, o.address, "aws_asg");
  r.integer("port", o.port, 1, 65535);
  r.string("port_tag", o.port_tag);
  r.boolean("weight_from_capacity", o.weight_from_capacity);
  r.string("weight_tag", o.weight_tag);
  if (r.has("lifecycle_states")) {
    o.lifecycle_states.clear();
    r.string_list("lifecycle_states", o.lifecycle_states);
  }
  r.boolean("require_healthy", o.require_healthy);
  r.string("local_zone", o.local_zone);
  r.boolean("backup_other_zones", o.backup_other_zones);
  if (o.backup_other_zones && o.local_zone.empty()) {
    diag.error(node.mark, "aws_asg: backup_other_zones needs local_zone");
  }
  r.positive_duration("interval", o.interval);
  if (o.interval < std::chrono::seconds(1)) {
    diag.error(node.mark, "aws_asg: interval must be at least 1s");
  }
  r.positive_duration("timeout", o.timeout);
  r.string("queue_url", o.queue_url);
  r.string("sqs_queue_url", o.queue_url);  // the spelling of docs/ARCHITECTURE.md's sketch
  r.integer("wait_seconds", o.wait_seconds, 1, 20);
  r.one_spelling({"lifecycle_hook", "lifecycle_hooks"});
  r.string("lifecycle_hook", o.lifecycle_hook);
  if (!o.lifecycle_hook.empty() && !valid_group_name(o.lifecycle_hook)) {
    diag.error(node.mark, "aws_asg: invalid lifecycle_hook name (1-255 characters)");
  }
  r.positive_duration("heartbeat_interval", o.heartbeat_interval);
  if (o.heartbeat_interval < std::chrono::seconds(1)) {
    diag.error(node.mark, "aws_asg: heartbeat_interval must be at least 1s");
  }
  r.duration("drain_timeout", o.hook_drain_timeout);
  std::string on_timeout = "continue";
  r.one_of("on_drain_timeout", on_timeout, {"continue", "abandon"});
  o.on_drain_timeout = on_timeout == "abandon" ? HookResult::kAbandon : HookResult::kContinue;
  r.positive_duration("launch_timeout", o.launch_timeout);
  if (const ConfigNode* list = r.get("lifecycle_hooks")) {
    if (list->kind != ConfigNode::Kind::kSequence || list->items.empty()) {
      diag.error(list->mark,
                 "aws_asg: lifecycle_hooks must be a non-empty list of "
                 "{name, transition, ...}");
    } else {
      std::set<std::pair<std::string, bool>> seen;  // (name, launching)
      for (size_t i = 0; i < list->items.size(); ++i) {
        const ConfigNode& item = list->items[i];
        const std::string what = fmt::format("aws_asg.lifecycle_hooks[{}]", i);
        MapReader hr(item, diag, what);
        if (!hr.valid()) continue;
        LifecycleHookOptions h;
        h.heartbeat_interval = o.heartbeat_interval;
        h.drain_timeout = o.hook_drain_timeout;
        h.on_drain_timeout = o.on_drain_timeout;
        h.launch_timeout = o.launch_timeout;
        hr.string("name", h.name, true);
        if (!h.name.empty() && !valid_group_name(h.name)) {
          diag.error(item.mark, what + ": invalid hook name (1-255 characters)");
        }
        std::string transition;
        if (!hr.has("transition")) {
          diag.error(item.mark, what + ".transition is required (launching or terminating)");
        }
        hr.one_of("transition", transition, {"launching", "terminating"});
        h.transition = transition == "launching"     ? HookTransition::kLaunching
                       : transition == "terminating" ? HookTransition::kTerminating
                                                     : HookTransition::kAny;
        hr.positive_duration("heartbeat_interval", h.heartbeat_interval);
        if (h.heartbeat_interval < std::chrono::seconds(1)) {
          diag.error(item.mark, what + ": heartbeat_interval must be at least 1s");
        }
        if (h.transition == HookTransition::kTerminating) {
          hr.duration("drain_timeout", h.drain_timeout);
          std::string on = h.on_drain_timeout == HookResult::kAbandon ? "abandon" : "continue";
          hr.one_of("on_drain_timeout", on, {"continue", "abandon"});
          h.on_drain_timeout = on == "abandon" ? HookResult::kAbandon : HookResult::kContinue;
        } else if (h.transition == HookTransition::kLaunching) {
          hr.positive_duration("launch_timeout", h.launch_timeout);
        }
        // A key of the other transition (drain_timeout on a launch hook) is reported as unknown.
        hr.finish();
        if (h.transition != HookTransition::kAny &&
            !seen.insert({h.name, h.transition == HookTransition::kLaunching}).second) {
          diag.error(item.mark, fmt::format("{}: hook '{}' ({}) is listed twice", what, h.name,
                                            to_string(h.transition)));
        }
        o.lifecycle_hooks.push_back(std::move(h));
      }
    }
  }
  if (!o.hooks().empty()) {
    if (o.queue_url.empty()) {
      diag.error(node.mark, std::string("aws_asg: ") +
                                (o.lifecycle_hooks.empty() ? "lifecycle_hook" : "lifecycle_hooks") +
                                " needs queue_url (the hook's notifications arrive through SQS)");
    }
    if (!r.has("lifecycle_states") && o.has_launch_hook()) {
      // Hooked launches wait in Pending:Wait until completed: the server must be added then
      // (only for instances waiting on OUR launch hook: see AsgSource), and stay through
      // Pending:Proceed, or the hook could never see it healthy.
      o.lifecycle_states = {"Pending:Wait", "Pending:Proceed", "InService"};
    }
  }
  r.positive_duration("hook_check_interval", o.hook_check_interval);
  if (o.hook_check_interval < std::chrono::milliseconds(50)) {
    diag.error(node.mark, "aws_asg: hook_check_interval must be at least 50ms");
  }
  check_transport(node, diag, o, o.queue_url, "aws_asg");
  const bool ok = r.finish() && diag.errors().size() == errors_before;
  if (!ok) return std::nullopt;
  return o;
}

namespace {

bool valid_filter_text(std::string_view s, size_t max) {
  return !s.empty() && s.size() <= max && valid_group_name(s);
}

// One filter value list: a scalar or a list of scalars.
bool filter_values(const ConfigNode& v, const std::string& what, Diagnostics& diag,
                   std::vector<std::string>& out) {
  if (v.kind == ConfigNode::Kind::kScalar) {
    out.push_back(v.scalar);
  } else if (v.kind == ConfigNode::Kind::kSequence && !v.items.empty()) {
    for (const auto& item : v.items) {
      if (item.kind != ConfigNode::Kind::kScalar) {
        diag.error(item.mark, what + ": values must be strings");
        return false;
      }
      out.push_back(item.scalar);
    }
  } else {
    diag.error(v.mark, what + " must be a string or a non-empty list of strings");
    return false;
  }
  for (const auto& value : out) {
    if (!valid_filter_text(value, 255)) {
      diag.error(v.mark, what + ": invalid value '" + value.substr(0, 40) +
                             "' (1-255 characters, no control characters)");
      return false;
    }
  }
  return true;
}

}  // namespace

std::optional<Ec2Options> parse_ec2_options(const ConfigNode& node, Diagnostics& diag) {
  const size_t errors_before = diag.errors().size();
  MapReader r(node, diag, "aws_ec2");
  if (!r.valid()) return std::nullopt;
  Ec2Options o;
  auto add_filter = [&](std::string name, std::vector<std::string> values) {
    for (auto& f : o.filters) {
      if (f.first == name) {  // the same filter twice: AWS ORs values within one filter
        f.second.insert(f.second.end(), values.begin(), values.end());
        return;
      }
    }
    o.filters.emplace_back(std::move(name), std::move(values));
  };
  if (const ConfigNode* tags = r.get("tags")) {
    if (tags->kind != ConfigNode::Kind::kMap || tags->keys.empty()) {
      diag.error(tags->mark, "aws_ec2: tags must be a non-empty map of tag key to value(s)");
    } else {
      for (size_t i = 0; i < tags->keys.size(); ++i) {
        const std::string& key = tags->keys[i];
        if (!valid_filter_text(key, 128)) {
          diag.error(tags->key_marks[i], "aws_ec2: invalid tag key in tags (1-128 characters)");
          continue;
        }
        const ConfigNode& v = tags->values[i];
        if (v.kind == ConfigNode::Kind::kNull ||
            (v.kind == ConfigNode::Kind::kScalar && (v.scalar.empty() || v.scalar == "*"))) {
          add_filter("tag-key", {key});  // "has the key", any value
          continue;
        }
        std::vector<std::string> values;
        if (filter_values(v, "aws_ec2: tags." + key, diag, values)) {
          add_filter("tag:" + key, std::move(values));
        }
      }
    }
  }
  if (const ConfigNode* filters = r.get("filters")) {
    // A map {name: value(s)}, or a list of "Name=Value[,Value…]" (the AWS CLI's spelling).
    if (filters->kind == ConfigNode::Kind::kMap && !filters->keys.empty()) {
      for (size_t i = 0; i < filters->keys.size(); ++i) {
        const std::string& name = filters->keys[i];
        if (!valid_filter_text(name, 255)) {
          diag.error(filters->key_marks[i], "aws_ec2: invalid filter name");
          continue;
        }
        std::vector<std::string> values;
        if (filter_values(filters->values[i], "aws_ec2: filters." + name, diag, values)) {
          add_filter(name, std::move(values));
        }
      }
    } else if (filters->kind == ConfigNode::Kind::kSequence && !filters->items.empty()) {
      for (const auto& item : filters->items) {
        const auto eq =
            item.kind == ConfigNode::Kind::kScalar ? item.scalar.find('=') : std::string::npos;
        if (eq == std::string::npos || eq == 0 || eq + 1 == item.scalar.size()) {
          diag.error(item.mark,
                     "aws_ec2: a filter must be \"Name=Value\" (e.g. "
                     "\"tag:Service=web\"; several values comma-separated)");
          continue;
        }
        const std::string name = item.scalar.substr(0, eq);
        std::vector<std::string> values;
        const std::string list = item.scalar.substr(eq + 1);
        for (size_t pos = 0; pos <= list.size();) {
          size_t comma = list.find(',', pos);
          if (comma == std::string::npos) comma = list.size();
          std::string v(trim(std::string_view(list).substr(pos, comma - pos)));
          pos = comma + 1;
          if (!valid_filter_text(v, 255) || !valid_filter_text(name, 255)) {
            diag.error(item.mark, "aws_ec2: invalid filter '" + item.scalar.substr(0, 60) + "'");
            values.clear();
            break;
          }
          values.push_back(v);
        }
        if (!values.empty()) add_filter(name, std::move(values));
      }
    } else {
      diag.error(filters->mark,
                 "aws_ec2: filters must be a map {name: value(s)} or a list of "
                 "\"Name=Value\" strings");
    }
  }
  for (const auto& f : o.filters) {
    if (f.first == "instance-state-name") {
      diag.error(node.mark,
                 "aws_ec2: instance-state-name is always 'running'; do not filter on it");
    }
  }
  if (o.filters.empty() && errors_before == diag.errors().size()) {
    diag.error(node.mark, "aws_ec2: 'tags' or 'filters' is required (e.g. tags: {Service: web})");
  }
  if (o.filters.size() > 49) diag.error(node.mark, "aws_ec2: at most 49 filters");
  parse_connection(r, node, diag, o, o.address, "aws_ec2");
  r.integer("port", o.port, 1, 65535);
  r.string("port_tag", o.port_tag);
  long weight = -1;
  r.integer("weight", weight, 0, 256);
  if (weight >= 0) o.weight = weight;
  r.string("weight_tag", o.weight_tag);
  r.string("local_zone", o.local_zone);
  r.boolean("backup_other_zones", o.backup_other_zones);
  if (o.backup_other_zones && o.local_zone.empty()) {
    diag.error(node.mark, "aws_ec2: backup_other_zones needs local_zone");
  }
  r.positive_duration("interval", o.interval);
  if (o.interval < std::chrono::seconds(1)) {
    diag.error(node.mark, "aws_ec2: interval must be at least 1s");
  }
  r.positive_duration("timeout", o.timeout);
  check_transport(node, diag, o, "", "aws_ec2");
  const bool ok = r.finish() && diag.errors().size() == errors_before;
  if (!ok) return std::nullopt;
  return o;
}

}  // namespace ep::aws
