// The single-threaded job executor of the /v1 routes (see serial_executor.h).
#include "llmstudio/server/serial_executor.h"

#include <utility>

namespace llmstudio::server {

SerialExecutor::SerialExecutor(std::size_t max_waiting, std::function<void()> at_exit)
    : max_waiting_(max_waiting), at_exit_(std::move(at_exit)), thread_([this] { loop(); }) {}

SerialExecutor::~SerialExecutor() {
  std::deque<Job> dropped;
  {
    std::lock_guard lock(mu_);
    quit_ = true;
    dropped.swap(queue_);
  }
  cv_.notify_all();
  for (auto& job : dropped) job(false);
  thread_.join();
}

bool SerialExecutor::try_submit(Job job) {
  {
    std::lock_guard lock(mu_);
    if (quit_ || queue_.size() >= max_waiting_) return false;
    queue_.push_back(std::move(job));
  }
  cv_.notify_one();
  return true;
}

std::size_t SerialExecutor::waiting() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

void SerialExecutor::loop() {
  while (true) {
    Job job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return quit_ || !queue_.empty(); });
      if (queue_.empty()) break;  // quit_
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    job(true);  // jobs catch their own exceptions; one that escapes ends the process like any thread would
  }
  if (at_exit_) at_exit_();
}

}  // namespace llmstudio::server
