// Hot paths in Google Benchmark, on 10,000-server inputs:
//   diff of desired vs actual sets (reconcile/diff.h), `show servers state` parsing
//   (haproxy/runtime/parsers.h), command batch building (haproxy/runtime/commands.h), template
//   rendering (haproxy/config/render.h). Inputs are generated in the shape HAProxy 2.6 prints.
// And the dashboard's /status?compact document (ops/endpoints.h status_json) for 1,000 backends ×
// 10 servers on one HAProxy instance.

#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "haproxy/config/render.h"
#include "haproxy/config/template.h"
#include "haproxy/runtime/commands.h"
#include "haproxy/runtime/parsers.h"
#include "ops/endpoints.h"
#include "reconcile/diff.h"

namespace {

std::string addr(int i) {
  return "10." + std::to_string(i / 62500) + "." + std::to_string((i / 250) % 250) + "." +
         std::to_string(1 + i % 250);
}

ep::ServerSpec spec(int i) {
  ep::ServerSpec s;
  s.address = addr(i);
  s.port = 8080;
  s.weight = 1;
  s.name = "ep-" + s.address_port();
  return s;
}

ep::ActualServer actual(int i) {
  ep::ActualServer a;
  const ep::ServerSpec s = spec(i);
  a.name = s.name;
  a.address = s.address;
  a.port = s.port;
  a.op_state = 2;
  a.admin_state = 0;
  a.weight = 1;
  return a;
}

ep::DesiredBackend desired(int n, int first) {
  ep::DesiredBackend d;
  d.backend = "web";
  for (int i = first; i < first + n; ++i) d.servers.push_back(spec(i));
  std::sort(d.servers.begin(), d.servers.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  return d;
}

ep::ActualBackend actual_backend(int n) {
  ep::ActualBackend a;
  a.backend = "web";
  a.exists = true;
  a.algorithm = "roundrobin";
  for (int i = 0; i < n; ++i) a.servers.push_back(actual(i));
  return a;
}

ep::reconcile::BackendPolicy policy() {
  ep::reconcile::BackendPolicy p;
  p.name = "web";
  p.drain_timeout = std::chrono::milliseconds(0);
  return p;
}

// 10,000 desired vs 10,000 in HAProxy, `changed` of them replaced (removed + added).
void BM_Diff(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const int changed = static_cast<int>(state.range(1));
  const auto d = desired(n, changed);
  const auto a = actual_backend(n);
  const auto p = policy();
  const ep::reconcile::DrainBook drains;
  const ep::SteadyTime now{};
  size_t actions = 0;
  for (auto _ : state) {
    auto plan = ep::reconcile::diff(d, a, p, ep::reconcile::BackendMode::kDynamic, drains, now);
    actions = plan.actions.size();
    benchmark::DoNotOptimize(plan);
  }
  state.counters["actions"] = static_cast<double>(actions);
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_Diff)
    ->Args({10000, 0})
    ->Args({10000, 100})
    ->Args({10000, 10000})
    ->Unit(benchmark::kMillisecond);

std::string servers_state_text(int n) {
  std::string s =
      "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight "
      "srv_iweight srv_time_since_last_change srv_check_status srv_check_result "
      "srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn "
      "srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr "
      "srv_agent_port\n";
  for (int i = 0; i < n; ++i) {
    const auto sp = spec(i);
    s += "3 web " + std::to_string(i + 1) + " " + sp.name + " " + sp.address +
         " 2 0 1 1 12 6 3 4 6 0 0 0 - 8080 - 0 0 - - 0\n";
  }
  s += "\n";
  return s;
}

void BM_ParseServersState(benchmark::State& state) {
  const std::string text = servers_state_text(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    auto r = ep::haproxy::parse_servers_state(text);
    if (!r.ok() || r->rows.size() != static_cast<size_t>(state.range(0))) {
      state.SkipWithError("parse failed");
      break;
    }
    benchmark::DoNotOptimize(r);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(text.size()));
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_ParseServersState)->Arg(10000)->Unit(benchmark::kMillisecond);

// What adding N servers sends: add server (in maint) + enable health + health-gated warm line,
// joined into ≤16,000-byte writes.
void BM_BuildAddBatch(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  std::vector<ep::ServerSpec> specs;
  for (int i = 0; i < n; ++i) specs.push_back(spec(i));
  size_t bytes = 0;
  for (auto _ : state) {
    std::vector<std::string> writes;
    std::string cur;
    for (const auto& s : specs) {
      auto add = ep::haproxy::cmd::add_server("web", s.name, s.address, s.port, s.weight, false,
                                              "check inter 2s");
      auto health = ep::haproxy::cmd::enable_health("web", s.name);
      auto ready = ep::haproxy::cmd::warm_line("web", s.name, true);
      if (!add.ok() || !health.ok() || !ready.ok()) {
        state.SkipWithError("builder refused a valid server");
        return;
      }
      for (const std::string* c : {&*add, &*health, &*ready}) {
        if (cur.size() + c->size() + 1 > 16000) {
          writes.push_back(std::move(cur));
          cur.clear();
        }
        cur += *c;
        cur += ';';
      }
    }
    writes.push_back(std::move(cur));
    bytes = 0;
    for (const auto& w : writes) bytes += w.size();
    benchmark::DoNotOptimize(writes);
  }
  state.counters["bytes"] = static_cast<double>(bytes);
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_BuildAddBatch)->Arg(10000)->Unit(benchmark::kMillisecond);

void BM_RenderTemplate(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  auto tpl = ep::haproxy::config::parse_template(
      "global\n  stats socket /run/haproxy/admin.sock level admin\ndefaults\n  mode http\n"
      "frontend fe\n  bind :80\n  default_backend web\nbackend web\n  balance roundrobin\n"
      "  {{ servers \"web\" }}\n",
      "bench.tmpl");
  if (!tpl.ok()) {
    state.SkipWithError("template");
    return;
  }
  ep::haproxy::config::RenderBackend be;
  be.name = "web";
  be.server_options = "check inter 2s";
  for (int i = 0; i < n; ++i) be.servers.push_back(actual(i));
  const std::vector<ep::haproxy::config::RenderBackend> backends = {be};
  size_t bytes = 0;
  for (auto _ : state) {
    auto out = ep::haproxy::config::render(*tpl, backends);
    if (!out.ok()) {
      state.SkipWithError("render failed");
      break;
    }
    bytes = out->size();
    benchmark::DoNotOptimize(out);
  }
  state.counters["bytes"] = static_cast<double>(bytes);
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_RenderTemplate)->Arg(10000)->Unit(benchmark::kMillisecond);

// /status?compact for `backends` backends × 10 servers (desired and actual), one HAProxy, one
// source per backend: what the dashboard fetches on its first render.
void BM_StatusJson(benchmark::State& state) {
  const int backends = static_cast<int>(state.range(0));
  constexpr int kServers = 10;
  ep::ops::OpsSnapshot snap;
  snap.now = ep::SteadyTime{} + std::chrono::hours(1);
  snap.last_loop = snap.now;
  snap.sources_ready = snap.converged = true;
  ep::reconcile::InstanceStatus inst;
  inst.name = "/run/haproxy/admin.sock";
  inst.reachable = true;
  inst.info.version = "2.6.12";
  for (int b = 0; b < backends; ++b) {
    ep::reconcile::BackendStatus bs;
    bs.backend = "backend-" + std::to_string(b);
    bs.ready = bs.converged = true;
    bs.desired = bs.actual = kServers;
    bs.mode = ep::reconcile::BackendMode::kDynamic;
    std::vector<ep::ServerSpec> ds;
    std::vector<ep::ActualServer> as;
    for (int i = 0; i < kServers; ++i) {
      ds.push_back(spec(b * kServers + i));
      as.push_back(actual(b * kServers + i));
    }
    bs.desired_servers = ep::SharedList<ep::ServerSpec>(std::move(ds));
    bs.actual_servers = ep::SharedList<ep::ActualServer>(std::move(as));
    inst.backends.push_back(std::move(bs));
    ep::discovery::GuardStatus g;
    g.backend = "backend-" + std::to_string(b);
    g.ready = true;
    g.desired = kServers;
    ep::discovery::SourceStatus src;
    src.source = "consul service backend-" + std::to_string(b);
    src.delivered = true;
    src.endpoints = kServers;
    src.last_success = snap.now - std::chrono::seconds(3);
    g.sources.push_back(std::move(src));
    snap.guards.push_back(std::move(g));
  }
  snap.instances.push_back(std::move(inst));
  const std::optional<ep::ops::OpsSnapshot> opt(std::move(snap));
  const ep::ops::EndpointOptions options{"bench", std::chrono::seconds(30)};
  size_t bytes = 0;
  for (auto _ : state) {
    auto out = ep::ops::status_json(opt, options, true);
    bytes = out.size();
    benchmark::DoNotOptimize(out);
  }
  state.counters["bytes"] = static_cast<double>(bytes);
  state.SetItemsProcessed(state.iterations() * backends * kServers);
}
BENCHMARK(BM_StatusJson)->Arg(1000)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
