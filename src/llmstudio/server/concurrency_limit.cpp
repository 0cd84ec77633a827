// Per-kind concurrency limit (see concurrency_limit.h).
#include "llmstudio/server/concurrency_limit.h"

#include <mutex>

#include "llmstudio/server/api_error.h"

namespace llmstudio::server {

struct ConcurrencyLimit::State {
  std::mutex mu;
  std::size_t used = 0;
};

ConcurrencyLimit::ConcurrencyLimit(std::string what, std::size_t max)
    : what_(std::move(what)), max_(max), state_(std::make_shared<State>()) {}

std::shared_ptr<void> ConcurrencyLimit::acquire() {
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (state_->used >= max_)
      api_fail(503, "too many concurrent ", what_, " (limit ", max_, "); retry in a few seconds");
    ++state_->used;
  }
  return std::shared_ptr<void>(nullptr, [state = state_](void*) {
    std::lock_guard<std::mutex> lock(state->mu);
    --state->used;
  });
}

std::size_t ConcurrencyLimit::in_use() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->used;
}

}  // namespace llmstudio::server
