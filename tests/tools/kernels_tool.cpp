// The CUDA kernels of src/llmstudio/kernels on a GPU, without GoogleTest (the GPU machine has none), for
// tests/parity/test_kernels_cuda.py:
//   llms_kernels_tool check   every kernel_checks.h comparison on cuda:0 (forward and gradients vs the references);
//                             prints one line per case, exit 1 when any fails, 77 without a CUDA device
//   llms_kernels_tool bench   each op, kernel vs reference formula on the GPU, at [8*1024, 2048] bf16 (RoPE on the
//                             same element count as [8, 32, 1024, 64]): median of 50 timed runs after warm-up
//                             (CUDA events), in ms and GB/s of the fewest bytes the op must move.
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/Sleep.h>
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iostream>

#include "kernel_checks.h"
#include "llmstudio/core/error.h"

using namespace llmstudio;

namespace {

bool have_cuda() { return at::hasCUDA() && at::cuda::device_count() > 0; }

int check() {
  const at::Device dev(at::kCUDA, 0);
  at::manual_seed(1234);
  int failed = 0;
  for (const auto& r : kernel_checks::all_cuda_checks(dev)) {
    std::cout << r.line() << "\n";
    failed += !r.pass();
  }
  std::cout << (failed ? "FAILED " + std::to_string(failed) + " case(s)" : std::string("all kernel checks passed"))
            << std::endl;
  return failed ? 1 : 0;
}

// Median time (ms) of `fn` over 50 runs after 10 warm-up runs; each run starts behind a GPU sleep so that the
// host's launch overhead stays out of the measured interval (the GPU time alone).
double median_ms(const std::function<void(int)>& fn) {
  for (int i = 0; i < 10; ++i) fn(i);
  std::vector<double> t;
  for (int i = 0; i < 50; ++i) {
    at::cuda::sleep(2'000'000);  // ~1 ms of GPU time: the host enqueues the run meanwhile
    c10::cuda::CUDAEvent a(cudaEventDefault), b(cudaEventDefault);
    a.record();
    fn(i);
    b.record();
    b.synchronize();
    t.push_back(a.elapsed_time(b));
  }
  std::nth_element(t.begin(), t.begin() + 25, t.end());
  return t[25];
}

struct Bench {
  std::string op;
  double fwd_bytes, fwdbwd_bytes;
  std::function<at::Tensor(const std::vector<at::Tensor>&)> fn;
  std::vector<std::vector<at::Tensor>> sets;  // rotated input sets (leaves requiring grad)
};

void row(const std::string& what, double ms_ref, double ms_k, double bytes) {
  std::printf("%-28s ref %8.4f ms %7.0f GB/s | kernel %8.4f ms %7.0f GB/s | %5.2fx\n", what.c_str(), ms_ref,
              bytes / ms_ref / 1e6, ms_k, bytes / ms_k / 1e6, ms_ref / ms_k);
}

void run_bench(Bench& b) {
  auto fwd = [&](bool reference) {
    return median_ms([&](int i) {
      kernels::set_reference_only(reference);
      at::NoGradGuard ng;
      b.fn(b.sets[i % b.sets.size()]);
      kernels::set_reference_only(false);
    });
  };
  std::vector<at::Tensor> gy;
  {
    at::NoGradGuard ng;
    const at::Tensor y = b.fn(b.sets[0]);
    for (size_t i = 0; i < b.sets.size(); ++i) gy.push_back(at::randn_like(y));
  }
  auto fwdbwd = [&](bool reference) {
    return median_ms([&](int i) {
      const auto& in = b.sets[i % b.sets.size()];
      kernels::set_reference_only(reference);
      at::Tensor y = b.fn(in);
      kernels::set_reference_only(false);
      torch::autograd::grad({y}, in, {gy[i % gy.size()]});
    });
  };
  row(b.op + " forward", fwd(true), fwd(false), b.fwd_bytes);
  row(b.op + " forward+backward", fwdbwd(true), fwdbwd(false), b.fwdbwd_bytes);
}

int bench() {
  const auto o = at::TensorOptions().device(at::kCUDA, 0).dtype(at::kBFloat16);
  const std::int64_t R = 8 * 1024, D = 2048;
  const double n = static_cast<double>(R * D), e = 2.0;  // elements, bytes per element
  auto leaves = [](std::vector<at::Tensor> v) {
    for (auto& t : v) t.requires_grad_(true);
    return v;
  };
  std::printf("device %s, bf16, [%ld, %ld] (%.1f MB a tensor)\n", at::cuda::getCurrentDeviceProperties()->name, R, D,
              n * e / 1e6);
  // RMSNorm, frozen weight (LoRA): x in, y out; backward dy, x in, dx out.
  const at::Tensor w = (1.0 + 0.1 * at::randn({D}, o.dtype(at::kFloat))).to(at::kBFloat16);
  Bench rms{"rms_norm", 2 * n * e, 5 * n * e,
            [w](const std::vector<at::Tensor>& v) { return kernels::rms_norm(v[0], w, 1e-5); }, {}};
  for (int i = 0; i < 3; ++i) rms.sets.push_back(leaves({at::randn({R, D}, o)}));
  run_bench(rms);
  // RoPE on q [8, 32, 1024, 64] as a transposed view of [8, 1024, 32, 64]; cos/sin bf16 [8, 1, 1024, 64].
  const at::Tensor pos = at::arange(1024, o.dtype(at::kLong)).expand({8, 1024});
  auto [cos, sin] = model::rope_cos_sin(model::rope_inv_freq(model::RopeConfig{}, 64).to(o.device()), pos,
                                        at::kBFloat16);
  Bench rope{"apply_rope", 2 * n * e, 4 * n * e,
             [cos, sin](const std::vector<at::Tensor>& v) { return kernels::apply_rope(v[0].transpose(1, 2), cos, sin); },
             {}};
  for (int i = 0; i < 3; ++i) rope.sets.push_back(leaves({at::randn({8, 1024, 32, 64}, o)}));
  run_bench(rope);
  // SwiGLU: gate, up in, y out; backward gate, up, dy in, dgate, dup out.
  Bench sw{"swiglu", 3 * n * e, 8 * n * e,
           [](const std::vector<at::Tensor>& v) { return kernels::swiglu(v[0], v[1]); }, {}};
  for (int i = 0; i < 3; ++i) sw.sets.push_back(leaves({at::randn({R, D}, o), at::randn({R, D}, o)}));
  run_bench(sw);
  return 0;
}

}  // namespace

int main(int argc, char** argv) try {
  LLMS_CHECK(argc == 2 && (!std::strcmp(argv[1], "check") || !std::strcmp(argv[1], "bench")),
             "usage: llms_kernels_tool check|bench");
  if (!kernels::cuda_kernels_built()) {
    std::cout << "SKIP: this build has no CUDA kernels (LLMS_CUDA_KERNELS=OFF)" << std::endl;
    return 77;
  }
  if (!have_cuda()) {
    std::cout << "SKIP: no CUDA device" << std::endl;
    return 77;
  }
  return !std::strcmp(argv[1], "check") ? check() : bench();
} catch (const std::exception& e) {
  std::cerr << "error: " << e.what() << std::endl;
  return 2;
}
