#include "app/wiring.h"

#include "core/log.h"
#include "core/metrics.h"
#include "discovery/aws/asg_source.h"
#include "discovery/aws/ec2_source.h"
#include "discovery/consul/consul_source.h"
#include "discovery/dns/dns_source.h"
#include "discovery/etcd/etcd_source.h"
#include "discovery/file/file_source.h"
#include "discovery/kubernetes/kubernetes_source.h"
#include "discovery/static/static_source.h"
#include "haproxy/manage/settings.h"
#include "haproxy/runtime/runtime_instance.h"

namespace ep::app {

const std::vector<discovery::SourceKind>& source_table() {
  static const std::vector<discovery::SourceKind> table = {
      discovery::file::source_kind(),    discovery::static_source::source_kind(),
      discovery::consul::source_kind(),  discovery::etcd::source_kind(),
      discovery::dns::source_kind(),     discovery::aws::source_kind(),
      discovery::aws::ec2_source_kind(),
      discovery::kubernetes::source_kind(),
  };
  return table;
}

std::vector<discovery::BackendSources> build_sources(const config::Settings& settings,
                                                     Diagnostics& diag,
                                                     const ServerStateView* server_states) {
  std::vector<discovery::BackendSources> out;
  for (const auto& backend : settings.backends) {
    discovery::BackendSources bs;
    bs.policy = backend.policy;
    discovery::SourceContext context;
    context.backend = backend.policy.name;
    context.server_states = server_states;
    context.health_checks = backend.policy.checks();
    context.metrics = &Metrics::global();
    context.base_dir = settings.file.has_parent_path() ? settings.file.parent_path()
                                                       : std::filesystem::current_path();
    for (const auto& spec : backend.sources) {
      const discovery::SourceKind* kind = nullptr;
      for (const auto& k : source_table()) {
        if (k.name == spec.kind) kind = &k;
      }
      if (kind == nullptr) {
        std::string known;
        for (const auto& k : source_table())
          known += (known.empty() ? "" : ", ") + std::string(k.name);
        diag.error(spec.mark, "unknown source kind '" + spec.kind + "' (known: " + known + ")");
        continue;
      }
      auto source = kind->create(spec.options, diag, context);
      if (source) bs.sources.push_back(std::move(source));
    }
    if (backend.sources.empty()) {
      diag.error(backend.mark, "backend '" + backend.policy.name + "' has no sources");
    }
    out.push_back(std::move(bs));
  }
  return out;
}

namespace {

// update: config — HAProxy changes only through a reload of the rendered config (ConfigManager).
// The reconciler still observes (status, metrics, restart detection), but its runtime actions are
// answered "not yet": they are applied by the next reload, after which the diff is empty.
class ConfigModeInstance : public reconcile::Instance {
 public:
  explicit ConfigModeInstance(std::unique_ptr<reconcile::Instance> inner)
      : inner_(std::move(inner)) {}
  std::string name() const override { return inner_->name(); }
  Result<reconcile::InstanceInfo> info() override { return inner_->info(); }
  Result<std::vector<ActualBackend>> observe(const std::vector<std::string>& backends) override {
    return inner_->observe(backends);
  }
  Result<std::vector<ActualBackend>> observe_all(
      const std::vector<std::string>& backends) override {
    return inner_->observe_all(backends);
  }
  Result<std::vector<ActualBackend>> observe_for_change(
      const std::vector<std::string>& backends) override {
    return inner_->observe_for_change(backends);
  }
  Result<std::vector<ActualBackend>> observe_states(
      const std::vector<std::string>& backends, const std::vector<std::size_t>& held) override {
    return inner_->observe_states(backends, held);
  }
  std::vector<reconcile::ActionResult> apply(const reconcile::Plan& plan,
                                             const reconcile::BackendPolicy&) override {
    return std::vector<reconcile::ActionResult>(
        plan.actions.size(),
        {reconcile::ActionResult::Outcome::kNotYet, "update: config (applied by the next reload)"});
  }

 private:
  std::unique_ptr<reconcile::Instance> inner_;
};

}  // namespace

std::vector<std::unique_ptr<reconcile::Instance>> build_instances(
    const config::Settings& settings) {
  std::vector<std::unique_ptr<reconcile::Instance>> out;
  for (const auto& socket : settings.haproxy.sockets) {
    std::unique_ptr<reconcile::Instance> inst =
        std::make_unique<haproxy::RuntimeInstance>(socket, settings.haproxy.timeout);
    if (settings.haproxy.update == config::UpdateMode::kConfig) {
      inst = std::make_unique<ConfigModeInstance>(std::move(inst));
    }
    out.push_back(std::move(inst));
  }
  return out;
}

std::vector<reconcile::BackendPolicy> policies(const config::Settings& settings) {
  std::vector<reconcile::BackendPolicy> out;
  for (const auto& b : settings.backends) out.push_back(b.policy);
  return out;
}

Result<config::Settings> load_and_check(const std::string& path) {
  auto settings = config::load_file(path);
  if (settings) {
    Diagnostics diag;
    (void)build_sources(*settings, diag);
    haproxy::manage::check_config_management(*settings, diag);
    if (!diag.ok()) return Error::invalid(diag.joined());
    return settings;
  }
  // The settings are invalid; still report the sources' problems in the same run, so a user
  // fixes everything at once. (A file that cannot be read or parsed has nothing more to say.)
  auto root = config::load_tree(path, nullptr);
  if (!root) return settings.error();
  Diagnostics diag;
  config::Settings partial = config::settings_from_node(*root, path, diag);
  partial.file = path;
  (void)build_sources(partial, diag);
  haproxy::manage::check_config_management(partial, diag);
  return Error::invalid(diag.joined());
}

}  // namespace ep::app
