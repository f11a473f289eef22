// The Consul double (consul_double.h) as a program, for tests written in another language (the
// browser tests): listens on 127.0.0.1 (a free port), prints "127.0.0.1:PORT" and a newline on
// stdout, and serves until SIGTERM or SIGINT. Services are registered through its HTTP API
// (PUT /v1/agent/service/register), as with a real agent. EP_CONSUL_ACL_TOKEN, when set, turns
// ACLs on with that token.
#include <signal.h>

#include <cstdio>
#include <cstdlib>

#include "support/consul/consul_double.h"

int main() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // before the server's threads start
  ep::test::ConsulDouble consul;
  if (const char* token = std::getenv("EP_CONSUL_ACL_TOKEN"); token != nullptr && *token) {
    consul.set_acl_token(token);
  }
  consul.start();
  std::printf("%s\n", consul.address().c_str());
  std::fflush(stdout);
  int sig = 0;
  while (sigwait(&set, &sig) != 0) {
  }
  consul.stop();
  return 0;
}
