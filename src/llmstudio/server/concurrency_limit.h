// A cap on how many requests of one kind run at once (event streams; usable for generations): acquire() returns a
// slot held until the returned handle is destroyed, or throws ApiError 503 when all slots are taken; the route
// wrapper answers every 503 with Retry-After (http_util.cpp), so clients back off instead of piling up.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

namespace llmstudio::server {

class ConcurrencyLimit {
 public:
  // `what` names the kind in the 503 message, e.g. "event streams".
  ConcurrencyLimit(std::string what, std::size_t max);
  // A held slot (keep it alive as long as the work runs, e.g. captured by a content provider).
  std::shared_ptr<void> acquire();
  std::size_t in_use() const;
  std::size_t max() const { return max_; }

 private:
  struct State;
  std::string what_;
  std::size_t max_;
  std::shared_ptr<State> state_;  // shared with the slots, which may outlive this object
};

}  // namespace llmstudio::server
