// AWS JSON: SQS ReceiveMessage replies, the message bodies (raw Auto Scaling notifications,
// lifecycle hooks, SNS envelopes, EventBridge events) through classify_message and the SQS loop's
// decide(), and the JSON error document.
#include "discovery/aws/parse.h"
#include "discovery/aws/sqs_events.h"
#include "fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto text = ep::fuzz::as_text(data, size);
  if (auto messages = ep::aws::parse_receive_message(text)) {
    for (const auto& message : *messages) {
      (void)message.receive_count();
      auto decision = ep::aws::decide(message.body);
      (void)ep::aws::to_string(decision.action);
    }
  }
  if (auto message = ep::aws::classify_message(text)) {
    (void)ep::aws::to_string(message->kind);
    (void)ep::aws::to_string(message->envelope);
    (void)message->terminating();
    (void)message->launching();
  } else {
    EP_FUZZ_CHECK(!message.error().message.empty());
  }
  auto decision = ep::aws::decide(text);
  EP_FUZZ_CHECK(!decision.summary.empty() || decision.action != ep::aws::MessageAction::kRepoll);
  if (auto error = ep::aws::parse_json_error(text, "AWS.SimpleQueueService.NonExistentQueue;Sender")) {
    (void)ep::aws::to_string(ep::aws::classify_error(*error, 400));
  }
  return 0;
}
