#include "discovery/aws/sqs_events.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/log.h"
#include "discovery/aws/requests.h"

namespace ep::aws {

namespace {
constexpr std::string_view kLog = "aws_sqs";
constexpr size_t kMaxCarried = 100;
}  // namespace

const char* to_string(MessageAction a) {
  switch (a) {
    case MessageAction::kRepoll:
      return "repoll";
    case MessageAction::kAck:
      return "ack";
    case MessageAction::kDrop:
      return "drop";
  }
  return "?";
}

MessageDecision decide(std::string_view body) {
  auto m = classify_message(body);
  if (!m) return {MessageAction::kDrop, "malformed: " + m.error().message, std::nullopt};
  const std::string via = to_string(m->envelope);
  switch (m->kind) {
    case MessageKind::kAsgNotification:
      return {MessageAction::kRepoll,
              fmt::format("{} {} group {} ({})", m->event, m->instance_id,
                          m->auto_scaling_group_name, via),
              *m};
    case MessageKind::kLifecycleAction:
      return {MessageAction::kRepoll,
              fmt::format("{} {} group {} hook {} ({})", m->lifecycle_transition, m->instance_id,
                          m->auto_scaling_group_name, m->lifecycle_hook_name, via),
              *m};
    case MessageKind::kTestNotification:
      return {MessageAction::kAck, fmt::format("test notification ({})", via), *m};
    case MessageKind::kUnknown:
      return {MessageAction::kAck, fmt::format("ignored: {} ({})", m->reason, via), *m};
  }
  return {MessageAction::kAck, "?", std::nullopt};
}

SqsEventLoop::SqsEventLoop(AsyncAwsClient& client, Endpoint sqs, std::string queue_url,
                           int wait_seconds, std::function<runtime::Co<bool>()> apply,
                           std::chrono::milliseconds slack)
    : client_(client),
      sqs_(std::move(sqs)),
      queue_url_(std::move(queue_url)),
      wait_seconds_(wait_seconds),
      slack_(slack),
      apply_(std::move(apply)) {}

runtime::Co<Result<SqsBatchResult>> SqsEventLoop::run_once() {
  auto body = sqs_receive_message_body(queue_url_, 10, wait_seconds_, std::nullopt);
  if (!body) co_return body.error();
  auto reply = co_await client_.call_sqs(sqs_, "ReceiveMessage", *body, receive_timeout());
  if (!reply) co_return reply.error();
  auto messages = parse_receive_message(*reply);
  if (!messages)
    co_return Error{messages.error().kind, "ReceiveMessage: " + messages.error().message};
  // A message received again (its visibility ran out) replaces its carried copy.
  std::erase_if(carried_, [&](const Carried& c) {
    return std::any_of(messages->begin(), messages->end(),
                       [&](const SqsMessage& m) { return m.message_id == c.message.message_id; });
  });

  SqsBatchResult r;
  r.received = static_cast<int>(messages->size());
  std::vector<const SqsMessage*> to_delete, after_apply;
  std::vector<std::pair<const SqsMessage*, AsgMessage>> actions;
  // Messages whose re-poll failed last time ride along with this batch's re-poll: any later
  // successful poll applies them (level-triggered), so they need not wait for redelivery.
  const std::vector<Carried> carried = std::move(carried_);
  carried_.clear();
  for (const auto& c : carried) {
    if (c.action) {
      actions.emplace_back(&c.message, *c.action);
    } else {
      after_apply.push_back(&c.message);
    }
  }
  for (const auto& m : *messages) {
    MessageDecision d = decide(m.body);
    switch (d.action) {
      case MessageAction::kRepoll:
        log::info(kLog, "message {}: {}", m.message_id, d.summary);
        if (take_lifecycle_ && d.message && d.message->kind == MessageKind::kLifecycleAction) {
          actions.emplace_back(&m, std::move(*d.message));
        } else {
          after_apply.push_back(&m);
        }
        break;
      case MessageAction::kAck:
        log::info(kLog, "message {}: {}; deleting", m.message_id, d.summary);
        to_delete.push_back(&m);
        break;
      case MessageAction::kDrop:
        log::warn(kLog, "message {} (receive count {}): {}; deleting", m.message_id,
                  m.receive_count(), d.summary);
        ++r.malformed;
        to_delete.push_back(&m);
        break;
    }
  }
  if (!after_apply.empty() || !actions.empty()) {
    ++r.repolls;
    if (co_await apply_()) {
      to_delete.insert(to_delete.end(), after_apply.begin(), after_apply.end());
      for (const auto& [m, action] : actions) {
        if (take_lifecycle_(action, *m)) {
          ++r.lifecycle;
        } else {
          to_delete.push_back(m);
        }
      }
    } else {
      log::warn(kLog, "re-poll failed; {} message(s) kept for the next re-poll (or redelivery)",
                after_apply.size() + actions.size());
      r.kept += static_cast<int>(after_apply.size() + actions.size());
      for (const SqsMessage* m : after_apply) carried_.push_back({*m, std::nullopt});
      for (const auto& [m, action] : actions) carried_.push_back({*m, action});
      // Bounded: anything beyond comes back through SQS after its visibility timeout.
      if (carried_.size() > kMaxCarried) {
        carried_.erase(carried_.begin(),
                       carried_.begin() + static_cast<long>(carried_.size() - kMaxCarried));
      }
    }
  }
  for (const SqsMessage* m : to_delete) {
    auto del = co_await client_.call_sqs(sqs_, "DeleteMessage",
                                         sqs_delete_message_body(queue_url_, m->receipt_handle));
    if (del) {
      ++r.deleted;
    } else {
      ++r.kept;
      log::warn(kLog, "message {}: {}", m->message_id, del.error().message);
    }
  }
  totals_.received += r.received;
  totals_.repolls += r.repolls;
  totals_.deleted += r.deleted;
  totals_.kept += r.kept;
  totals_.malformed += r.malformed;
  totals_.lifecycle += r.lifecycle;
  co_return r;
}

}  // namespace ep::aws
