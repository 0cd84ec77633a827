// GraphedFunction: runs a function of tensors through a CUDA graph on CUDA devices, eagerly elsewhere, behind
// one interface. This file pair owns the only use of at::cuda::CUDAGraph (the backend #ifdefs are in the .cpp;
// LLMS_WITH_CUDA is defined there when libtorch was built with CUDA, see src/llmstudio/CMakeLists.txt).
//
// On CUDA, the first call for a key (e.g. a batch size) copies the inputs into static buffers owned by the
// wrapper, runs the function a few times on a side stream (warm-up: lazy initialisation, the caching allocator,
// kernel choices happen outside the capture), captures one call on that stream into a graph with its own private
// memory pool, then replays it on the caller's stream. Later calls with the same key copy the new inputs into the
// static buffers (device-to-device copies on the caller's stream) and replay: no kernel launch from the host
// besides the copies and the graph, no allocation, no synchronisation.
//
// What the function must be for this to be right (DecodeStep is written for it):
//   - its work depends only on the inputs' shapes, dtypes and devices (never on their values read on the host:
//     no .item(), no host branching on tensor contents), and the shapes are fixed per key;
//   - it is idempotent for the same inputs: the warm-up calls run it for real before the captured call, and the
//     first replay runs it again (an in-place state update such as "write the KV cache at column c" is fine; an
//     increment such as "c += 1" is not and belongs outside);
//   - state it reads or writes besides its inputs (weights, KV cache, counters) lives in tensors allocated before
//     the first call and kept alive (and at the same address) for as long as the wrapper;
//   - it launches its work on the current stream (at::cuda::getCurrentCUDAStream), as ATen ops and our kernels do;
//   - it draws no random numbers (the capture would freeze the generator's offset).
// The returned outputs are the graph's static output tensors: they are overwritten by the next call with the same
// key, so a caller reads them (or queues the work that reads them on the same stream) before calling again.
//
// CUDA graphs are on for CUDA devices unless the environment sets LLMS_CUDA_GRAPHS=0 (then, and on CPU and MPS,
// every call runs the function eagerly and returns its outputs).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

namespace llmstudio::platform {

using TensorFunction = std::function<std::vector<at::Tensor>(const std::vector<at::Tensor>& inputs)>;

// Whether GraphedFunction captures on `device`: libtorch has CUDA, the device is a CUDA device and
// LLMS_CUDA_GRAPHS is not "0" (read at each call).
bool cuda_graphs_enabled(const at::Device& device);

class GraphedFunction {
 public:
  // fn runs on `device`; whether graphs are used is decided here once (cuda_graphs_enabled(device)).
  GraphedFunction(TensorFunction fn, const at::Device& device);
  ~GraphedFunction();
  GraphedFunction(GraphedFunction&&) noexcept;
  GraphedFunction& operator=(GraphedFunction&&) noexcept;
  GraphedFunction(const GraphedFunction&) = delete;
  GraphedFunction& operator=(const GraphedFunction&) = delete;

  // fn(inputs), through the graph of `key` when graphs are on (captured on the key's first call). The inputs must
  // keep the shapes and dtypes they had at the key's first call (an Error names the input otherwise).
  std::vector<at::Tensor> operator()(std::int64_t key, const std::vector<at::Tensor>& inputs);

  bool uses_graphs() const;
  // How many graphs were captured (one per key seen), 0 when eager.
  std::size_t captured() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace llmstudio::platform
