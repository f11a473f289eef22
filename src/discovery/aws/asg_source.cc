#include "discovery/aws/asg_source.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>

#include "discovery/aws/requests.h"
#include "runtime/co.h"

namespace ep::aws {

namespace {

constexpr std::string_view kLog = "aws_asg";

// A request that ran out of time (curl's CURLE_OPERATION_TIMEDOUT, as net/ formats it): the
// endpoint is frozen or black-holed, not refusing or throttling.
bool timed_out(const Error& e) { return e.message.find("(curl error 28)") != std::string::npos; }

bool wanted_state(const AsgInstance& m, const AsgOptions& options) {
  if (std::find(options.lifecycle_states.begin(), options.lifecycle_states.end(),
                m.lifecycle_state) == options.lifecycle_states.end()) {
    return false;
  }
  return !options.require_healthy || m.health_status == "Healthy";
}

// Instances whose address the lifecycle hooks need although they are not served (yet / any
// more): an instance leaving through a terminate hook, or waiting in a launch hook.
bool hook_relevant(const AsgInstance& m, const AsgOptions& options) {
  if (options.hooks().empty()) return false;
  return m.lifecycle_state.rfind("Terminating", 0) == 0 ||
         m.lifecycle_state.rfind("Pending", 0) == 0;
}

}  // namespace

AsgPollResult build_endpoints(const std::vector<AutoScalingGroup>& groups,
                              const std::vector<Ec2Instance>& instances,
                              const AsgOptions& options) {
  AsgPollResult out;
  std::map<std::string, const Ec2Instance*> by_id;
  for (const auto& i : instances) by_id[i.instance_id] = &i;
  std::set<std::string> seen;
  for (const auto& g : groups) {
    out.groups.push_back(g.name);
    for (const auto& m : g.instances) {
      out.states[m.instance_id] = m.lifecycle_state;
      const bool wanted = wanted_state(m, options);
      if (!wanted && !hook_relevant(m, options)) continue;
      auto it = by_id.find(m.instance_id);
      if (it == by_id.end()) {
        if (wanted) out.skipped.push_back(m.instance_id + ": not returned by DescribeInstances");
        continue;
      }
      const Ec2Instance& ec2 = *it->second;
      std::string skip;
      std::optional<long> capacity;
      if (options.weight_from_capacity) {
        if (auto w = m.weight(); w && *w <= 256) capacity = *w;
      }
      auto e = instance_endpoint(ec2, options, skip, capacity, m.availability_zone);
      if (e) e->labels["asg"] = g.name;
      if (e) out.addresses[m.instance_id] = *e;
      if (!wanted) continue;
      if (!seen.insert(m.instance_id).second) continue;  // an instance listed twice
      if (ec2.state_code != 16) {
        out.skipped.push_back(
            fmt::format("{}: EC2 state '{}', not running", m.instance_id, ec2.state_name));
        continue;
      }
      if (!e) {
        out.skipped.push_back(skip);
        continue;
      }
      out.endpoints.push_back(std::move(*e));
    }
  }
  std::sort(out.endpoints.begin(), out.endpoints.end(),
            [](const ep::Endpoint& a, const ep::Endpoint& b) { return a.id < b.id; });
  return out;
}

bool group_selected(const AutoScalingGroup& g, const AsgOptions& options) {
  for (const auto& tag : options.group_tags) {
    // Not a structured binding: clang 14 (the fuzz build) cannot capture one in a lambda.
    const std::string& key = tag.first;
    const std::string& value = tag.second;
    const bool has = std::any_of(g.tags.begin(), g.tags.end(), [&](const Tag& t) {
      return t.key == key && (value.empty() || t.value == value);
    });
    if (!has) return false;
  }
  if (options.groups.empty()) return true;
  return std::any_of(options.groups.begin(), options.groups.end(),
                     [&](const std::string& p) { return glob_match(p, g.name); });
}

runtime::Co<Result<AsgPollResult>> poll_asgs(AsyncAwsClient& client, AsgEndpoints endpoints,
                                             const AsgOptions& options) {
  int calls = 0;
  std::vector<AutoScalingGroup> groups;
  // Literal names are asked for by name (≤50 per call); patterns and tag filters list the groups
  // (with the tag filters applied by AWS) and match here.
  std::vector<std::vector<std::string>> batches;
  const bool listing = options.discovers_groups();
  const bool any_pattern = std::any_of(options.groups.begin(), options.groups.end(),
                                       [](const std::string& g) { return is_pattern(g); });
  if (listing && (any_pattern || options.groups.empty())) {
    batches.push_back({});
  } else {
    for (size_t first = 0; first < options.groups.size(); first += kMaxAsgNamesPerCall) {
      batches.emplace_back(
          options.groups.begin() + static_cast<long>(first),
          options.groups.begin() +
              static_cast<long>(std::min(options.groups.size(), first + kMaxAsgNamesPerCall)));
    }
  }
  for (const auto& batch : batches) {
    std::string token;
    std::set<std::string> tokens_seen;
    do {
      auto params =
          describe_auto_scaling_groups_params(batch, options.group_tags, token, kMaxAsgRecords);
      if (!params) co_return params.error();
      ++calls;
      auto body = co_await client.call_query(AwsService::kAutoScaling, endpoints.autoscaling,
                                             "DescribeAutoScalingGroups", *params);
      if (!body) co_return body.error();
      auto page = parse_describe_auto_scaling_groups(*body);
      if (!page)
        co_return Error{page.error().kind, "DescribeAutoScalingGroups: " + page.error().message};
      for (auto& g : page->groups) {
        if (!listing || group_selected(g, options)) groups.push_back(std::move(g));
      }
      token = page->next_token;
      // A peer that hands back a token twice would loop forever.
      if (!token.empty() && !tokens_seen.insert(token).second) {
        co_return Error::invalid("DescribeAutoScalingGroups: NextToken repeats; giving up");
      }
    } while (!token.empty());
  }
  for (const auto& name : options.groups) {
    if (is_pattern(name)) continue;
    if (std::none_of(groups.begin(), groups.end(),
                     [&](const AutoScalingGroup& g) { return g.name == name; })) {
      co_return Error::invalid(fmt::format("Auto Scaling group '{}' not found", name));
    }
  }
  if (listing && groups.empty()) {
    std::string what;
    for (const auto& g : options.groups) what += (what.empty() ? "" : ",") + g;
    for (const auto& [k, v] : options.group_tags) {
      what += fmt::format("{}tag {}={}", what.empty() ? "" : " ", k, v.empty() ? "*" : v);
    }
    co_return Error::invalid(fmt::format("no Auto Scaling group matches {}", what));
  }
  std::vector<std::string> ids;
  std::set<std::string> unique;
  for (const auto& g : groups) {
    for (const auto& m : g.instances) {
      if (!wanted_state(m, options) && !hook_relevant(m, options)) continue;
      if (unique.insert(m.instance_id).second) ids.push_back(m.instance_id);
    }
  }
  std::vector<Ec2Instance> instances;
  for (size_t first = 0; first < ids.size(); first += kMaxInstanceIdsPerCall) {
    const std::vector<std::string> batch(
        ids.begin() + static_cast<long>(first),
        ids.begin() + static_cast<long>(std::min(ids.size(), first + kMaxInstanceIdsPerCall)));
    Status pages = co_await describe_instances_pages(
        client, endpoints.ec2,
        [&batch](const std::string& token) {
          return describe_instances_by_id_params(batch, token);
        },
        instances, calls);
    if (!pages) co_return pages.error();
  }
  AsgPollResult result = build_endpoints(groups, instances, options);
  result.api_calls = calls;
  co_return result;
}

// ---- the source ----

AsgSource::AsgSource(AsgOptions options, discovery::SourceContext context, AsgRuntime runtime)
    : AwsPollingSource(options, options.interval, std::move(context), std::move(runtime), "aws_asg",
                       "ASG poll"),
      options_(std::move(options)) {}

AsgSource::~AsgSource() { stop(); }

std::string AsgSource::describe() const {
  std::string names;
  for (const auto& g : options_.groups) names += (names.empty() ? "" : ",") + g;
  return fmt::format("aws_asg {}", names);
}

runtime::Co<Result<AwsPollResult>> AsgSource::poll(AsyncAwsClient& client,
                                                   const AwsEndpoints& endpoints) {
  co_return co_await poll_asgs(client, endpoints, options_);
}

void AsgSource::on_polled(AwsPollResult& result) {
  std::lock_guard lock(addr_mu_);
  serve_only_admitted_pending(result);
  if (addresses_.size() > 20000) addresses_.clear();  // bound an ever-churning fleet
  for (const auto& [id, e] : result.addresses) addresses_[id] = e;
  groups_seen_ = std::set<std::string>(result.groups.begin(), result.groups.end());
}

void AsgSource::on_stop() {
  hook_task_.reset();
  sqs_task_.reset();
  {
    std::lock_guard lock(sqs_mu_);
    if (worker_ != nullptr) lifecycle_stats_ = worker_->stats();
    worker_ = nullptr;
  }
  worker_owned_.reset();
  sqs_.reset();
}

SqsBatchResult AsgSource::sqs_totals() const {
  std::lock_guard lock(sqs_mu_);
  return sqs_totals_;
}

LifecycleStats AsgSource::lifecycle_stats() const {
  std::lock_guard lock(sqs_mu_);
  return worker_ ? worker_->stats() : lifecycle_stats_;
}

size_t AsgSource::lifecycle_pending() const {
  std::lock_guard lock(sqs_mu_);
  return worker_ ? worker_->pending() : 0;
}

std::vector<discovery::HookInFlight> AsgSource::hooks_in_flight() const {
  std::lock_guard lock(sqs_mu_);
  return worker_ ? worker_->in_flight() : std::vector<discovery::HookInFlight>{};
}

void AsgSource::on_ready() {
  if (options_.queue_url.empty()) return;
  sqs_ = std::make_unique<SqsEventLoop>(*client(), setup()->endpoints.sqs, options_.queue_url,
                                        static_cast<int>(options_.wait_seconds),
                                        [this] { return repoll_and_wait(options_.timeout * 4); },
                                        std::min<std::chrono::milliseconds>(
                                            options_.timeout, std::chrono::seconds(10)));
  if (!options_.hooks().empty()) {
    LifecycleWorker::Deps deps;
    deps.client = client();
    deps.autoscaling = setup()->endpoints.autoscaling;
    deps.sqs = setup()->endpoints.sqs;
    deps.queue_url = options_.queue_url;
    deps.backend = context().backend;
    deps.address_of = [this](const std::string& id) -> std::optional<ep::Endpoint> {
      std::lock_guard lock(addr_mu_);
      auto it = addresses_.find(id);
      if (it == addresses_.end()) return std::nullopt;
      return it->second;
    };
    deps.repoll = [this] { trigger(); };
    deps.server_states = context().server_states;
    worker_owned_ = std::make_unique<LifecycleWorker>(options_, std::move(deps));
    {
      std::lock_guard lock(sqs_mu_);
      worker_ = worker_owned_.get();
    }
    sqs_->set_lifecycle_handler(
        [this, w = worker_owned_.get()](const AsgMessage& action, const SqsMessage& message) {
          {
            std::lock_guard lock(addr_mu_);
            if (groups_seen_.count(action.auto_scaling_group_name) == 0) {
              log::info(kLog,
                        "{}: lifecycle action for group '{}' which is not one of ours; "
                        "ignored",
                        describe(), action.auto_scaling_group_name);
              return false;
            }
          }
          if (!w->add(action, message)) return false;
          if (action.lifecycle_transition == "autoscaling:EC2_INSTANCE_LAUNCHING") {
            // Waiting on our launch hook: from now on it may be served while Pending (behind
            // the health gate); poll again so it is added now, not at the next interval.
            {
              std::lock_guard lock(addr_mu_);
              admitted_.insert(action.instance_id);
            }
            trigger();
          }
          return true;
        });
    hook_task_ = runtime::spawn(hook_loop());
    for (const auto& h : options_.hooks()) {
      log::info(kLog, "{}: completing lifecycle hook '{}' ({}, heartbeat every {} ms)", describe(),
                h.name, to_string(h.transition), h.heartbeat_interval.count());
    }
  }
  sqs_task_ = runtime::spawn(sqs_loop());
}

runtime::Co<void> AsgSource::sqs_loop() {
  log::info(kLog, "{}: consuming events from {}", describe(), options_.queue_url);
  // After a failed ReceiveMessage: 5 s (min with the receive timeout) before the next one when
  // it failed otherwise (refused, access denied, throttled), and none after one that timed out
  // (a frozen or black-holed endpoint: the timeout already spaced the requests, one per
  // wait_seconds + slack). So when SQS answers again, after an outage of any length, the next
  // receive is already waiting on it (#16.1) — no extra sleep to sit out.
  // The first receive that succeeds after failures also re-polls: a message may have gone to a
  // receive the source had given up on (answered by SQS later, invisible until its visibility
  // timeout), so the groups are read again rather than trusting the queue to say what changed.
  const auto gap = std::min<std::chrono::milliseconds>(std::chrono::seconds(5),
                                                       sqs_->receive_timeout());
  bool failed = false;
  for (;;) {
    auto r = co_await sqs_->run_once();
    {
      std::lock_guard lock(sqs_mu_);
      sqs_totals_ = sqs_->totals();
    }
    if (r && std::exchange(failed, false)) {
      log::info(kLog, "{}: SQS answers again: re-polling", describe());
      trigger();
    }
    if (!r) {
      failed = true;
      log::warn(kLog, "{}: SQS: {}", describe(), r.error().message);
      if (!timed_out(r.error())) {
        co_await runtime::sleep(*loop(), gap);
      } else {
        // Timed out: the endpoints may be frozen. A poll now (it too is sent again at once
        // while it times out, see poll_loop) is waiting on them when they answer again.
        trigger();
      }
    }
  }
}

runtime::Co<void> AsgSource::hook_loop() {
  for (;;) {
    co_await runtime::sleep(*loop(), options_.hook_check_interval);
    co_await worker_owned_->step();
  }
}

void AsgSource::serve_only_admitted_pending(AsgPollResult& result) {
  // An instance in Pending:* is served only while it waits on (or was continued by) one of OUR
  // launch hooks; one waiting on another hook, or any pending instance in a setup without a
  // launch hook of ours, is not ready for traffic. Admissions end once it is no longer pending.
  for (auto it = admitted_.begin(); it != admitted_.end();) {
    auto st = result.states.find(*it);
    const bool pending = st != result.states.end() && st->second.rfind("Pending", 0) == 0;
    it = pending ? std::next(it) : admitted_.erase(it);
  }
  std::erase_if(result.endpoints, [&](const ep::Endpoint& e) {
    auto st = result.states.find(e.id);
    if (st == result.states.end() || st->second.rfind("Pending", 0) != 0) return false;
    if (admitted_.count(e.id) != 0) return false;
    result.skipped.push_back(e.id + ": " + st->second + " and not waiting on our launch hook");
    return true;
  });
}

}  // namespace ep::aws

namespace ep::discovery::aws {

SourceKind source_kind() {
  return SourceKind{"aws_asg",
                    [](const ConfigNode& node, Diagnostics& diag,
                       const SourceContext& context) -> std::unique_ptr<Source> {
                      auto options = ep::aws::parse_asg_options(node, diag);
                      if (!options) return nullptr;
                      if (options->has_launch_hook() && context.health_checks == false) {
                        // Instances are served while Pending:Wait: without health checks they
                        // would take traffic before they are ready.
                        diag.error(node.mark,
                                   fmt::format("aws_asg: a launch lifecycle hook serves instances "
                                               "while they wait in Pending:Wait, so backend '{}' "
                                               "needs health checks: add `check` to its "
                                               "server_options",
                                               context.backend));
                        return nullptr;
                      }
                      return std::make_unique<ep::aws::AsgSource>(std::move(*options), context);
                    }};
}

}  // namespace ep::discovery::aws
