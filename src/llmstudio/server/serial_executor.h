// SerialExecutor: one thread that runs jobs one at a time, in order, with a bounded wait list. The /v1 routes
// run every model load, tokenization and generation on it (openai_api.h): the model's memory is then allocated
// and freed by one thread (no growth across glibc's per-thread arenas when models switch), generations never
// contend for the CPU/GPU, and a burst of requests beyond the wait list is refused at once (503) instead of
// tying up the HTTP workers.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace llmstudio::server {

class SerialExecutor {
 public:
  // A job is called with run = true on the executor thread, or with run = false (on the thread that destroys
  // the executor) when it was still waiting at shutdown, so that whoever waits for it can be told.
  using Job = std::function<void(bool run)>;

  // at_exit runs on the executor thread after the last job (e.g. to free what the jobs kept there).
  explicit SerialExecutor(std::size_t max_waiting, std::function<void()> at_exit = nullptr);
  ~SerialExecutor();  // lets the running job finish, cancels the waiting ones, runs at_exit and joins
  SerialExecutor(const SerialExecutor&) = delete;
  SerialExecutor& operator=(const SerialExecutor&) = delete;

  // Queues a job; false (and the job is dropped) when max_waiting jobs are already waiting.
  bool try_submit(Job job);
  // Jobs waiting (not counting the one running).
  std::size_t waiting() const;

 private:
  void loop();

  const std::size_t max_waiting_;
  std::function<void()> at_exit_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  bool quit_ = false;
  std::thread thread_;
};

}  // namespace llmstudio::server
