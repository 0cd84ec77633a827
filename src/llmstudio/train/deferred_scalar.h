// DeferredScalar: a device scalar (the step's loss) read on the host later without stalling the device queue.
// put() queues an asynchronous copy into pinned host memory and records an event; get() waits for that event
// only (not for work queued after it), so the trainer can queue the next step before reading this step's loss.
// On the CPU (and devices without events) put() keeps the value and get() reads it.
#pragma once

#include <ATen/ATen.h>
#include <c10/core/Event.h>

#include <memory>

namespace llmstudio::train {

class DeferredScalar {
 public:
  void put(const at::Tensor& scalar);
  double get() const;  // the value given to the last put()

 private:
  at::Tensor value_;                 // pinned host copy (CUDA) or the tensor itself
  std::unique_ptr<c10::Event> done_;  // recorded after the copy (CUDA)
};

}  // namespace llmstudio::train
