// GraphedFunction (see cuda_graph.h): capture and replay with at::cuda::CUDAGraph when libtorch has CUDA
// (LLMS_WITH_CUDA), the eager call otherwise. One of the two files with backend #ifdefs (with probe.cpp).
#include "llmstudio/platform/cuda_graph.h"

#include <cstdlib>
#include <map>
#include <string>
#include <utility>

#include "llmstudio/core/error.h"

#if defined(LLMS_WITH_CUDA)
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace llmstudio::platform {
#if defined(LLMS_WITH_CUDA)
namespace {

// Warm-up calls before the capture: the first call may initialise cuBLAS handles and workspaces, pick kernels
// and fill the caching allocator; a second one runs as it will in the graph. (torch.cuda.make_graphed_callables
// uses 3; our step is idempotent, so more only costs time.)
constexpr int kWarmupCalls = 2;

bool graphs_wanted_by_environment() {
  const char* v = std::getenv("LLMS_CUDA_GRAPHS");
  return v == nullptr || std::string(v) != "0";
}

std::string shape_text(at::IntArrayRef s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

}  // namespace
#endif

bool cuda_graphs_enabled(const at::Device& device) {
#if defined(LLMS_WITH_CUDA)
  return device.is_cuda() && graphs_wanted_by_environment();
#else
  (void)device;
  return false;
#endif
}

struct GraphedFunction::Impl {
  Impl(TensorFunction f, const at::Device& d) : fn(std::move(f)), device(d), graphs(cuda_graphs_enabled(d)) {}
  TensorFunction fn;
  at::Device device;
  bool graphs = false;

#if defined(LLMS_WITH_CUDA)
  struct Captured {
    std::unique_ptr<at::cuda::CUDAGraph> graph;
    std::vector<at::Tensor> inputs;   // static input buffers: each call copies its inputs here before the replay
    std::vector<at::Tensor> outputs;  // static outputs, allocated in the graph's private pool during the capture
  };
  std::map<std::int64_t, Captured> captured;

  // Static buffers for `inputs`, warm-up on a side stream, capture there, and the side stream joined back.
  Captured capture(const std::vector<at::Tensor>& inputs) {
    Captured c;
    c.inputs.reserve(inputs.size());
    for (const auto& x : inputs) c.inputs.push_back(x.clone(at::MemoryFormat::Contiguous));
    const c10::cuda::CUDAGuard guard(device);
    at::cuda::CUDAStream caller = at::cuda::getCurrentCUDAStream(device.index());
    at::cuda::CUDAStream side = at::cuda::getStreamFromPool(/*isHighPriority=*/false, device.index());
    at::cuda::CUDAEvent inputs_ready;
    inputs_ready.record(caller);  // the clones above (and whatever made the state) are queued on the caller's stream
    inputs_ready.block(side);
    {
      const c10::cuda::CUDAStreamGuard on_side(side);
      for (int i = 0; i < kWarmupCalls; ++i) (void)fn(c.inputs);
      side.synchronize();  // as torch.cuda.graph: nothing of the warm-up is pending when the capture starts
      c.graph = std::make_unique<at::cuda::CUDAGraph>();
      c.graph->capture_begin();  // default pool id: a private memory pool for this graph
      try {
        c.outputs = fn(c.inputs);
      } catch (...) {
        try {
          c.graph->capture_end();  // leave capture mode; the graph is discarded with c
        } catch (...) {
          // the capture was invalidated by the failure; the function's own error is the one to report
        }
        throw;
      }
      c.graph->capture_end();
    }
    at::cuda::CUDAEvent captured_done;
    captured_done.record(side);
    captured_done.block(caller);
    return c;
  }

  std::vector<at::Tensor> replay(std::int64_t key, const std::vector<at::Tensor>& inputs) {
    auto it = captured.find(key);
    if (it == captured.end()) {
      it = captured.emplace(key, capture(inputs)).first;  // the capture copied the inputs already
    } else {
      Captured& c = it->second;
      LLMS_CHECK(inputs.size() == c.inputs.size(), "CUDA graph ", key, ": called with ", inputs.size(),
                 " inputs, captured with ", c.inputs.size());
      for (size_t i = 0; i < inputs.size(); ++i) {
        LLMS_CHECK(inputs[i].sizes() == c.inputs[i].sizes() && inputs[i].scalar_type() == c.inputs[i].scalar_type(),
                   "CUDA graph ", key, ": input ", i, " is ", shape_text(inputs[i].sizes()), " ",
                   c10::toString(inputs[i].scalar_type()), ", captured as ", shape_text(c.inputs[i].sizes()), " ",
                   c10::toString(c.inputs[i].scalar_type()), "; use another key for another shape");
        c.inputs[i].copy_(inputs[i], /*non_blocking=*/true);
      }
    }
    const c10::cuda::CUDAGuard guard(device);
    it->second.graph->replay();  // on the caller's current stream, after the copies
    return it->second.outputs;
  }
#endif
};

GraphedFunction::GraphedFunction(TensorFunction fn, const at::Device& device)
    : impl_(std::make_unique<Impl>(std::move(fn), device)) {
  LLMS_CHECK(static_cast<bool>(impl_->fn), "GraphedFunction: no function given");
}

GraphedFunction::~GraphedFunction() = default;
GraphedFunction::GraphedFunction(GraphedFunction&&) noexcept = default;
GraphedFunction& GraphedFunction::operator=(GraphedFunction&&) noexcept = default;

std::vector<at::Tensor> GraphedFunction::operator()(std::int64_t key, const std::vector<at::Tensor>& inputs) {
  for (size_t i = 0; i < inputs.size(); ++i)
    LLMS_CHECK(inputs[i].defined() && inputs[i].device() == impl_->device, "GraphedFunction: input ", i, " is ",
               inputs[i].defined() ? inputs[i].device().str() : std::string("undefined"), ", expected a tensor on ",
               impl_->device.str());
#if defined(LLMS_WITH_CUDA)
  if (impl_->graphs) return impl_->replay(key, inputs);
#endif
  (void)key;
  return impl_->fn(inputs);
}

bool GraphedFunction::uses_graphs() const { return impl_->graphs; }

std::size_t GraphedFunction::captured() const {
#if defined(LLMS_WITH_CUDA)
  return impl_->captured.size();
#else
  return 0;
#endif
}

}  // namespace llmstudio::platform
