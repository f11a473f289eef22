#pragma once
// reconcile::Instance over one HAProxy admin socket (haproxy-runtime.md 3, 4, 10).
//
// Every call uses one fresh connection (AdminSocket). apply() runs a plan's actions in rounds on
// that one connection: round k pipelines step k of every action still in progress, so a step is
// sent only after the same action's previous step was accepted (a failed `add server` is reported
// with its own text and its `set server … state ready` is never sent). A reply "Proxy is
// disabled." (connection attached to an old worker after a reload) makes the whole plan run again
// once on a new connection. Not thread-safe (the reconciler thread is the only writer).

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "haproxy/runtime/admin_socket.h"
#include "reconcile/applier.h"

namespace ep::haproxy {

class RuntimeInstance : public reconcile::Instance {
 public:
  // `socket_path`: HAProxy's admin-level stats socket. `timeout` bounds connect and every read.
  RuntimeInstance(std::string socket_path, std::chrono::milliseconds timeout);

  // What this instance sent and read, since construction (for tests and benchmarks).
  struct IoCounters {
    std::uint64_t connections = 0;
    std::uint64_t commands = 0;  // lines sent
    std::uint64_t bytes_read = 0;
  };

  std::string name() const override { return admin_.path(); }
  Result<reconcile::InstanceInfo> info() override;
  // Targeted: one connection, `show servers state <be>` + `show stat <iid> 6 -1` per backend
  // (the proxy id learned from an earlier read; by name the first time). The cost follows the
  // number of backends asked, not the size of HAProxy. When the stat read misses the backend (a
  // stale id, or a frontend of the same name answered a lookup by name), one `show stat -1 6 -1`
  // settles it and refreshes the ids. A backend HAProxy does not know gets exists=false. Errors:
  // kInvalid for a bad backend name or an unparseable reply, kUnavailable when HAProxy cannot be
  // reached.
  Result<std::vector<ActualBackend>> observe(const std::vector<std::string>& backends) override;
  // Targeted, light: one connection, `show servers state <be>` + `show stat <iid> 2 -1` (the
  // BACKEND row alone) per backend, then observe() of the backends with a draining server. A
  // backend whose BACKEND row the read missed (stale id, frontend of the same name) goes through
  // observe() too.
  Result<std::vector<ActualBackend>> observe_for_change(
      const std::vector<std::string>& backends) override;
  // Whole: `show servers state` + `show stat -1 6 -1` (two commands whatever the number of
  // backends); refreshes every proxy id.
  Result<std::vector<ActualBackend>> observe_all(const std::vector<std::string>& backends) override;
  // Resync: `show servers state` + `show stat -1 2 -1` (BACKEND rows only), then one targeted
  // read (observe()) of the backends with a draining server. HAProxy prints one stat row per
  // backend instead of one per server: at 1,000 x 10 the read costs about a third. Every
  // backend comes with its rows_digest; the rows of a backend whose digest is `held` are not
  // parsed (unchanged = true), so a resync of settled backends costs one pass over the text.
  Result<std::vector<ActualBackend>> observe_states(
      const std::vector<std::string>& backends, const std::vector<std::size_t>& held) override;
  std::vector<reconcile::ActionResult> apply(const reconcile::Plan& plan,
                                             const reconcile::BackendPolicy& policy) override;

  IoCounters io() const { return io_; }

 private:
  // observe() and observe_for_change(): `server_rows` false reads the BACKEND row alone and
  // fills `recheck` with the indexes of the backends observe() must read again (draining servers,
  // a missed stat read).
  Result<std::vector<ActualBackend>> observe_targeted(const std::vector<std::string>& backends,
                                                      bool server_rows,
                                                      std::vector<std::size_t>* recheck);
  // admin_.run() with the counters.
  Result<std::vector<std::string>> run(const std::vector<std::string>& lines);
  void count(const std::vector<std::string>& lines, const std::vector<std::string>& replies);
  // `show servers state` + `stat_command` (every proxy) on one connection, assembled per backend;
  // refreshes every proxy id.
  // With `held` (observe_states), digests every backend's rows and skips parsing the held ones.
  Result<std::vector<ActualBackend>> read_whole(const std::vector<std::string>& backends,
                                                const std::string& stat_command,
                                                const std::vector<std::size_t>* held = nullptr);

  AdminSocket admin_;
  std::map<std::string, int, std::less<>> proxy_ids_;  // backend name -> HAProxy proxy id
  // Backend name -> balance algorithm, from the BACKEND rows of the process `algorithms_pid_`
  // (0: none read yet). A backend and its algorithm change only with a new process, which
  // info() sees (its pid): until then a states-only resync (observe_states) needs no `show stat`.
  std::map<std::string, std::string, std::less<>> algorithms_;
  long algorithms_pid_ = 0;
  long seen_pid_ = 0;  // the pid of the last info()
  IoCounters io_;
};

}  // namespace ep::haproxy
