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

std::optional<AsgOptions> parse_asg_options(const ConfigNode& node, Diagnostics& diag) {
  const size_t errors_before = diag.errors().size();
  MapReader r(node, diag, "aws_asg");
  if (!r.valid()) return std::nullopt;
  AsgOptions o;
  // Two spellings of one option are an error at the second one, not "the later one wins".
  r.one_spelling({"groups", "asg_names", "asg_name"});
  r.one_spelling({"region", "region_name"});
  r.one_spelling({"access_key_id", "aws_access_key_id"});
  r.one_spelling({"secret_access_key", "aws_secret_access_key"});
  r.one_spelling({"address", "ip_type"});
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
               "aws_asg: access_key_id and secret_access_key must be given together (or neither)");
  }
  if (const ConfigNode* eps = r.get("endpoints")) {
    MapReader er(*eps, diag, "aws_asg endpoints");
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
  o.address = address == "public" ? AddressType::kPublic
              : address == "ipv6" ? AddressType::kIpv6
                                  : AddressType::kPrivate;
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
      diag.error(list->mark, "aws_asg: lifecycle_hooks must be a non-empty list of "
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
      diag.error(node.mark,
                 std::string("aws_asg: ") +
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
  for (const auto& [key, url_text] :
       {std::pair<const char*, const std::string&>{"endpoints.autoscaling", o.autoscaling_endpoint},
        {"endpoints.ec2", o.ec2_endpoint},
        {"endpoints.sqs", o.sqs_endpoint},
        {"endpoints.sts", o.sts_endpoint},
        {"queue_url", o.queue_url}}) {
    auto url = os::split_url(url_text);
    if (!url.ok() || url->scheme != "http" || os::is_loopback_host(url->authority.host)) continue;
    if (!o.allow_insecure) {
      diag.error(node.mark, std::string("aws_asg.") + key + ": signed requests would go to " +
                                url_text +
                                " in clear text; use https://, or set allow_insecure: true");
    } else {
      log::warn("config", "aws_asg: allow_insecure: signed requests go to {} in clear text",
                url_text);
    }
  }
  const bool ok = r.finish() && diag.errors().size() == errors_before;
  if (!ok) return std::nullopt;
  return o;
}

}  // namespace ep::aws
