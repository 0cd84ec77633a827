// The decode path's CUDA-graph checks and a decode timing on a GPU, without GoogleTest (the GPU machine has none):
//   llms_decode_tool check                 every decode_checks.h graph check on cuda:0 (step logits graphed vs
//                                          eager, greedy tokens graphed vs LLMS_CUDA_GRAPHS=0 vs the previous loop
//                                          across batch sizes and prompt lengths, seeded sampling); one line per
//                                          check, exit 1 when any fails, 77 without a CUDA device
//   llms_decode_tool bench SHAPE BATCH [cpu]
//                                          greedy decode tokens/s of a random model of SHAPE (135m: SmolLM2-135M,
//                                          1b: Llama-3.2-1B), 32-token prompts, 128 new tokens (after one untimed
//                                          call each): on cuda:0 in bf16 with CUDA graphs and with LLMS_CUDA_GRAPHS=0;
//                                          with `cpu`, on the CPU in float32, generate() against the previous loop
//   llms_decode_tool profile SHAPE BATCH TRACE
//                                          a Kineto trace (Chrome JSON) of one eager generate() of 16 new tokens
//                                          (LLMS_CUDA_GRAPHS=0: the kernels a graph replays, one by one) after an
//                                          untimed one; bench/profile_summary.py TRACE --steps 16 tabulates it
#include <ATen/ATen.h>
#include <torch/csrc/autograd/profiler_kineto.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <string>

#include "decode_checks.h"
#include "llmstudio/core/error.h"
#include "llmstudio/platform/platform.h"

using namespace llmstudio;
using namespace llmstudio::decode_checks;

namespace {

int check() {
  int failed = 0;
  for (const auto& c : graph_checks("cuda:0")) {
    std::printf("%s\n", c.line().c_str());
    failed += c.pass() ? 0 : 1;
  }
  std::printf("%s: %d failed\n", failed ? "FAIL" : "ok", failed);
  return failed ? 1 : 0;
}

model::ModelConfig shape_config(const std::string& shape) {
  model::ModelConfig c;
  c.architecture = "LlamaForCausalLM";
  c.model_type = "llama";
  c.tie_word_embeddings = true;
  if (shape == "135m") {
    c.vocab_size = 49152, c.hidden_size = 576, c.intermediate_size = 1536, c.num_hidden_layers = 30;
    c.num_attention_heads = 9, c.num_key_value_heads = 3, c.head_dim = 64;
  } else if (shape == "1b") {
    c.vocab_size = 128256, c.hidden_size = 2048, c.intermediate_size = 8192, c.num_hidden_layers = 16;
    c.num_attention_heads = 32, c.num_key_value_heads = 8, c.head_dim = 64;
  } else {
    fail("unknown shape '", shape, "'; allowed: 135m, 1b");
  }
  c.layer_uses_sliding_window.assign(static_cast<size_t>(c.num_hidden_layers), false);
  return c;
}

using GenerateFn = std::vector<GeneratedSequence> (*)(const CausalLM&, const Prompts&, const GenerationConfig&,
                                                      const TokenCallback&);

double tokens_per_second(const CausalLM& lm, const Prompts& prompts, const char* graphs,
                         GenerateFn fn = &infer::generate) {
  ScopedEnv env("LLMS_CUDA_GRAPHS", graphs);
  GenerationConfig cfg;
  cfg.max_new_tokens = 128;
  (void)fn(lm, prompts, cfg, {});  // untimed: cuBLAS handles, allocator, the first capture
  platform::synchronize_device();
  const auto t0 = std::chrono::steady_clock::now();
  const auto out = fn(lm, prompts, cfg, {});
  platform::synchronize_device();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::size_t n = 0;
  for (const auto& o : out) n += o.tokens.size();
  return static_cast<double>(n) / s;
}

CausalLM random_model(const model::ModelConfig& c, bool cpu) {
  const auto opts = at::TensorOptions().device(cpu ? at::kCPU : at::kCUDA).dtype(cpu ? at::kFloat : at::kBFloat16);
  std::map<std::string, at::Tensor> t;
  for (const auto& [name, s] : model::expected_tensor_shapes(c))
    t[name] = name.find("norm") != std::string::npos ? at::ones(s, opts) : at::randn(s, opts) * 0.02;
  model::LoadOptions lo;
  lo.device = cpu ? "cpu" : "cuda:0";
  lo.dtype = cpu ? "float32" : "bfloat16";
  return CausalLM::from_tensors(c, t, lo);
}

Prompts bench_prompts(const model::ModelConfig& c, std::int64_t batch) {
  std::vector<std::int64_t> lengths(static_cast<size_t>(batch), 32);
  Prompts prompts = random_prompts(lengths, 1);
  for (auto& p : prompts)
    for (auto& id : p) id = (id * 7919) % c.vocab_size;
  return prompts;
}

int profile(const std::string& shape, std::int64_t batch, const std::string& trace) {
  namespace prof = torch::profiler::impl;
  const model::ModelConfig c = shape_config(shape);
  const CausalLM lm = random_model(c, false);
  const Prompts prompts = bench_prompts(c, batch);
  ScopedEnv env("LLMS_CUDA_GRAPHS", "0");
  GenerationConfig cfg;
  cfg.max_new_tokens = 16;
  (void)infer::generate(lm, prompts, cfg, {});
  platform::synchronize_device();
  const std::set<prof::ActivityType> activities{prof::ActivityType::CPU, prof::ActivityType::CUDA};
  const prof::ProfilerConfig config(prof::ProfilerState::KINETO);
  torch::autograd::profiler::prepareProfiler(config, activities);
  torch::autograd::profiler::enableProfiler(config, activities);
  (void)infer::generate(lm, prompts, cfg, {});
  platform::synchronize_device();
  torch::autograd::profiler::disableProfiler()->save(trace);
  std::printf("%s batch %lld: trace of generate() (16 new tokens, eager) in %s\n", shape.c_str(),
              static_cast<long long>(batch), trace.c_str());
  return 0;
}

int bench(const std::string& shape, std::int64_t batch, bool cpu) {
  const model::ModelConfig c = shape_config(shape);
  const CausalLM lm = random_model(c, cpu);
  const Prompts prompts = bench_prompts(c, batch);
  if (cpu) {
    const double now = tokens_per_second(lm, prompts, nullptr);
    const double before = tokens_per_second(lm, prompts, nullptr, &reference_generate);
    std::printf("%s batch %lld cpu: %.1f tokens/s generate(), %.1f the previous loop, %.2fx\n", shape.c_str(),
                static_cast<long long>(batch), now, before, now / before);
    return 0;
  }
  const double graphed = tokens_per_second(lm, prompts, nullptr);
  const double eager = tokens_per_second(lm, prompts, "0");
  std::printf("%s batch %lld: %.1f tokens/s with CUDA graphs, %.1f eager (LLMS_CUDA_GRAPHS=0), %.2fx\n", shape.c_str(),
              static_cast<long long>(batch), graphed, eager, graphed / eager);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode != "check" && mode != "bench" && mode != "profile") {
    std::fprintf(stderr, "usage: llms_decode_tool check | bench 135m|1b BATCH [cpu] | profile 135m|1b BATCH TRACE\n");
    return 2;
  }
  const bool cpu = mode == "bench" && argc > 4 && std::string(argv[4]) == "cpu";
  if (!at::hasCUDA() && !cpu) {
    std::printf("no CUDA device: skipped\n");
    return 77;
  }
  try {
    if (mode == "check") return check();
    if (mode == "profile")
      return profile(argc > 2 ? argv[2] : "135m", argc > 3 ? std::stoll(argv[3]) : 1, argc > 4 ? argv[4] : "trace.json");
    return bench(argc > 2 ? argv[2] : "135m", argc > 3 ? std::stoll(argv[3]) : 1, cpu);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "llms_decode_tool: %s\n", e.what());
    return 1;
  }
}
