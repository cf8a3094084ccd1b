// StopSignals: how a server program (chorus-node, chorus-serve) waits for SIGINT or SIGTERM. Made
// first in main, it blocks both signals in this thread and every thread started afterwards, so they
// are never delivered to a thread that happens to run; wait() takes the first one that comes.
#pragma once

#include <csignal>
#include <pthread.h>

namespace chorus {

class StopSignals {
public:
  StopSignals() {
    sigemptyset(&signals_);
    sigaddset(&signals_, SIGINT);
    sigaddset(&signals_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals_, nullptr);
  }

  /// Blocks until SIGINT or SIGTERM arrives; returns its name.
  const char* wait() {
    int received = 0;
    sigwait(&signals_, &received);
    return received == SIGTERM ? "SIGTERM" : "SIGINT";
  }

private:
  sigset_t signals_;
};

} // namespace chorus
