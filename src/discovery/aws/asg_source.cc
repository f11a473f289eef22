#include "discovery/aws/asg_source.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "discovery/aws/endpoints.h"
#include "discovery/aws/profile.h"
#include "discovery/aws/requests.h"
#include "net/curl_http_client.h"

extern char** environ;

namespace ep::aws {

namespace {

constexpr std::string_view kLog = "aws_asg";

std::optional<long> parse_number(const std::string& text, long min, long max) {
  if (text.empty() || text.size() > 9) return std::nullopt;
  long v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  if (v < min || v > max) return std::nullopt;
  return v;
}

EnvMap process_env() {
  EnvMap env;
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    auto eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    if (kv.substr(0, 4) != "AWS_") continue;  // only what the chain reads
    env.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
  }
  if (const char* home = std::getenv("HOME")) env.emplace("HOME", home);
  return env;
}

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string env_or(const EnvMap& env, const std::string& name, const std::string& fallback) {
  auto it = env.find(name);
  return it != env.end() && !it->second.empty() ? it->second : fallback;
}

}  // namespace

namespace {

bool wanted_state(const AsgInstance& m, const AsgOptions& options) {
  if (std::find(options.lifecycle_states.begin(), options.lifecycle_states.end(),
                m.lifecycle_state) == options.lifecycle_states.end()) {
    return false;
  }
  return !options.require_healthy || m.health_status == "Healthy";
}

// The endpoint for one member, or nullopt with the reason in `skip`.
std::optional<ep::Endpoint> member_endpoint(const AutoScalingGroup& g, const AsgInstance& m,
                                            const Ec2Instance& ec2, const AsgOptions& options,
                                            std::string& skip) {
  ep::Endpoint e;
  switch (options.address) {
    case AddressType::kPrivate:
      e.address = ec2.private_ip;
      break;
    case AddressType::kPublic:
      e.address = ec2.public_ip;
      break;
    case AddressType::kIpv6:
      e.address = ec2.ipv6_addresses.empty() ? "" : ec2.ipv6_addresses.front();
      break;
  }
  if (e.address.empty()) {
    skip = fmt::format("{}: no {} address", m.instance_id, to_string(options.address));
    return std::nullopt;
  }
  e.port = static_cast<std::uint32_t>(options.port);
  if (!options.port_tag.empty()) {
    if (auto tag = ec2.tag(options.port_tag)) {
      if (auto p = parse_number(*tag, 1, 65535)) {
        e.port = static_cast<std::uint32_t>(*p);
      } else {
        skip = fmt::format("{}: tag {}='{}' is not a port (1-65535)", m.instance_id,
                           options.port_tag, tag->substr(0, 32));
        return std::nullopt;
      }
    }
  }
  if (!options.weight_tag.empty()) {
    if (auto tag = ec2.tag(options.weight_tag)) {
      if (auto w = parse_number(*tag, 0, 256)) e.weight = *w;
    }
  }
  if (!e.weight && options.weight_from_capacity) {
    if (auto w = m.weight(); w && *w <= 256) e.weight = *w;
  }
  const std::string zone =
      !m.availability_zone.empty() ? m.availability_zone : ec2.availability_zone;
  e.backup = options.backup_other_zones && zone != options.local_zone;
  e.id = m.instance_id;
  e.labels["availability_zone"] = zone;
  e.labels["asg"] = g.name;
  e.labels["instance_id"] = m.instance_id;
  return e;
}

// Instances whose address the lifecycle hooks need although they are not served (yet / any
// more): an instance leaving through a terminate hook, or waiting in a launch hook.
bool hook_relevant(const AsgInstance& m, const AsgOptions& options) {
  if (options.lifecycle_hook.empty()) return false;
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
      auto e = member_endpoint(g, m, ec2, options, skip);
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

Result<AsgPollResult> poll_asgs(AwsClient& client, const AsgEndpoints& endpoints,
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
      if (!params) return params.error();
      ++calls;
      auto body = client.call_query(AwsService::kAutoScaling, endpoints.autoscaling,
                                    "DescribeAutoScalingGroups", *params);
      if (!body) return body.error();
      auto page = parse_describe_auto_scaling_groups(*body);
      if (!page)
        return Error{page.error().kind, "DescribeAutoScalingGroups: " + page.error().message};
      for (auto& g : page->groups) {
        if (!listing || group_selected(g, options)) groups.push_back(std::move(g));
      }
      token = page->next_token;
      // A peer that hands back a token twice would loop forever.
      if (!token.empty() && !tokens_seen.insert(token).second) {
        return Error::invalid("DescribeAutoScalingGroups: NextToken repeats; giving up");
      }
    } while (!token.empty());
  }
  for (const auto& name : options.groups) {
    if (is_pattern(name)) continue;
    if (std::none_of(groups.begin(), groups.end(),
                     [&](const AutoScalingGroup& g) { return g.name == name; })) {
      return Error::invalid(fmt::format("Auto Scaling group '{}' not found", name));
    }
  }
  if (listing && groups.empty()) {
    std::string what;
    for (const auto& g : options.groups) what += (what.empty() ? "" : ",") + g;
    for (const auto& [k, v] : options.group_tags) {
      what += fmt::format("{}tag {}={}", what.empty() ? "" : " ", k, v.empty() ? "*" : v);
    }
    return Error::invalid(fmt::format("no Auto Scaling group matches {}", what));
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
    std::string token;
    std::set<std::string> tokens_seen;
    do {
      auto params = describe_instances_by_id_params(batch, token);
      if (!params) return params.error();
      ++calls;
      auto body = client.call_query(AwsService::kEc2, endpoints.ec2, "DescribeInstances", *params);
      if (!body) return body.error();
      auto page = parse_describe_instances(*body);
      if (!page) return Error{page.error().kind, "DescribeInstances: " + page.error().message};
      for (auto& i : page->instances) instances.push_back(std::move(i));
      token = page->next_token;
      if (!token.empty() && !tokens_seen.insert(token).second) {
        return Error::invalid("DescribeInstances: NextToken repeats; giving up");
      }
    } while (!token.empty());
  }
  AsgPollResult result = build_endpoints(groups, instances, options);
  result.api_calls = calls;
  return result;
}

// ---- the source ----

AsgSource::AsgSource(AsgOptions options, discovery::SourceContext context, AsgRuntime runtime)
    : options_(std::move(options)),
      context_(std::move(context)),
      runtime_(std::move(runtime)),
      failures_("aws_asg", fmt::format("ASG poll for backend '{}'", context_.backend)) {
  if (!runtime_.http_factory) {
    runtime_.http_factory = [] { return std::make_unique<net::CurlHttpClient>(); };
  }
  if (runtime_.read_files) {
    runtime_.env = process_env();
    const std::string home = env_or(runtime_.env, "HOME", "");
    runtime_.config_file =
        read_file(env_or(runtime_.env, "AWS_CONFIG_FILE", home + "/.aws/config"));
    runtime_.credentials_file =
        read_file(env_or(runtime_.env, "AWS_SHARED_CREDENTIALS_FILE", home + "/.aws/credentials"));
  }
}

AsgSource::~AsgSource() { stop(); }

std::string AsgSource::describe() const {
  std::string names;
  for (const auto& g : options_.groups) names += (names.empty() ? "" : ",") + g;
  return fmt::format("aws_asg {}", names);
}

Result<std::unique_ptr<AsgSource::Setup>> AsgSource::make_setup() {
  auto setup = std::make_unique<Setup>();
  setup->http = runtime_.http_factory();
  setup->sts_http = runtime_.http_factory();
  std::optional<ProfileFile> files;
  if (runtime_.config_file || runtime_.credentials_file) {
    auto config =
        parse_profile_file(runtime_.config_file.value_or(""), ProfileFileKind::kConfig, "config");
    if (!config) return config.error();
    auto creds = parse_profile_file(runtime_.credentials_file.value_or(""),
                                    ProfileFileKind::kCredentials, "credentials");
    if (!creds) return creds.error();
    files = merge_profile_files(*config, *creds);
  }
  const std::string profile_name = selected_profile_name(options_.profile, runtime_.env);
  const Profile* profile = nullptr;
  if (files) {
    auto it = files->profiles.find(profile_name);
    if (it != files->profiles.end()) profile = &it->second;
  }
  auto region = resolve_region(options_.region, runtime_.env, profile);
  if (!region) return region.error();
  const ProfileFile* pf = files ? &*files : nullptr;
  auto as = resolve_endpoint(AwsService::kAutoScaling, region->region,
                             options_.autoscaling_endpoint, runtime_.env, profile, pf);
  if (!as) return as.error();
  auto ec2 = resolve_endpoint(AwsService::kEc2, region->region, options_.ec2_endpoint, runtime_.env,
                              profile, pf);
  if (!ec2) return ec2.error();
  auto sqs = resolve_endpoint(AwsService::kSqs, region->region, options_.sqs_endpoint, runtime_.env,
                              profile, pf);
  if (!sqs) return sqs.error();
  auto sts = resolve_endpoint(AwsService::kSts, region->region, options_.sts_endpoint, runtime_.env,
                              profile, pf);
  if (!sts) return sts.error();
  for (const Endpoint* e : {&*as, &*ec2, &*sqs, &*sts}) {
    if (!e->tls()) {
      log::warn(kLog, "endpoint {} ({}) is plain http: requests are signed but not encrypted",
                e->url, e->source);
    }
  }
  setup->endpoints = {*as, *ec2, *sqs};

  if (!options_.access_key_id.empty()) {
    setup->credentials = std::make_unique<StaticCredentialProvider>(
        Credentials{options_.access_key_id, options_.secret_access_key, options_.session_token,
                    std::nullopt, "configuration"});
  } else {
    ChainInputs in;
    in.env = runtime_.env;
    in.config_file = runtime_.config_file;
    in.credentials_file = runtime_.credentials_file;
    in.profile = options_.profile;
    auto plan = plan_credentials(in);
    if (!plan) return plan.error();
    log::info(kLog, "credentials from {}", plan->description);
    HttpCredentialFetcherOptions fo;
    fo.default_region = region->region;
    const Endpoint sts_endpoint = *sts;
    // STS in the source's region uses the resolved endpoint (with its overrides); a profile
    // that names another region for its role gets that region's default endpoint.
    fo.sts_endpoint =
        [sts_endpoint, region = region->region, env = runtime_.env,
         configured = !options_.sts_endpoint.empty()](const std::string& r) -> Result<Endpoint> {
      if (r == region || configured) return sts_endpoint;
      return resolve_endpoint(AwsService::kSts, r, "", env, nullptr, nullptr);
    };
    setup->fetcher = std::make_unique<HttpCredentialFetcher>(*setup->sts_http, std::move(fo));
    setup->credentials = std::make_unique<CachingCredentialProvider>(*plan, *setup->fetcher);
  }
  setup->client = std::make_unique<AwsClient>(*setup->http, *setup->credentials, region->region,
                                              runtime_.retry, runtime_.client_env);
  return setup;
}

Status AsgSource::start(discovery::Sink& sink) {
  std::lock_guard lock(mu_);
  if (thread_.joinable()) return Error::internal("aws_asg source already started");
  stopping_ = false;
  thread_ = std::thread([this, &sink] { run(sink); });
  return {};
}

void AsgSource::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    sqs_stop_ = true;
    if (in_flight_) in_flight_->cancel();
    if (sqs_in_flight_) sqs_in_flight_->cancel();
    if (hook_in_flight_) hook_in_flight_->cancel();
  }
  cv_.notify_all();
  done_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool AsgSource::trigger_and_wait(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  const std::uint64_t target = poll_started_ + 1;
  triggered_ = true;
  cv_.notify_all();
  done_cv_.wait_for(lock, timeout, [&] { return stopping_ || poll_done_ >= target; });
  return !stopping_ && poll_done_ >= target && poll_done_ok_;
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

void AsgSource::run_sqs(Setup& setup) {
  auto http = runtime_.http_factory();
  auto hook_http = runtime_.http_factory();
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    sqs_in_flight_ = http.get();
    hook_in_flight_ = hook_http.get();
  }
  AwsClient client(*http, *setup.credentials, setup.client->region(), runtime_.retry,
                   runtime_.client_env);
  SqsEventLoop loop(client, setup.endpoints.sqs, options_.queue_url,
                    static_cast<int>(options_.wait_seconds),
                    [this] { return trigger_and_wait(options_.timeout * 4); });
  // Lifecycle hooks: a worker on its own thread (and its own HTTP client) completes the actions
  // the SQS loop hands over.
  AwsClient hook_client(*hook_http, *setup.credentials, setup.client->region(), runtime_.retry,
                        runtime_.client_env);
  std::unique_ptr<LifecycleWorker> worker;
  std::thread hook_thread;
  if (!options_.lifecycle_hook.empty()) {
    LifecycleWorker::Deps deps;
    deps.client = &hook_client;
    deps.autoscaling = setup.endpoints.autoscaling;
    deps.sqs = setup.endpoints.sqs;
    deps.queue_url = options_.queue_url;
    deps.backend = context_.backend;
    deps.address_of = [this](const std::string& id) -> std::optional<ep::Endpoint> {
      std::lock_guard lock(addr_mu_);
      auto it = addresses_.find(id);
      if (it == addresses_.end()) return std::nullopt;
      return it->second;
    };
    deps.repoll = [this] { trigger(); };
    deps.server_states = context_.server_states;
    worker = std::make_unique<LifecycleWorker>(options_, std::move(deps));
    {
      std::lock_guard lock(sqs_mu_);
      worker_ = worker.get();
    }
    loop.set_lifecycle_handler(
        [this, w = worker.get()](const AsgMessage& action, const SqsMessage& message) {
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
          return w->add(action, message);
        });
    hook_thread = std::thread([this, w = worker.get()] {
      for (;;) {
        {
          std::unique_lock lock(mu_);
          cv_.wait_for(lock, options_.hook_check_interval, [this] { return stopping_; });
          if (stopping_ || sqs_stop_.load()) return;
        }
        w->step();
      }
    });
    log::info(kLog, "{}: completing lifecycle hook '{}' (heartbeat every {} ms)", describe(),
              options_.lifecycle_hook, options_.heartbeat_interval.count());
  }
  log::info(kLog, "{}: consuming events from {}", describe(), options_.queue_url);
  while (!sqs_stop_.load()) {
    auto r = loop.run_once();
    {
      std::lock_guard lock(sqs_mu_);
      sqs_totals_ = loop.totals();
    }
    if (sqs_stop_.load()) break;
    if (!r) {
      log::warn(kLog, "{}: SQS: {}", describe(), r.error().message);
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::seconds(5), [this] { return stopping_; });
    }
  }
  {
    std::lock_guard lock(mu_);
    if (hook_in_flight_) hook_in_flight_->cancel();
  }
  cv_.notify_all();
  if (hook_thread.joinable()) hook_thread.join();
  {
    std::lock_guard lock(sqs_mu_);
    if (worker_) lifecycle_stats_ = worker_->stats();
    worker_ = nullptr;
  }
  std::lock_guard lock(mu_);
  sqs_in_flight_ = nullptr;
  hook_in_flight_ = nullptr;
}

void AsgSource::trigger() {
  {
    std::lock_guard lock(mu_);
    triggered_ = true;
  }
  cv_.notify_all();
}

void AsgSource::run(discovery::Sink& sink) {
  std::unique_ptr<Setup> setup;
  std::optional<std::vector<ep::Endpoint>> last;
  bool last_failed = false;
  // The SQS thread uses `setup` (credentials, endpoints): join it before `setup` goes away.
  struct JoinSqs {
    AsgSource* self;
    ~JoinSqs() {
      self->sqs_stop_ = true;
      {
        std::lock_guard lock(self->mu_);
        if (self->sqs_in_flight_) self->sqs_in_flight_->cancel();
        if (self->hook_in_flight_) self->hook_in_flight_->cancel();
      }
      self->cv_.notify_all();
      self->done_cv_.notify_all();
      if (self->sqs_thread_.joinable()) self->sqs_thread_.join();
      std::lock_guard lock(self->mu_);
      self->in_flight_ = nullptr;  // the client dies with `setup`
    }
  } join_sqs{this};
  for (;;) {
    std::uint64_t seq = 0;
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      triggered_ = false;
      seq = ++poll_started_;
    }
    bool ok = false;
    if (!setup) {
      auto made = make_setup();
      if (made) {
        setup = std::move(*made);
        std::lock_guard lock(mu_);
        in_flight_ = setup->http.get();
        if (stopping_) in_flight_->cancel();
        if (!options_.queue_url.empty() && !stopping_) {
          Setup* s = setup.get();
          sqs_thread_ = std::thread([this, s] { run_sqs(*s); });
        }
      } else {
        failures_.failure(made.error().message);
        sink.publish(Error{made.error().kind, describe() + ": " + made.error().message});
        last_failed = true;
      }
    }
    if (setup) {
      auto result = poll_asgs(*setup->client, setup->endpoints, options_);
      ++polls_;
      {
        std::lock_guard lock(mu_);
        if (stopping_) return;  // a cancelled request is not a failure to report
      }
      if (result) {
        last_api_calls_ = result->api_calls;
        {
          std::lock_guard lock(addr_mu_);
          if (addresses_.size() > 20000) addresses_.clear();  // bound an ever-churning fleet
          for (const auto& [id, e] : result->addresses) addresses_[id] = e;
          groups_seen_ = std::set<std::string>(result->groups.begin(), result->groups.end());
        }
        failures_.success();
        for (const auto& s : result->skipped) log::debug(kLog, "{}: skipped {}", describe(), s);
        if (!last || *last != result->endpoints || last_failed) {
          log::info(kLog, "{}: {} servers ({} API calls)", describe(), result->endpoints.size(),
                    result->api_calls);
          last = result->endpoints;
          sink.publish(std::move(result->endpoints));
        }
        last_failed = false;
        ok = true;
      } else {
        failures_.failure(result.error().message);
        sink.publish(Error{result.error().kind, describe() + ": " + result.error().message});
        last_failed = true;
      }
    }
    std::unique_lock lock(mu_);
    poll_done_ = seq;
    poll_done_ok_ = ok;
    done_cv_.notify_all();
    cv_.wait_for(lock, options_.interval, [this] { return stopping_ || triggered_; });
    if (stopping_) return;
  }
}

discovery::Snapshot AsgSource::fetch_once(std::chrono::milliseconds timeout) {
  auto made = make_setup();
  if (!made) return Error{made.error().kind, describe() + ": " + made.error().message};
  (void)timeout;  // each HTTP request is bounded by the client's timeouts and the retry cap
  auto result = poll_asgs(*(*made)->client, (*made)->endpoints, options_);
  if (!result) return Error{result.error().kind, describe() + ": " + result.error().message};
  return std::move(result->endpoints);
}

}  // namespace ep::aws

namespace ep::discovery::aws {

SourceKind source_kind() {
  return SourceKind{"aws_asg",
                    [](const ConfigNode& node, Diagnostics& diag,
                       const SourceContext& context) -> std::unique_ptr<Source> {
                      auto options = ep::aws::parse_asg_options(node, diag);
                      if (!options) return nullptr;
                      return std::make_unique<ep::aws::AsgSource>(std::move(*options), context);
                    }};
}

}  // namespace ep::discovery::aws
