#pragma once
// The SQS event consumer of the aws_asg source (docs/aws.md "Events").
//
// Long-polls one queue (ReceiveMessage, up to 10 messages, WaitTimeSeconds = wait_seconds) and
// handles each message by its classification (parse.h classify_message):
//   - ASG launch/terminate notifications (SNS-wrapped or raw) and EventBridge aws.autoscaling
//     events, and lifecycle-hook messages: `apply` is called, which re-polls the groups at once
//     (level-triggered: the message only says "look now", so a lost or duplicated message is
//     harmless). The message is deleted only when `apply` returns true (the new set was
//     published); otherwise it is kept and retried with the next ReceiveMessage round's re-poll
//     (at most wait_seconds later), and failing that comes back after the visibility timeout.
//   - autoscaling:TEST_NOTIFICATION and any other well-formed JSON (kUnknown): logged at info
//     and deleted.
//   - malformed bodies (not JSON, SNS envelope without Message, lifecycle action missing a
//     field): logged at warn and DELETED. Such a message can never become valid, so leaving it
//     would only make it come back forever; a queue redrive policy is still useful for messages
//     we fail to apply repeatedly (those are not deleted).
// Several messages in one batch that all ask for a re-poll share a single re-poll.
// Lifecycle actions: after the batch's re-poll succeeded, each one is offered to `take_lifecycle`
// (set with lifecycle hooks, lifecycle.h); when it takes the message over, the message is not
// deleted here — the LifecycleWorker deletes it once the action is completed.

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "discovery/aws/aws_client.h"
#include "discovery/aws/parse.h"
#include "runtime/co.h"

namespace ep::aws {

enum class MessageAction {
  kRepoll,  // re-poll, delete once applied
  kAck,     // delete (test notification, unknown)
  kDrop,    // malformed: delete
};
const char* to_string(MessageAction a);

struct MessageDecision {
  MessageAction action = MessageAction::kAck;
  std::string summary;  // for the log: "autoscaling:EC2_INSTANCE_TERMINATE i-… (SNS)"
  std::optional<AsgMessage> message;  // when the body was understood
};

// Pure: what to do with one message body.
MessageDecision decide(std::string_view body);

struct SqsBatchResult {
  int received = 0;
  int repolls = 0;  // apply() calls (0 or 1 per batch)
  int deleted = 0;
  int kept = 0;  // left for redelivery (apply failed, or delete failed)
  int malformed = 0;
  int lifecycle = 0;  // lifecycle actions handed to take_lifecycle
};

// Threading: a handler on one loop of the source runtime (runtime/co.h): run_once() is a
// coroutine on the client's loop; the caller drives the rounds and owns stopping (destroying the
// awaiting chain cancels the request in flight).
class SqsEventLoop {
 public:
  // `apply` re-polls and returns true when the new set was published. A ReceiveMessage may take
  // wait_seconds + `slack` (per attempt) before it counts as failed.
  SqsEventLoop(AsyncAwsClient& client, Endpoint sqs, std::string queue_url, int wait_seconds,
               std::function<runtime::Co<bool>()> apply,
               std::chrono::milliseconds slack = std::chrono::seconds(10));

  // The per-attempt timeout of a ReceiveMessage (wait_seconds + slack).
  std::chrono::milliseconds receive_timeout() const {
    return std::chrono::seconds(wait_seconds_) + slack_;
  }

  // One ReceiveMessage + handling + deletes. An error is a failed ReceiveMessage.
  runtime::Co<Result<SqsBatchResult>> run_once();

  const SqsBatchResult& totals() const { return totals_; }

  // Offered every lifecycle action (after a successful re-poll); true = taken over (not deleted
  // here).
  void set_lifecycle_handler(std::function<bool(const AsgMessage&, const SqsMessage&)> take) {
    take_lifecycle_ = std::move(take);
  }

 private:
  AsyncAwsClient& client_;
  Endpoint sqs_;
  std::string queue_url_;
  int wait_seconds_;
  std::chrono::milliseconds slack_;
  std::function<runtime::Co<bool>()> apply_;
  std::function<bool(const AsgMessage&, const SqsMessage&)> take_lifecycle_;
  struct Carried {
    SqsMessage message;
    std::optional<AsgMessage> action;  // set for lifecycle actions
  };
  std::vector<Carried> carried_;  // re-poll failed: retried with the next batch's re-poll
  SqsBatchResult totals_;
};

}  // namespace ep::aws
