#include "discovery/aws/asg_source.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "discovery/aws/endpoints.h"
#include "discovery/aws/profile.h"
#include "discovery/aws/requests.h"
#include "os/strings.h"
#include "runtime/co.h"

extern char** environ;

namespace ep::aws {

namespace {

constexpr std::string_view kLog = "aws_asg";

// A request that ran out of time (curl's CURLE_OPERATION_TIMEDOUT, as net/ formats it): the
// endpoint is frozen or black-holed, not refusing or throttling.
bool timed_out(const Error& e) { return e.message.find("(curl error 28)") != std::string::npos; }

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

// The endpoint for one instance (an ASG member when `g`/`m` are given), or nullopt with the
// reason in `skip`.
std::optional<ep::Endpoint> instance_endpoint(const Ec2Instance& ec2, const AsgOptions& options,
                                              std::string& skip,
                                              const AutoScalingGroup* g = nullptr,
                                              const AsgInstance* m = nullptr) {
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
    skip = fmt::format("{}: no {} address", ec2.instance_id, to_string(options.address));
    return std::nullopt;
  }
  e.port = static_cast<std::uint32_t>(options.port);
  if (!options.port_tag.empty()) {
    if (auto tag = ec2.tag(options.port_tag)) {
      if (auto p = parse_number(*tag, 1, 65535)) {
        e.port = static_cast<std::uint32_t>(*p);
      } else {
        skip = fmt::format("{}: tag {}='{}' is not a port (1-65535)", ec2.instance_id,
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
  if (!e.weight && m != nullptr && options.weight_from_capacity) {
    if (auto w = m->weight(); w && *w <= 256) e.weight = *w;
  }
  if (!e.weight && options.weight) e.weight = *options.weight;
  const std::string zone =
      m != nullptr && !m->availability_zone.empty() ? m->availability_zone : ec2.availability_zone;
  e.backup = options.backup_other_zones && zone != options.local_zone;
  e.id = ec2.instance_id;
  e.labels["availability_zone"] = zone;
  if (g != nullptr) e.labels["asg"] = g->name;
  e.labels["instance_id"] = ec2.instance_id;
  return e;
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
      auto e = instance_endpoint(ec2, options, skip, &g, &m);
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

AsgPollResult build_ec2_endpoints(const std::vector<Ec2Instance>& instances,
                                  const AsgOptions& options) {
  AsgPollResult out;
  std::set<std::string> seen;
  for (const auto& ec2 : instances) {
    if (!seen.insert(ec2.instance_id).second) continue;
    if (ec2.state_code != 16) {  // the filter asks for running ones; a stale reply may differ
      out.skipped.push_back(
          fmt::format("{}: EC2 state '{}', not running", ec2.instance_id, ec2.state_name));
      continue;
    }
    std::string skip;
    auto e = instance_endpoint(ec2, options, skip);
    if (!e) {
      out.skipped.push_back(skip);
      continue;
    }
    out.addresses[ec2.instance_id] = *e;
    out.endpoints.push_back(std::move(*e));
  }
  std::sort(out.endpoints.begin(), out.endpoints.end(),
            [](const ep::Endpoint& a, const ep::Endpoint& b) { return a.id < b.id; });
  return out;
}

// Every page of one DescribeInstances query (NextToken until it is empty), appended to
// `instances`; `calls` counts the requests. A NextToken that comes back twice is an error.
runtime::Co<Status> describe_instances_pages(
    AsyncAwsClient& client, Endpoint endpoint,
    std::function<Result<QueryParams>(const std::string& token)> params_for,
    std::vector<Ec2Instance>& instances, int& calls) {
  std::string token;
  std::set<std::string> tokens_seen;
  do {
    auto params = params_for(token);
    if (!params) co_return params.error();
    ++calls;
    auto body = co_await client.call_query(AwsService::kEc2, endpoint, "DescribeInstances", *params);
    if (!body) co_return body.error();
    auto page = parse_describe_instances(*body);
    if (!page) co_return Error{page.error().kind, "DescribeInstances: " + page.error().message};
    for (auto& i : page->instances) instances.push_back(std::move(i));
    token = page->next_token;
    if (!token.empty() && !tokens_seen.insert(token).second) {
      co_return Error::invalid("DescribeInstances: NextToken repeats; giving up");
    }
  } while (!token.empty());
  co_return Status{};
}

runtime::Co<Result<AsgPollResult>> poll_ec2(AsyncAwsClient& client, AsgEndpoints endpoints,
                                            const AsgOptions& options) {
  int calls = 0;
  std::vector<Ec2Instance> instances;
  Status pages = co_await describe_instances_pages(
      client, endpoints.ec2,
      [&options](const std::string& token) {
        return describe_instances_by_filters_params(options.ec2_filters, token);
      },
      instances, calls);
  if (!pages) co_return pages.error();
  AsgPollResult result = build_ec2_endpoints(instances, options);
  result.api_calls = calls;
  co_return result;
}

runtime::Co<Result<AsgPollResult>> poll_aws(AsyncAwsClient& client, AsgEndpoints endpoints,
                                            const AsgOptions& options) {
  if (options.ec2) co_return co_await poll_ec2(client, endpoints, options);
  co_return co_await poll_asgs(client, endpoints, options);
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
    : options_(std::move(options)),
      context_(std::move(context)),
      runtime_(std::move(runtime)),
      failures_(
          options_.ec2 ? "aws_ec2" : "aws_asg",
          fmt::format("{} poll for backend '{}'", options_.ec2 ? "EC2" : "ASG", context_.backend)) {
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
  if (options_.ec2) {
    std::string filters;
    for (const auto& [name, values] : options_.ec2_filters) {
      std::string v;
      for (const auto& x : values) v += (v.empty() ? "" : ",") + x;
      filters += (filters.empty() ? "" : " ") + name + "=" + v;
    }
    return fmt::format("aws_ec2 {}", filters);
  }
  std::string names;
  for (const auto& g : options_.groups) names += (names.empty() ? "" : ",") + g;
  return fmt::format("aws_asg {}", names);
}

Result<std::optional<ProfileFile>> AsgSource::profile_files() const {
  if (!runtime_.config_file && !runtime_.credentials_file) return std::optional<ProfileFile>{};
  auto config =
      parse_profile_file(runtime_.config_file.value_or(""), ProfileFileKind::kConfig, "config");
  if (!config) return config.error();
  auto creds = parse_profile_file(runtime_.credentials_file.value_or(""),
                                  ProfileFileKind::kCredentials, "credentials");
  if (!creds) return creds.error();
  return std::optional<ProfileFile>(merge_profile_files(*config, *creds));
}

namespace {
const Profile* find_profile(const std::optional<ProfileFile>& files, const std::string& name) {
  if (!files) return nullptr;
  auto it = files->profiles.find(name);
  return it == files->profiles.end() ? nullptr : &it->second;
}

std::string region_steps(const std::string& profile_name) {
  return fmt::format("`region` in the source, AWS_REGION, AWS_DEFAULT_REGION, profile '{}' region",
                     profile_name);
}
}  // namespace

Result<AsgSource::RegionPlan> AsgSource::region_plan() const {
  auto files = profile_files();
  if (!files) return files.error();
  const std::string profile_name = selected_profile_name(options_.profile, runtime_.env);
  const Profile* profile = find_profile(*files, profile_name);
  RegionPlan plan;
  if (!region_needs_imds(options_.region, runtime_.env, profile)) {
    auto r = resolve_region(options_.region, runtime_.env, profile);
    if (!r) return r.error();
    plan.region = *r;
    return plan;
  }
  if (imds_disabled(runtime_.env)) {
    return Error::invalid(
        fmt::format("no AWS region: none of {} is set, and instance metadata is "
                    "off (AWS_EC2_METADATA_DISABLED=true)",
                    region_steps(profile_name)));
  }
  plan.imds_endpoint = imds_endpoint_url(runtime_.env);
  return plan;
}

std::vector<std::string> AsgSource::check_notes() const {
  auto plan = region_plan();
  if (!plan) return {describe() + ": " + plan.error().message};
  if (plan->region) {
    return {fmt::format("{}: region {} (from {})", describe(), plan->region->region,
                        plan->region->source)};
  }
  return {
      fmt::format("{}: no region configured; it will be asked of the instance metadata "
                  "(IMDSv2 placement/region at {}) at start",
                  describe(), plan->imds_endpoint)};
}

runtime::Co<Result<std::unique_ptr<AsgSource::Setup>>> AsgSource::make_setup(
    runtime::Loop& loop) {
  auto setup = std::make_unique<Setup>();
  setup->http = std::make_unique<net::AsyncHttpClient>(loop);
  auto loaded = profile_files();
  if (!loaded) co_return loaded.error();
  std::optional<ProfileFile> files = std::move(*loaded);
  const std::string profile_name = selected_profile_name(options_.profile, runtime_.env);
  const Profile* profile = find_profile(files, profile_name);
  auto plan = region_plan();
  if (!plan) co_return plan.error();
  std::string imds_region;
  if (!plan->region) {
    // Like the SDKs: IMDSv2 token PUT, then GET placement/region (1 s timeouts, one retry on 401),
    // as requests on the loop.
    HttpCredentialFetcherOptions io;
    io.imds_timeout = runtime_.imds_timeout;
    AsyncHttpCredentialFetcher imds(*setup->http, std::move(io));
    auto answer = co_await imds.imds_get(plan->imds_endpoint, "placement/region");
    if (!answer) {
      co_return Error{
          answer.error().kind == ErrorKind::kInvalid ? ErrorKind::kInvalid
                                                     : ErrorKind::kUnavailable,
          fmt::format("no AWS region: none of {} is set, and the instance metadata at {} "
                      "did not give one ({})",
                      region_steps(profile_name), plan->imds_endpoint, answer.error().message)};
    }
    imds_region = std::string(os::trim(*answer));
    if (imds_region.empty()) {
      co_return Error::unavailable(
          fmt::format("no AWS region: instance metadata at {} answered an empty placement/region",
                      plan->imds_endpoint));
    }
  }
  auto region = resolve_region(options_.region, runtime_.env, profile, imds_region);
  if (!region) co_return region.error();
  if (!imds_region.empty()) {
    log::info(kLog, "{}: region {} from instance metadata ({})", describe(), region->region,
              plan->imds_endpoint);
  }
  const ProfileFile* pf = files ? &*files : nullptr;
  auto as = resolve_endpoint(AwsService::kAutoScaling, region->region,
                             options_.autoscaling_endpoint, runtime_.env, profile, pf);
  if (!as) co_return as.error();
  auto ec2 = resolve_endpoint(AwsService::kEc2, region->region, options_.ec2_endpoint, runtime_.env,
                              profile, pf);
  if (!ec2) co_return ec2.error();
  auto sqs = resolve_endpoint(AwsService::kSqs, region->region, options_.sqs_endpoint, runtime_.env,
                              profile, pf);
  if (!sqs) co_return sqs.error();
  auto sts = resolve_endpoint(AwsService::kSts, region->region, options_.sts_endpoint, runtime_.env,
                              profile, pf);
  if (!sts) co_return sts.error();
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
    if (!plan) co_return plan.error();
    log::info(kLog, "credentials from {}", plan->description);
    HttpCredentialFetcherOptions fo;
    fo.default_region = region->region;
    fo.imds_timeout = runtime_.imds_timeout;
    const Endpoint sts_endpoint = *sts;
    // STS in the source's region uses the resolved endpoint (with its overrides); a profile
    // that names another region for its role gets that region's default endpoint.
    fo.sts_endpoint =
        [sts_endpoint, region = region->region, env = runtime_.env,
         configured = !options_.sts_endpoint.empty()](const std::string& r) -> Result<Endpoint> {
      if (r == region || configured) return sts_endpoint;
      return resolve_endpoint(AwsService::kSts, r, "", env, nullptr, nullptr);
    };
    setup->fetcher = std::make_unique<AsyncHttpCredentialFetcher>(*setup->http, std::move(fo));
    setup->credentials = std::make_unique<AsyncCachingCredentialProvider>(*plan, *setup->fetcher);
  }
  setup->region = region->region;
  co_return std::move(setup);
}

// co_await Wake{source}: the poll loop waits `interval`, or less when trigger() is called.
struct AsgSource::Wake {
  AsgSource& s;
  bool await_ready() {
    std::lock_guard lock(s.mu_);
    return s.triggered_;
  }
  void await_suspend(std::coroutine_handle<> h) {
    s.poll_waiter_ = h;
    s.poll_timer_ = s.loop_->after(s.options_.interval, [&s = s] {
      s.poll_timer_ = 0;
      std::exchange(s.poll_waiter_, {}).resume();
    });
  }
  void await_resume() {}
  ~Wake() {
    if (s.poll_timer_ != 0) s.loop_->cancel(s.poll_timer_);
    s.poll_timer_ = 0;
    s.poll_waiter_ = {};
  }
};

// co_await PollWait{source, target, timeout}: until poll number `target` finished (its result),
// or false after `timeout`.
struct AsgSource::PollWait {
  AsgSource& s;
  std::uint64_t target;
  std::chrono::milliseconds timeout;
  std::coroutine_handle<> h{};
  runtime::TimerId timer = 0;
  bool listed = false;
  bool ok = false;
  bool await_ready() {
    std::lock_guard lock(s.mu_);
    if (s.poll_done_ < target) return false;
    ok = s.poll_done_ok_;
    return true;
  }
  void await_suspend(std::coroutine_handle<> handle) {
    h = handle;
    listed = true;
    s.poll_waiters_.push_back(this);
    timer = s.loop_->after(timeout, [this] {
      timer = 0;
      unlist();
      ok = false;
      h.resume();
    });
  }
  bool await_resume() const { return ok; }
  void unlist() {
    if (!listed) return;
    listed = false;
    std::erase(s.poll_waiters_, this);
  }
  ~PollWait() {
    if (timer != 0) s.loop_->cancel(timer);
    unlist();
  }
};

Status AsgSource::start(discovery::Sink& sink) {
  {
    std::lock_guard lock(mu_);
    if (started_) return Error::internal("aws_asg source already started");
  }
  own_runtime_ = std::make_unique<runtime::Runtime>(runtime::RuntimeOptions{.threads = 1});
  Status st = start_on(*own_runtime_, sink);
  if (!st) own_runtime_.reset();
  return st;
}

Status AsgSource::start_on(runtime::Runtime& runtime, discovery::Sink& sink) {
  {
    std::lock_guard lock(mu_);
    if (started_) return Error::internal("aws_asg source already started");
    if (stopping_) return Error::internal("aws_asg source: stopped sources cannot restart");
    started_ = true;
  }
  loop_ = &runtime.loop();
  sink_ = &sink;
  alive_ = std::make_shared<bool>(true);
  loop_->run_sync([this] { poll_task_ = runtime::spawn(poll_loop()); });
  return {};
}

void AsgSource::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  done_cv_.notify_all();
  if (loop_ == nullptr) return;
  // On the loop: destroying the chains cancels their timers and requests; nothing of the source
  // runs afterwards.
  loop_->run_sync([this] {
    *alive_ = false;
    hook_task_.reset();
    sqs_task_.reset();
    poll_task_.reset();
    {
      std::lock_guard lock(sqs_mu_);
      if (worker_ != nullptr) lifecycle_stats_ = worker_->stats();
      worker_ = nullptr;
    }
    worker_owned_.reset();
    sqs_.reset();
    client_.reset();
    setup_.reset();
  });
  loop_ = nullptr;
  if (own_runtime_) {
    own_runtime_->stop();
    own_runtime_.reset();
  }
}

bool AsgSource::trigger_and_wait(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  const std::uint64_t target = poll_started_ + 1;
  lock.unlock();
  trigger();
  lock.lock();
  done_cv_.wait_for(lock, timeout, [&] { return stopping_ || poll_done_ >= target; });
  return !stopping_ && poll_done_ >= target && poll_done_ok_;
}

runtime::Co<bool> AsgSource::repoll_and_wait(std::chrono::milliseconds timeout) {
  std::uint64_t target = 0;
  {
    std::lock_guard lock(mu_);
    target = poll_started_ + 1;
  }
  trigger();
  co_return co_await PollWait{*this, target, timeout};
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

void AsgSource::trigger() {
  runtime::Loop* loop = nullptr;
  std::shared_ptr<bool> alive;
  {
    std::lock_guard lock(mu_);
    triggered_ = true;
    if (stopping_ || !started_) return;
    loop = loop_;
    alive = alive_;
  }
  if (loop == nullptr) return;
  loop->post([this, alive] {
    if (!*alive || !poll_waiter_) return;
    if (poll_timer_ != 0) loop_->cancel(poll_timer_);
    poll_timer_ = 0;
    std::exchange(poll_waiter_, {}).resume();
  });
}

void AsgSource::start_event_consumers() {
  if (options_.queue_url.empty()) return;
  sqs_ = std::make_unique<SqsEventLoop>(*client_, setup_->endpoints.sqs, options_.queue_url,
                                        static_cast<int>(options_.wait_seconds),
                                        [this] { return repoll_and_wait(options_.timeout * 4); },
                                        std::min<std::chrono::milliseconds>(
                                            options_.timeout, std::chrono::seconds(10)));
  if (!options_.hooks().empty()) {
    LifecycleWorker::Deps deps;
    deps.client = client_.get();
    deps.autoscaling = setup_->endpoints.autoscaling;
    deps.sqs = setup_->endpoints.sqs;
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
        co_await runtime::sleep(*loop_, gap);
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
    co_await runtime::sleep(*loop_, options_.hook_check_interval);
    co_await worker_owned_->step();
  }
}

void AsgSource::poll_finished(std::uint64_t seq, bool ok) {
  {
    std::lock_guard lock(mu_);
    poll_done_ = seq;
    poll_done_ok_ = ok;
  }
  done_cv_.notify_all();
  std::vector<PollWait*> ready;
  for (PollWait* w : poll_waiters_) {
    if (w->target <= seq) ready.push_back(w);
  }
  for (PollWait* w : ready) {
    w->unlist();
    if (w->timer != 0) loop_->cancel(w->timer);
    w->timer = 0;
    w->ok = ok;
  }
  for (PollWait* w : ready) w->h.resume();
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

runtime::Co<void> AsgSource::poll_loop() {
  for (;;) {
    std::uint64_t seq = 0;
    {
      std::lock_guard lock(mu_);
      triggered_ = false;
      seq = ++poll_started_;
    }
    bool ok = false;
    bool poll_timed_out = false;
    if (!setup_) {
      auto made = co_await make_setup(*loop_);
      if (made) {
        setup_ = std::move(*made);
        client_ = std::make_unique<AsyncAwsClient>(*loop_, *setup_->credentials, setup_->region,
                                                   runtime_.retry, runtime_.client_env);
        start_event_consumers();
      } else {
        failures_.failure(made.error().message);
        sink_->publish(Error{made.error().kind, describe() + ": " + made.error().message});
        last_failed_ = true;
      }
    }
    if (setup_) {
      auto result = co_await poll_aws(*client_, setup_->endpoints, options_);
      ++polls_;
      if (result) {
        last_api_calls_ = result->api_calls;
        {
          std::lock_guard lock(addr_mu_);
          serve_only_admitted_pending(*result);
          if (addresses_.size() > 20000) addresses_.clear();  // bound an ever-churning fleet
          for (const auto& [id, e] : result->addresses) addresses_[id] = e;
          groups_seen_ = std::set<std::string>(result->groups.begin(), result->groups.end());
        }
        failures_.success();
        for (const auto& sk : result->skipped) log::debug(kLog, "{}: skipped {}", describe(), sk);
        if (!last_ || *last_ != result->endpoints || last_failed_) {
          log::info(kLog, "{}: {} servers ({} API calls)", describe(), result->endpoints.size(),
                    result->api_calls);
          last_ = result->endpoints;
          sink_->publish(std::move(result->endpoints));
        }
        last_failed_ = false;
        ok = true;
      } else {
        failures_.failure(result.error().message);
        poll_timed_out = timed_out(result.error());
        sink_->publish(Error{result.error().kind, describe() + ": " + result.error().message});
        last_failed_ = true;
      }
    }
    poll_finished(seq, ok);
    // A poll that failed because a request ran out of time (a frozen or black-holed endpoint) is
    // sent again at once: the timeout already spaced the requests (one per `timeout`), and the
    // next one waits on the endpoint, so the set is read as soon as it answers again, whatever
    // `interval` is (#16.1). Any other failure (refused, throttled past the retries, access
    // denied) waits `interval` as before.
    if (!poll_timed_out) co_await Wake{*this};
  }
}

discovery::Snapshot AsgSource::fetch_once(std::chrono::milliseconds timeout) {
  // The setup and one poll on a private manual runtime driven by this thread.
  runtime::Runtime rt({.threads = 0});
  std::optional<Result<AsgPollResult>> result;
  std::unique_ptr<Setup> setup;
  std::unique_ptr<AsyncAwsClient> client;
  auto run = [&]() -> runtime::Co<void> {
    auto made = co_await make_setup(rt.loop(0));
    if (!made) {
      result.emplace(made.error());
      co_return;
    }
    setup = std::move(*made);
    client = std::make_unique<AsyncAwsClient>(rt.loop(0), *setup->credentials, setup->region,
                                              runtime_.retry, runtime_.client_env);
    result.emplace(co_await poll_aws(*client, setup->endpoints, options_));
  };
  runtime::Spawned task = runtime::spawn(run());
  rt.run_until([&] { return result.has_value(); }, timeout);
  task.reset();
  client.reset();
  setup.reset();
  if (!result) return Error::unavailable(describe() + ": no answer in time");
  if (!*result) return Error{result->error().kind, describe() + ": " + result->error().message};
  {
    std::lock_guard lock(addr_mu_);
    serve_only_admitted_pending(**result);  // nothing admitted here: no Pending instance
  }
  return std::move((**result).endpoints);
}

}  // namespace ep::aws

namespace ep::discovery::aws {

SourceKind ec2_source_kind() {
  return SourceKind{"aws_ec2",
                    [](const ConfigNode& node, Diagnostics& diag,
                       const SourceContext& context) -> std::unique_ptr<Source> {
                      auto options = ep::aws::parse_ec2_options(node, diag);
                      if (!options) return nullptr;
                      return std::make_unique<ep::aws::AsgSource>(std::move(*options), context);
                    }};
}

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
