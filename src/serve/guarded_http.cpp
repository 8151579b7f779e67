#include "robometer/serve/guarded_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "robometer/core/error.h"

namespace robometer::serve {
namespace {
using Clock = std::chrono::steady_clock;

// A thread per task (connection), at most max_threads at once; more wait for a free thread.
class ThreadPerConnection : public httplib::TaskQueue {
 public:
  explicit ThreadPerConnection(int max_threads) : max_threads_(max_threads) {}
  void enqueue(std::function<void()> fn) override {
    std::lock_guard<std::mutex> lk(mu_);
    if (running_ >= max_threads_) {
      waiting_.push_back(std::move(fn));
      return;
    }
    ++running_;
    std::thread([this, f = std::move(fn)]() mutable { work(std::move(f)); }).detach();
  }
  void shutdown() override {
    std::unique_lock<std::mutex> lk(mu_);
    idle_.wait(lk, [&] { return running_ == 0 && waiting_.empty(); });
  }

 private:
  void work(std::function<void()> fn) {
    for (;;) {
      try {
        fn();
      } catch (...) {  // an escaping exception would terminate the process
      }
      std::lock_guard<std::mutex> lk(mu_);
      if (waiting_.empty()) {
        --running_;
        idle_.notify_all();
        return;
      }
      fn = std::move(waiting_.front());
      waiting_.pop_front();
    }
  }
  const int max_threads_;
  std::mutex mu_;
  std::condition_variable idle_;
  int running_ = 0;
  std::deque<std::function<void()>> waiting_;
};

std::string address_of(const sockaddr_storage& a, int& port) {
  char buf[INET6_ADDRSTRLEN] = {0};
  port = -1;
  if (a.ss_family == AF_INET) {
    const auto* s = reinterpret_cast<const sockaddr_in*>(&a);
    inet_ntop(AF_INET, &s->sin_addr, buf, sizeof(buf));
    port = ntohs(s->sin_port);
  } else if (a.ss_family == AF_INET6) {
    const auto* s = reinterpret_cast<const sockaddr_in6*>(&a);
    inet_ntop(AF_INET6, &s->sin6_addr, buf, sizeof(buf));
    port = ntohs(s->sin6_port);
  }
  return buf;
}

// A socket stream whose reads end at a deadline for the whole request, with a small read
// buffer (httplib reads request lines byte by byte).
class DeadlineStream : public httplib::Stream {
 public:
  DeadlineStream(socket_t sock, Clock::time_point deadline, int read_timeout_s)
      : sock_(sock), deadline_(deadline), read_timeout_ms_(read_timeout_s * 1000) {}

  bool is_readable() const override { return pos_ < len_ || wait(POLLIN, read_wait_ms()); }
  bool is_writable() const override { return wait(POLLOUT, 5000); }

  ssize_t read(char* ptr, size_t size) override {
    if (pos_ == len_) {
      if (!wait(POLLIN, read_wait_ms())) return -1;
      ssize_t n;
      do n = ::recv(sock_, buf_, sizeof(buf_), 0);
      while (n < 0 && errno == EINTR);
      if (n <= 0) return n;
      pos_ = 0;
      len_ = static_cast<size_t>(n);
    }
    const size_t k = std::min(size, len_ - pos_);
    std::copy(buf_ + pos_, buf_ + pos_ + k, ptr);
    pos_ += k;
    return static_cast<ssize_t>(k);
  }
  ssize_t write(const char* ptr, size_t size) override {
    if (!is_writable()) return -1;
    ssize_t n;
    do n = ::send(sock_, ptr, size, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n;
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage a{};
    socklen_t l = sizeof(a);
    if (::getpeername(sock_, reinterpret_cast<sockaddr*>(&a), &l) == 0) ip = address_of(a, port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage a{};
    socklen_t l = sizeof(a);
    if (::getsockname(sock_, reinterpret_cast<sockaddr*>(&a), &l) == 0) ip = address_of(a, port);
  }
  socket_t socket() const override { return sock_; }
  bool has_buffered() const { return pos_ < len_; }
  void set_deadline(Clock::time_point d) { deadline_ = d; }

 private:
  int read_wait_ms() const {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now()).count();
    return static_cast<int>(std::max<int64_t>(0, std::min<int64_t>(left, read_timeout_ms_)));
  }
  bool wait(short events, int ms) const {
    pollfd p{sock_, events, 0};
    int r;
    do r = ::poll(&p, 1, ms);
    while (r < 0 && errno == EINTR);
    return r > 0;
  }
  socket_t sock_;
  Clock::time_point deadline_;
  int read_timeout_ms_;
  char buf_[4096];
  size_t pos_ = 0, len_ = 0;
};

void send_refusal(socket_t sock, int status, const std::string& message) {
  const std::string body = "{\"error\": \"" + message + "\"}";
  const std::string reply =
      "HTTP/1.1 " + std::to_string(status) + (status == 429 ? " Too Many Requests" : " Service Unavailable") +
      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\nConnection: close\r\n\r\n" + body;
  (void)::send(sock, reply.data(), reply.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  // Read what the client already sent (briefly), so that closing does not reset the
  // connection before the client has read the reply.
  ::shutdown(sock, SHUT_WR);
  char sink[4096];
  const auto until = Clock::now() + std::chrono::milliseconds(200);
  pollfd p{sock, POLLIN, 0};
  while (Clock::now() < until && ::poll(&p, 1, 50) > 0)
    if (::recv(sock, sink, sizeof(sink), MSG_DONTWAIT) <= 0) break;
}

}  // namespace

struct GuardedHttpServer::State {
  ConnectionLimits limits;
  mutable std::mutex mu;
  std::map<std::string, int> per_client;
  std::set<socket_t> open;
  bool closing = false;
  socket_t listen_socket = INVALID_SOCKET;  // seen in the socket-options callback
};

GuardedHttpServer::GuardedHttpServer(ConnectionLimits limits) : state_(std::make_shared<State>()) {
  const ConnectionLimits& l = limits;
  if (l.max_connections < 1 || l.max_connections_per_client < 1 || l.read_timeout_s < 1 ||
      l.request_timeout_s < 1 || l.keep_alive_timeout_s < 0 || l.keep_alive_max_requests < 1)
    throw ConfigError("serve: connection limits and timeouts must be >= 1");
  state_->limits = limits;
  // Spare threads so that connections over the cap are refused at once instead of waiting.
  const int threads = l.max_connections + 8;
  new_task_queue = [threads] { return new ThreadPerConnection(threads); };
  set_read_timeout(l.read_timeout_s, 0);
  set_keep_alive_timeout(l.keep_alive_timeout_s);
  set_keep_alive_max_count(static_cast<size_t>(l.keep_alive_max_requests));
  // httplib calls this on the listening socket only, before bind: remember it.
  set_socket_options([st = state_](socket_t sock) {
    httplib::default_socket_options(sock);
    std::lock_guard<std::mutex> lk(st->mu);
    st->listen_socket = sock;
  });
}

void GuardedHttpServer::widen_listen_backlog() {
  std::lock_guard<std::mutex> lk(state_->mu);
  // listen() again on a listening socket only changes its backlog (Linux, BSD).
  if (state_->listen_socket != INVALID_SOCKET)
    ::listen(state_->listen_socket, std::max(128, state_->limits.max_connections));
}

GuardedHttpServer::~GuardedHttpServer() = default;

void GuardedHttpServer::close_all_connections() {
  std::lock_guard<std::mutex> lk(state_->mu);
  state_->closing = true;
  for (socket_t s : state_->open) ::shutdown(s, SHUT_RDWR);
}

int GuardedHttpServer::open_connections() const {
  std::lock_guard<std::mutex> lk(state_->mu);
  return static_cast<int>(state_->open.size());
}

bool GuardedHttpServer::process_and_close_socket(socket_t sock) {
  State& st = *state_;
  const ConnectionLimits& l = st.limits;
  const auto accepted = Clock::now();
  sockaddr_storage peer{};
  socklen_t plen = sizeof(peer);
  int port = -1;
  const std::string client =
      ::getpeername(sock, reinterpret_cast<sockaddr*>(&peer), &plen) == 0 ? address_of(peer, port) : "?";
  int refuse = 0;
  std::string why;
  {
    std::lock_guard<std::mutex> lk(st.mu);
    if (st.closing) {
      refuse = 503;
      why = "server stopping";
    } else if (static_cast<int>(st.open.size()) >= l.max_connections) {
      refuse = 503;
      why = "server already has " + std::to_string(st.open.size()) +
            " open connections, its limit; raise it with serve --max-connections";
    } else if (st.per_client[client] >= l.max_connections_per_client) {
      refuse = 429;
      why = "client " + client + " already has " + std::to_string(st.per_client[client]) +
            " open connections, its limit; raise it with serve --max-connections-per-client";
    } else {
      ++st.per_client[client];
      st.open.insert(sock);
    }
  }
  if (refuse) {
    send_refusal(sock, refuse, why);
    ::close(sock);
    return false;
  }

  bool ok = true;
  DeadlineStream strm(sock, accepted + std::chrono::seconds(l.request_timeout_s), l.read_timeout_s);
  for (int n = 0; n < l.keep_alive_max_requests; ++n) {
    if (n > 0) {  // idle wait for the next request on this connection, then its own deadline
      if (!strm.has_buffered()) {
        pollfd p{sock, POLLIN, 0};
        int r;
        do r = ::poll(&p, 1, l.keep_alive_timeout_s * 1000);
        while (r < 0 && errno == EINTR);
        if (r <= 0) break;
      }
      strm.set_deadline(Clock::now() + std::chrono::seconds(l.request_timeout_s));
    }
    bool closing;
    {
      std::lock_guard<std::mutex> lk(st.mu);
      closing = st.closing;
    }
    bool connection_closed = false;
    const bool last = closing || n + 1 == l.keep_alive_max_requests;
    try {
      ok = process_request(strm, last, connection_closed, nullptr);
    } catch (...) {  // e.g. bad_alloc while reading; the socket must still be released below
      ok = false;
    }
    if (!ok || connection_closed || last) break;
  }
  {
    std::lock_guard<std::mutex> lk(st.mu);
    st.open.erase(sock);
    if (--st.per_client[client] <= 0) st.per_client.erase(client);
    ::shutdown(sock, SHUT_RDWR);
    ::close(sock);
  }
  return ok;
}

}  // namespace robometer::serve
