#pragma once
// Coroutines on a runtime loop, for handlers whose logic is a sequence of waits (AWS polls with
// pagination and retries, the SQS consumer, lifecycle hooks): the code reads like the blocking
// version, but every co_await suspends on the loop instead of blocking a thread.
//
//   Co<Result<std::string>> fetch(...) { auto r = co_await http_request(client, req); ... }
//   Spawned top = spawn(run());   // starts at once; destroying `top` destroys the whole chain
//
// Rules:
//  - a Co<T> is lazy: it runs when awaited (or spawned) and resumes its awaiter when it returns;
//  - every coroutine of a chain runs on the loop thread that resumes it (the loop whose timer or
//    request completed), so a handler keeps all of its coroutines on its one loop;
//  - destroying a suspended chain (Spawned::reset(), on the loop thread) destroys every frame and
//    the awaiter it waits in: a pending sleep's timer and a pending request are cancelled, and
//    nothing of the chain runs again. That is how a handler stops.
// Exceptions are not used (a coroutine that throws terminates).

#include <coroutine>
#include <exception>
#include <optional>
#include <utility>

#include "core/clock.h"
#include "runtime/loop.h"

namespace ep::runtime {

template <typename T>
class Co;

namespace detail {

struct PromiseBase {
  std::coroutine_handle<> continuation;
  std::suspend_always initial_suspend() noexcept { return {}; }
  struct Final {
    bool await_ready() noexcept { return false; }
    template <typename P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
      auto c = h.promise().continuation;
      return c ? c : std::noop_coroutine();
    }
    void await_resume() noexcept {}
  };
  Final final_suspend() noexcept { return {}; }
  void unhandled_exception() { std::terminate(); }
};

template <typename T>
struct Promise : PromiseBase {
  std::optional<T> value;
  Co<T> get_return_object();
  template <typename U>
  void return_value(U&& v) {
    value.emplace(std::forward<U>(v));
  }
};

template <>
struct Promise<void> : PromiseBase {
  Co<void> get_return_object();
  void return_void() {}
};

}  // namespace detail

template <typename T>
class [[nodiscard]] Co {
 public:
  using promise_type = detail::Promise<T>;
  using Handle = std::coroutine_handle<promise_type>;

  Co() = default;  // empty: nothing to run
  explicit Co(Handle h) : h_(h) {}
  Co(Co&& o) noexcept : h_(std::exchange(o.h_, {})) {}
  Co& operator=(Co&& o) noexcept {
    if (this != &o) {
      reset();
      h_ = std::exchange(o.h_, {});
    }
    return *this;
  }
  Co(const Co&) = delete;
  Co& operator=(const Co&) = delete;
  ~Co() { reset(); }

  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiter) noexcept {
    h_.promise().continuation = awaiter;
    return h_;
  }
  T await_resume() {
    if constexpr (!std::is_void_v<T>) return std::move(*h_.promise().value);
  }

  // Top-level use (spawn): start it / whether it returned.
  void start() { h_.resume(); }
  bool done() const { return !h_ || h_.done(); }
  void reset() {
    if (h_) std::exchange(h_, {}).destroy();
  }

 private:
  Handle h_{};
};

namespace detail {
template <typename T>
Co<T> Promise<T>::get_return_object() {
  return Co<T>(std::coroutine_handle<Promise<T>>::from_promise(*this));
}
inline Co<void> Promise<void>::get_return_object() {
  return Co<void>(std::coroutine_handle<Promise<void>>::from_promise(*this));
}
}  // namespace detail

// A top-level chain: started at once (call on the loop thread that will run it); reset() or the
// destructor destroys it (on that loop thread).
using Spawned = Co<void>;
inline Spawned spawn(Co<void> co) {
  co.start();
  return co;
}

// co_await sleep(loop, d): resumes on `loop` after `d`. Destroyed while pending (its chain
// destroyed): the timer is cancelled. On a stopped loop it never resumes.
class Sleep {
 public:
  Sleep(Loop& loop, Duration d) : loop_(loop), d_(d) {}
  Sleep(const Sleep&) = delete;
  Sleep& operator=(const Sleep&) = delete;
  ~Sleep() {
    if (id_ != 0) loop_.cancel(id_);
  }
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) {
    id_ = loop_.after(d_, [this, h] {
      id_ = 0;
      h.resume();
    });
  }
  void await_resume() const noexcept {}

 private:
  Loop& loop_;
  Duration d_;
  TimerId id_ = 0;
};
inline Sleep sleep(Loop& loop, Duration d) { return Sleep(loop, d); }

}  // namespace ep::runtime
