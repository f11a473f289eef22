#include "app/aws_wiring.h"

#include "discovery/aws/lifecycle.h"
#include "reconcile/reconciler.h"

namespace ep::app {

void install_aws_probe(const reconcile::Reconciler* reconciler) {
  if (reconciler == nullptr) {
    aws::set_server_state_probe({});
    return;
  }
  aws::set_server_state_probe(
      [reconciler](std::string_view backend, std::string_view address, std::uint16_t port) {
        // status() is a copy taken under the reconciler's lock: safe from the source's thread.
        const std::vector<reconcile::InstanceStatus> status = reconciler->status();
        std::vector<aws::HaproxyView> views;
        views.reserve(status.size());
        for (const auto& inst : status) {
          aws::HaproxyView v;
          v.reachable = inst.reachable;
          for (const auto& b : inst.backends) {
            if (b.backend == backend) v.servers = &b.actual_servers;
          }
          views.push_back(v);
        }
        return aws::summarize(views, address, port);
      });
}

}  // namespace ep::app
