#pragma once
// Connects the aws_asg source's lifecycle hooks to the reconciler: installs the process-wide
// ServerStateProbe (discovery/aws/lifecycle.h) that answers "is this server drained / UP on
// every reachable HAProxy" from Reconciler::status().

namespace ep::reconcile {
class Reconciler;
}

namespace ep::app {

// Installs the probe over `reconciler` (which must outlive it), or removes it (nullptr). Call
// with the reconciler before the sources start, and with nullptr after they stopped.
void install_aws_probe(const reconcile::Reconciler* reconciler);

}  // namespace ep::app
