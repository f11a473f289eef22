#pragma once
// A tiny HTTP/1.1 server on 127.0.0.1:<free port> for HAProxy integration tests.
//
// Every request gets "200 OK" with the backend's name as the body (keep-alive honoured), except
// requests for the path "/hold": those stay unanswered (the connection, and HAProxy's session to
// this server, stays open) until release_held() is called. One background thread; the destructor
// stops it and closes every connection. Thread-safe accessors.

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace ep::test {

class HttpBackend {
 public:
  explicit HttpBackend(std::string name);
  // Listens on `port` (e.g. one reserved with free_port() earlier, so a server can be configured
  // at an address where nothing listens yet); ok() is false when it cannot be bound.
  HttpBackend(std::string name, int port);
  ~HttpBackend();
  HttpBackend(const HttpBackend&) = delete;
  HttpBackend& operator=(const HttpBackend&) = delete;

  const std::string& name() const { return name_; }
  int port() const { return port_; }
  bool ok() const { return listen_fd_ >= 0; }  // false when bind/listen failed

  long requests() const { return requests_.load(); }  // requests received (held ones included)
  int held() const { return held_.load(); }           // "/hold" requests not yet answered
  void release_held();                                // answers every held request

 private:
  void loop();

  std::string name_;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};  // pipe to wake the loop (stop / release)
  int port_ = 0;
  std::atomic<long> requests_{0};
  std::atomic<int> held_{0};
  std::atomic<bool> stop_{false};
  std::atomic<bool> release_{false};
  std::thread thread_;
};

}  // namespace ep::test
