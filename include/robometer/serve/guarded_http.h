// An httplib::Server that a slow or greedy client cannot starve (slowloris):
//  - one thread per connection (up to max_connections), so a connection that trickles its
//    request holds only its own thread and /health is always answered;
//  - a deadline for the whole request (headers and body), not only for each read, so a
//    client sending one byte every few seconds is cut off after request_timeout_s;
//  - caps on open connections per client IP and in total: over a cap the connection gets an
//    immediate 429 / 503 with a JSON error and is closed;
//  - a listen backlog sized to max_connections (httplib's is 5: a burst of connects, e.g. many RL
//    workers starting at once, had SYNs dropped and waited for the kernel's 1 s retransmit).
#pragma once
#include <httplib.h>

#include <memory>

namespace robometer::serve {

struct ConnectionLimits {
  int max_connections = 256;            // open connections, all clients (--max-connections)
  int max_connections_per_client = 64;  // open connections of one client IP (--max-connections-per-client)
  int read_timeout_s = 5;               // one read waits at most this long (--read-timeout-s)
  int request_timeout_s = 30;           // a whole request must arrive within this (--request-timeout-s)
  int keep_alive_timeout_s = 5;         // idle time between requests on one connection
  int keep_alive_max_requests = 100;    // requests per connection
};

class GuardedHttpServer : public httplib::Server {
 public:
  explicit GuardedHttpServer(ConnectionLimits limits);  // throws ConfigError on a limit < 1
  ~GuardedHttpServer() override;
  GuardedHttpServer(const GuardedHttpServer&) = delete;  // a listening server
  GuardedHttpServer& operator=(const GuardedHttpServer&) = delete;

  // Wakes every open connection (blocked reads return), so that stop() does not wait for
  // idle or trickling clients.
  void close_all_connections();
  int open_connections() const;
  // Call after bind_to_port / bind_to_any_port (httplib listens with a backlog of 5).
  void widen_listen_backlog();

 private:
  bool process_and_close_socket(socket_t sock) override;
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace robometer::serve
