#pragma once
// Errors as values across modules. Shaped like std::expected (g++ 12 has no <expected>).

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace ep {

enum class ErrorKind {
  kInvalid,      // bad input: config, payload, reply; retrying the same input will not help
  kUnavailable,  // peer down, timeout, connection refused; retry later
  kNotYet,       // a precondition is not met yet (e.g. server still has sessions); retry later
  kRefused,      // the peer understood and said no (e.g. HAProxy rejected a command)
  kInternal,     // a bug or an impossible state
};

const char* to_string(ErrorKind kind);

struct Error {
  ErrorKind kind = ErrorKind::kInternal;
  std::string message;

  static Error invalid(std::string m) { return {ErrorKind::kInvalid, std::move(m)}; }
  static Error unavailable(std::string m) { return {ErrorKind::kUnavailable, std::move(m)}; }
  static Error not_yet(std::string m) { return {ErrorKind::kNotYet, std::move(m)}; }
  static Error refused(std::string m) { return {ErrorKind::kRefused, std::move(m)}; }
  static Error internal(std::string m) { return {ErrorKind::kInternal, std::move(m)}; }
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { assert(ok()); return std::get<0>(v_); }
  const T& value() const& { assert(ok()); return std::get<0>(v_); }
  T&& value() && { assert(ok()); return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const { assert(!ok()); return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { assert(!ok_); return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

using Status = Result<void>;

}  // namespace ep
