#include "discovery/aws/aws_source.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "discovery/aws/endpoints.h"
#include "discovery/aws/profile.h"
#include "discovery/aws/requests.h"
#include "os/strings.h"

extern char** environ;

namespace ep::aws {

namespace {

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

std::optional<ep::Endpoint> instance_endpoint(const Ec2Instance& ec2,
                                              const AwsInstanceOptions& options, std::string& skip,
                                              std::optional<long> capacity_weight,
                                              const std::string& zone_override) {
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
  if (!e.weight && capacity_weight) e.weight = *capacity_weight;
  if (!e.weight && options.weight) e.weight = *options.weight;
  const std::string zone = !zone_override.empty() ? zone_override : ec2.availability_zone;
  e.backup = options.backup_other_zones && zone != options.local_zone;
  e.id = ec2.instance_id;
  e.labels["availability_zone"] = zone;
  e.labels["instance_id"] = ec2.instance_id;
  return e;
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
    auto body =
        co_await client.call_query(AwsService::kEc2, endpoint, "DescribeInstances", *params);
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

AwsPollingSource::AwsPollingSource(const AwsConnectionOptions& connection,
                                   std::chrono::milliseconds interval,
                                   discovery::SourceContext context, AwsRuntime runtime,
                                   std::string kind, std::string what)
    : connection_(connection),
      interval_(interval),
      context_(std::move(context)),
      runtime_(std::move(runtime)),
      kind_(std::move(kind)),
      failures_(kind_, fmt::format("{} for backend '{}'", what, context_.backend)) {
  if (runtime_.read_files) {
    runtime_.env = process_env();
    const std::string home = env_or(runtime_.env, "HOME", "");
    runtime_.config_file =
        read_file(env_or(runtime_.env, "AWS_CONFIG_FILE", home + "/.aws/config"));
    runtime_.credentials_file =
        read_file(env_or(runtime_.env, "AWS_SHARED_CREDENTIALS_FILE", home + "/.aws/credentials"));
  }
}

AwsPollingSource::~AwsPollingSource() { stop(); }

Result<std::optional<ProfileFile>> AwsPollingSource::profile_files() const {
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

Result<AwsPollingSource::RegionPlan> AwsPollingSource::region_plan() const {
  auto files = profile_files();
  if (!files) return files.error();
  const std::string profile_name = selected_profile_name(connection_.profile, runtime_.env);
  const Profile* profile = find_profile(*files, profile_name);
  RegionPlan plan;
  if (!region_needs_imds(connection_.region, runtime_.env, profile)) {
    auto r = resolve_region(connection_.region, runtime_.env, profile);
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

std::vector<std::string> AwsPollingSource::check_notes() const {
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

runtime::Co<Result<std::unique_ptr<AwsPollingSource::Setup>>> AwsPollingSource::make_setup(
    runtime::Loop& loop) {
  auto setup = std::make_unique<Setup>();
  setup->http = std::make_unique<net::AsyncHttpClient>(loop);
  auto loaded = profile_files();
  if (!loaded) co_return loaded.error();
  std::optional<ProfileFile> files = std::move(*loaded);
  const std::string profile_name = selected_profile_name(connection_.profile, runtime_.env);
  const Profile* profile = find_profile(files, profile_name);
  auto plan = region_plan();
  if (!plan) co_return plan.error();
  std::string imds_region;
  if (!plan->region) {
    // Like the SDKs: IMDSv2 token PUT, then GET placement/region (1 s timeouts, one retry on 401),
    // as requests on the loop.
    HttpCredentialFetcherOptions io;
    io.imds_timeout = runtime_.imds_timeout;
    AsyncHttpCredentialFetcher imds(loop, *setup->http, std::move(io));
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
  auto region = resolve_region(connection_.region, runtime_.env, profile, imds_region);
  if (!region) co_return region.error();
  if (!imds_region.empty()) {
    log::info(kind_, "{}: region {} from instance metadata ({})", describe(), region->region,
              plan->imds_endpoint);
  }
  const ProfileFile* pf = files ? &*files : nullptr;
  auto as = resolve_endpoint(AwsService::kAutoScaling, region->region,
                             connection_.autoscaling_endpoint, runtime_.env, profile, pf);
  if (!as) co_return as.error();
  auto ec2 = resolve_endpoint(AwsService::kEc2, region->region, connection_.ec2_endpoint,
                              runtime_.env, profile, pf);
  if (!ec2) co_return ec2.error();
  auto sqs = resolve_endpoint(AwsService::kSqs, region->region, connection_.sqs_endpoint,
                              runtime_.env, profile, pf);
  if (!sqs) co_return sqs.error();
  auto sts = resolve_endpoint(AwsService::kSts, region->region, connection_.sts_endpoint,
                              runtime_.env, profile, pf);
  if (!sts) co_return sts.error();
  for (const Endpoint* e : {&*as, &*ec2, &*sqs, &*sts}) {
    if (!e->tls()) {
      log::warn(kind_, "endpoint {} ({}) is plain http: requests are signed but not encrypted",
                e->url, e->source);
    }
  }
  setup->endpoints = {*as, *ec2, *sqs};

  if (!connection_.access_key_id.empty()) {
    setup->credentials = std::make_unique<StaticCredentialProvider>(
        Credentials{connection_.access_key_id, connection_.secret_access_key,
                    connection_.session_token, std::nullopt, "configuration"});
  } else {
    ChainInputs in;
    in.env = runtime_.env;
    in.config_file = runtime_.config_file;
    in.credentials_file = runtime_.credentials_file;
    in.profile = connection_.profile;
    auto plan = plan_credentials(in);
    if (!plan) co_return plan.error();
    log::info(kind_, "credentials from {}", plan->description);
    HttpCredentialFetcherOptions fo;
    fo.default_region = region->region;
    fo.imds_timeout = runtime_.imds_timeout;
    const Endpoint sts_endpoint = *sts;
    // STS in the source's region uses the resolved endpoint (with its overrides); a profile
    // that names another region for its role gets that region's default endpoint.
    fo.sts_endpoint =
        [sts_endpoint, region = region->region, env = runtime_.env,
         configured = !connection_.sts_endpoint.empty()](const std::string& r) -> Result<Endpoint> {
      if (r == region || configured) return sts_endpoint;
      return resolve_endpoint(AwsService::kSts, r, "", env, nullptr, nullptr);
    };
    setup->fetcher =
        std::make_unique<AsyncHttpCredentialFetcher>(loop, *setup->http, std::move(fo));
    setup->credentials = std::make_unique<AsyncCachingCredentialProvider>(*plan, *setup->fetcher);
  }
  setup->region = region->region;
  co_return std::move(setup);
}

// co_await Wake{source}: the poll loop waits `interval`, or less when trigger() is called.
struct AwsPollingSource::Wake {
  AwsPollingSource& s;
  bool await_ready() {
    std::lock_guard lock(s.mu_);
    return s.triggered_;
  }
  void await_suspend(std::coroutine_handle<> h) {
    s.poll_waiter_ = h;
    s.poll_timer_ = s.loop_->after(s.interval_, [&s = s] {
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
struct AwsPollingSource::PollWait {
  AwsPollingSource& s;
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

Status AwsPollingSource::start(discovery::Sink& sink) {
  {
    std::lock_guard lock(mu_);
    if (started_) return Error::internal(kind_ + " source already started");
  }
  own_runtime_ = std::make_unique<runtime::Runtime>(runtime::RuntimeOptions{.threads = 1});
  Status st = start_on(*own_runtime_, sink);
  if (!st) own_runtime_.reset();
  return st;
}

Status AwsPollingSource::start_on(runtime::Runtime& runtime, discovery::Sink& sink) {
  {
    std::lock_guard lock(mu_);
    if (started_) return Error::internal(kind_ + " source already started");
    if (stopping_) return Error::internal(kind_ + " source: stopped sources cannot restart");
    started_ = true;
  }
  loop_ = &runtime.loop();
  sink_ = &sink;
  alive_ = std::make_shared<bool>(true);
  loop_->run_sync([this] { poll_task_ = runtime::spawn(poll_loop()); });
  return {};
}

void AwsPollingSource::stop() {
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
    on_stop();
    poll_task_.reset();
    client_.reset();
    setup_.reset();
  });
  loop_ = nullptr;
  if (own_runtime_) {
    own_runtime_->stop();
    own_runtime_.reset();
  }
}

bool AwsPollingSource::trigger_and_wait(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  const std::uint64_t target = poll_started_ + 1;
  lock.unlock();
  trigger();
  lock.lock();
  done_cv_.wait_for(lock, timeout, [&] { return stopping_ || poll_done_ >= target; });
  return !stopping_ && poll_done_ >= target && poll_done_ok_;
}

runtime::Co<bool> AwsPollingSource::repoll_and_wait(std::chrono::milliseconds timeout) {
  std::uint64_t target = 0;
  {
    std::lock_guard lock(mu_);
    target = poll_started_ + 1;
  }
  trigger();
  co_return co_await PollWait{*this, target, timeout};
}

void AwsPollingSource::trigger() {
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

void AwsPollingSource::poll_finished(std::uint64_t seq, bool ok) {
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

runtime::Co<void> AwsPollingSource::poll_loop() {
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
        on_ready();
      } else {
        failures_.failure(made.error().message);
        sink_->publish(Error{made.error().kind, describe() + ": " + made.error().message});
        last_failed_ = true;
      }
    }
    if (setup_) {
      auto result = co_await poll(*client_, setup_->endpoints);
      ++polls_;
      if (result) {
        last_api_calls_ = result->api_calls;
        on_polled(*result);
        failures_.success();
        for (const auto& sk : result->skipped) log::debug(kind_, "{}: skipped {}", describe(), sk);
        if (!last_ || *last_ != result->endpoints || last_failed_) {
          log::info(kind_, "{}: {} servers ({} API calls)", describe(), result->endpoints.size(),
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

discovery::Snapshot AwsPollingSource::fetch_once(std::chrono::milliseconds timeout) {
  // The setup and one poll on a private manual runtime driven by this thread.
  runtime::Runtime rt({.threads = 0});
  std::optional<Result<AwsPollResult>> result;
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
    result.emplace(co_await poll(*client, setup->endpoints));
  };
  runtime::Spawned task = runtime::spawn(run());
  rt.run_until([&] { return result.has_value(); }, timeout);
  task.reset();
  client.reset();
  setup.reset();
  if (!result) return Error::unavailable(describe() + ": no answer in time");
  if (!*result) return Error{result->error().kind, describe() + ": " + result->error().message};
  on_polled(**result);
  return std::move((**result).endpoints);
}

}  // namespace ep::aws
