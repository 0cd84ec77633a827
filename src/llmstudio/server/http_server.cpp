// Keep-alive loop, deadline socket stream and on-demand workers (see http_server.h).
#include "llmstudio/server/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <condition_variable>
#include <deque>
#include <list>
#include <mutex>
#include <thread>

namespace llmstudio::server {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

thread_local bool t_close_after_response = false;

// Threads started when a job finds none idle, up to `max`; a thread idle for a while ends. Jobs beyond `max`
// wait in the queue.
class OnDemandThreads : public httplib::TaskQueue {
 public:
  explicit OnDemandThreads(std::size_t max) : max_(std::max<std::size_t>(max, 1)) {}
  ~OnDemandThreads() override { shutdown(); }

  void enqueue(std::function<void()> fn) override {
    std::unique_lock<std::mutex> lock(mu_);
    jobs_.push_back(std::move(fn));
    reap(lock);
    if (idle_ < jobs_.size() && live_ < max_) {
      ++live_;
      threads_.emplace_back([this] { work(); });
    }
    cv_.notify_one();
  }

  void shutdown() override {
    std::unique_lock<std::mutex> lock(mu_);
    stop_ = true;
    cv_.notify_all();
    std::list<std::thread> all = std::move(threads_);
    lock.unlock();
    for (auto& t : all)
      if (t.joinable()) t.join();
  }

 private:
  void work() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      ++idle_;
      const bool woke = cv_.wait_for(lock, std::chrono::seconds(30), [&] { return !jobs_.empty() || stop_; });
      --idle_;
      if (jobs_.empty() && (stop_ || !woke)) break;
      if (jobs_.empty()) continue;
      auto fn = std::move(jobs_.front());
      jobs_.pop_front();
      lock.unlock();
      fn();
      lock.lock();
    }
    --live_;
    done_.push_back(std::this_thread::get_id());
  }

  // Joins threads that have ended (they only have their exit left).
  void reap(std::unique_lock<std::mutex>& lock) {
    if (done_.empty()) return;
    std::list<std::thread> ended;
    for (auto it = threads_.begin(); it != threads_.end();) {
      if (std::find(done_.begin(), done_.end(), it->get_id()) != done_.end()) ended.splice(ended.end(), threads_, it++);
      else ++it;
    }
    done_.clear();
    lock.unlock();
    for (auto& t : ended) t.join();
    lock.lock();
  }

  const std::size_t max_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  std::list<std::thread> threads_;
  std::vector<std::thread::id> done_;
  std::size_t live_ = 0, idle_ = 0;
  bool stop_ = false;
};

void address_of(socket_t sock, bool peer, std::string& ip, int& port) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  const int rc = peer ? ::getpeername(sock, reinterpret_cast<sockaddr*>(&addr), &len)
                      : ::getsockname(sock, reinterpret_cast<sockaddr*>(&addr), &len);
  if (rc != 0) return;
  char buf[INET6_ADDRSTRLEN] = {};
  if (addr.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&addr);
    ::inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
    port = ntohs(a->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&addr);
    ::inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
    port = ntohs(a->sin6_port);
  }
  ip = buf;
}

// A socket stream whose reads wait at most the per-read timeout and, during a request's line and headers, at
// most until the header deadline; every wait also ends when the server stops.
class DeadlineStream : public httplib::Stream {
 public:
  DeadlineStream(socket_t sock, const std::atomic<socket_t>& listener, milliseconds read_timeout,
                 milliseconds write_timeout)
      : sock_(sock), listener_(listener), read_timeout_(read_timeout), write_timeout_(write_timeout) {}

  void begin_headers(Clock::time_point deadline) { header_deadline_ = deadline, in_headers_ = true; }
  void end_headers() { in_headers_ = false; }
  bool in_headers() const { return in_headers_; }

  // Waits up to `idle` for the next request's first byte.
  bool wait_for_request(milliseconds idle) { return buffered() > 0 || wait(POLLIN, Clock::now() + idle); }

  bool is_readable() const override { return buffered() > 0 || wait(POLLIN, read_deadline()); }
  bool is_writable() const override {
    if (!wait(POLLOUT, Clock::now() + write_timeout_)) return false;
    char c;  // a peer that has closed reads as end of file
    pollfd p{sock_, POLLIN, 0};
    return ::poll(&p, 1, 0) == 0 || ::recv(sock_, &c, 1, MSG_PEEK | MSG_DONTWAIT) > 0 || buffered() > 0;
  }

  ssize_t read(char* ptr, size_t size) override {
    if (buffered() > 0) {
      const std::size_t n = std::min(size, buffered());
      std::copy_n(buf_.data() + off_, n, ptr);
      off_ += n;
      return static_cast<ssize_t>(n);
    }
    if (!wait(POLLIN, read_deadline())) return -1;
    if (size >= buf_.size()) return recv_some(ptr, size);
    const ssize_t n = recv_some(buf_.data(), buf_.size());
    if (n <= 0) return n;
    off_ = 0, len_ = static_cast<std::size_t>(n);
    return read(ptr, size);
  }

  ssize_t write(const char* ptr, size_t size) override {
    if (!wait(POLLOUT, Clock::now() + write_timeout_)) return -1;
    ssize_t n;
    do n = ::send(sock_, ptr, size, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n;
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override { address_of(sock_, true, ip, port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { address_of(sock_, false, ip, port); }
  socket_t socket() const override { return sock_; }

 private:
  std::size_t buffered() const { return len_ - off_; }

  Clock::time_point read_deadline() const {
    const auto d = Clock::now() + read_timeout_;
    return in_headers_ ? std::min(d, header_deadline_) : d;
  }

  // poll() for `events` until `deadline`, in slices so that a stopping server is noticed.
  bool wait(short events, Clock::time_point deadline) const {
    while (listener_ != INVALID_SOCKET) {
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return false;
      pollfd p{sock_, events, 0};
      const int rc = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 200)));
      if (rc > 0) return true;
      if (rc < 0 && errno != EINTR) return false;
    }
    return false;
  }

  ssize_t recv_some(char* ptr, std::size_t size) {
    ssize_t n;
    do n = ::recv(sock_, ptr, size, 0);
    while (n < 0 && errno == EINTR);
    return n;
  }

  socket_t sock_;
  const std::atomic<socket_t>& listener_;
  milliseconds read_timeout_, write_timeout_;
  Clock::time_point header_deadline_{};
  bool in_headers_ = false;
  std::array<char, 4096> buf_{};
  std::size_t off_ = 0, len_ = 0;
};

// After a response whose request body was left unread: stop sending, then read and discard what the client
// still sends for a moment (so it can read the response rather than a reset), bounded in time and bytes.
void linger_and_discard(socket_t sock) {
  ::shutdown(sock, SHUT_WR);
  std::array<char, 16384> buf;
  const auto deadline = Clock::now() + milliseconds(500);
  std::size_t total = 0;
  while (total < (8u << 20)) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    pollfd p{sock, POLLIN, 0};
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) break;
    const ssize_t n = ::recv(sock, buf.data(), buf.size(), 0);
    if (n <= 0) break;
    total += static_cast<std::size_t>(n);
  }
}

bool expects_body(const std::string& method) {
  return method == "POST" || method == "PUT" || method == "PATCH" || method == "DELETE";
}

}  // namespace

void close_connection_after_response() { t_close_after_response = true; }

void prepare_request(httplib::Request& req, const std::regex& range_paths) {
  if (expects_body(req.method) && !req.has_header("Content-Length") && !req.has_header("Transfer-Encoding"))
    req.set_header("Content-Length", "0");
  if (req.ranges.size() > 1 || (req.method != "GET" && req.method != "HEAD") || !std::regex_match(req.path, range_paths))
    req.ranges.clear();
}

HttpServer::HttpServer(TransportLimits limits) : limits_(std::move(limits)), range_paths_(limits_.range_paths) {
  const std::size_t max = limits_.max_threads;
  new_task_queue = [max] { return new OnDemandThreads(max); };
}

bool HttpServer::bind(const std::string& host, int port) {
  if (!bind_to_port(host, port)) return false;
  ::listen(svr_sock_, 256);  // a second listen() on a listening socket only changes its backlog
  return true;
}

bool HttpServer::process_and_close_socket(socket_t sock) {
  const auto seconds = [](time_t s, time_t us) { return milliseconds(s * 1000 + us / 1000); };
  DeadlineStream strm(sock, svr_sock_, seconds(read_timeout_sec_, read_timeout_usec_),
                      seconds(write_timeout_sec_, write_timeout_usec_));
  bool ok = false;
  t_close_after_response = false;
  for (std::size_t left = keep_alive_max_count_; left > 0 && svr_sock_ != INVALID_SOCKET; --left) {
    if (!strm.wait_for_request(milliseconds(keep_alive_timeout_sec_ * 1000))) break;
    strm.begin_headers(Clock::now() + limits_.header_timeout);
    bool closed = false;
    ok = process_request(strm, left == 1, closed, [&](httplib::Request& req) {
      strm.end_headers();
      prepare_request(req, range_paths_);
    });
    if (!ok || closed || t_close_after_response || strm.in_headers()) break;
  }
  if (t_close_after_response) linger_and_discard(sock);
  t_close_after_response = false;
  ::shutdown(sock, SHUT_RDWR);
  ::close(sock);
  return ok;
}

}  // namespace llmstudio::server
