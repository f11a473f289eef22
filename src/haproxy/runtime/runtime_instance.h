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
#include <string>
#include <vector>

#include "haproxy/runtime/admin_socket.h"
#include "reconcile/applier.h"

namespace ep::haproxy {

class RuntimeInstance : public reconcile::Instance {
 public:
  // `socket_path`: HAProxy's admin-level stats socket. `timeout` bounds connect and every read.
  RuntimeInstance(std::string socket_path, std::chrono::milliseconds timeout);

  std::string name() const override { return admin_.path(); }
  Result<reconcile::InstanceInfo> info() override;
  // One connection: `show servers state <be>` + `show stat <be> -1 -1` per backend. A backend
  // HAProxy does not know gets exists=false. Only kInvalid errors for a bad backend name or an
  // unparseable reply, kUnavailable when HAProxy cannot be reached.
  Result<std::vector<ActualBackend>> observe(const std::vector<std::string>& backends) override;
  std::vector<reconcile::ActionResult> apply(const reconcile::Plan& plan,
                                             const reconcile::BackendPolicy& policy) override;

 private:
  AdminSocket admin_;
};

}  // namespace ep::haproxy
