// Test helper for tests/parity/test_train_features_parity.py.
//
//   llms_train_features_tool steps MODEL INIT.safetensors BATCH.json OUT_DIR R ALPHA TARGETS STEPS LR PRECISION CKPT
//     LoRA training steps on one batch as llms_lora_step_tool, with PRECISION float32 | bfloat16 | float16
//     (autocast on CPU as the trainer does; float16 with the dynamic loss scaler) and CKPT 0|1 (gradient
//     checkpointing). Writes OUT_DIR/results.safetensors: losses, skipped (steps skipped for inf/nan), the
//     first step's adapter gradients (grad/<name>).
//   llms_train_features_tool memory MODEL BATCH.json CKPT MODE(lora|full)
//     One forward/backward; prints JSON {"rss_before_mib", "rss_peak_mib"}: resident memory before the step
//     (freed heap memory given back, peak counter reset) and the peak during it (VmHWM), so the difference is
//     what the training step added at its peak (activations kept for backward, gradients).
#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <nlohmann/json.hpp>
#include <malloc.h>
#include <sys/resource.h>

#include <fstream>
#include <iostream>
#include <sstream>

#include "llmstudio/core/error.h"
#include "llmstudio/io/atomic_file.h"
#include "llmstudio/io/safetensors.h"
#include "llmstudio/model/causal_lm.h"
#include "llmstudio/model/lora.h"
#include "llmstudio/train/loss.h"
#include "llmstudio/train/mixed_precision.h"
#include "llmstudio/train/optimizer.h"

using namespace llmstudio;

namespace {

struct BatchTensors {
  at::Tensor ids, mask, labels;
};

BatchTensors read_batch(const std::string& file) {
  auto j = nlohmann::json::parse(io::read_file(file));
  auto tensor2d = [&](const char* key) {
    auto rows = j.at(key).get<std::vector<std::vector<std::int64_t>>>();
    std::vector<std::int64_t> flat;
    for (auto& r : rows) flat.insert(flat.end(), r.begin(), r.end());
    return at::tensor(flat, at::kLong).view({static_cast<std::int64_t>(rows.size()), -1});
  };
  return {tensor2d("input_ids"), tensor2d("attention_mask"), tensor2d("labels")};
}

// A field of /proc/self/status in MiB ("VmRSS", "VmHWM"), or -1.
double status_mib(const std::string& key) {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind(key + ":", 0) == 0) return std::stod(line.substr(key.size() + 1)) / 1024.0;  // in kB
  return -1;
}

// Resident memory now, with freed heap memory given back first, and the peak counter (VmHWM) reset to it, so
// that status_mib("VmHWM") later is the peak since this call. Falls back to ru_maxrss where the reset is refused.
double reset_peak_rss_mib() {
  malloc_trim(0);
  std::ofstream clear("/proc/self/clear_refs");
  clear << "5";
  clear.close();
  if (clear.good()) return status_mib("VmRSS");
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

double peak_rss_mib() {
  const double hwm = status_mib("VmHWM");
  if (hwm >= 0) return hwm;
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

int steps(char** argv) {
  const std::string model_dir = argv[2], init = argv[3], batch = argv[4], out_dir = argv[5];
  model::LoraConfig lc;
  lc.r = std::stoll(argv[6]);
  lc.alpha = std::stod(argv[7]);
  lc.dropout = 0.0;
  if (std::string(argv[8]) != "all") {
    std::stringstream ss(argv[8]);
    for (std::string t; std::getline(ss, t, ',');) lc.target_modules.push_back(t);
  }
  const int n_steps = std::stoi(argv[9]);
  train::OptimizerConfig oc;
  oc.lr = std::stod(argv[10]);
  const std::string precision = argv[11];
  const bool ckpt = std::string(argv[12]) == "1";
  const auto mp_dtype = experiment::enum_from_string<experiment::MixedPrecisionDtype>(precision);
  LLMS_CHECK(precision == "float32" || mp_dtype, "precision: float32, bfloat16 or float16, found ", precision);
  const auto plan = train::plan_mixed_precision(precision != "float32", mp_dtype.value_or(experiment::MixedPrecisionDtype::BFloat16),
                                                "cpu", experiment::BackboneDtype::BFloat16, true);

  auto lm = model::CausalLM::load(model_dir, {"cpu", "float32"});
  model::attach_lora(lm, lc, 0);
  model::load_lora_weights(lm, io::load_safetensors_dir(init), init);
  lm.set_training(true);
  lm.set_gradient_checkpointing(ckpt);
  auto b = read_batch(batch);
  auto params = model::lora_parameters(lm);
  train::Optimizer opt(params, oc);
  train::LossScaler scaler;
  io::NamedTensors out;
  std::vector<float> losses;
  for (int s = 0; s < n_steps; ++s) {
    opt.zero_grad();
    at::Tensor loss;
    {
      train::AutocastScope ac(at::kCPU, plan.dtype, plan.enabled);
      loss = train::causal_lm_loss(lm.forward(b.ids, b.mask), b.labels, train::LossKind::TokenAveraged);
    }
    (plan.loss_scaling ? scaler.scale_loss(loss) : loss).backward();
    losses.push_back(loss.item<float>());
    bool apply = true;
    if (plan.loss_scaling) apply = scaler.update(scaler.unscale_(params).item<float>() != 0.0f);
    if (s == 0)
      for (auto& [name, p] : params) out.emplace_back("grad/" + name, p.grad().clone());
    if (apply) opt.step(oc.lr);
  }
  out.emplace_back("losses", at::tensor(losses, at::kFloat));
  out.emplace_back("skipped", at::tensor(std::vector<std::int64_t>{scaler.skipped_steps()}, at::kLong));
  std::filesystem::create_directories(out_dir);
  io::save_safetensors(std::filesystem::path(out_dir) / "results.safetensors", out);
  return 0;
}

int memory(char** argv) {
  const std::string model_dir = argv[2], batch = argv[3], mode = argv[5];
  const bool ckpt = std::string(argv[4]) == "1";
  auto lm = model::CausalLM::load(model_dir, {"cpu", "float32"});
  if (mode == "lora") {
    model::LoraConfig lc;
    lc.r = 8;
    lc.dropout = 0.0;
    model::attach_lora(lm, lc, 0);
  } else {
    for (auto& [n, p] : lm.named_parameters()) p.set_requires_grad(true);
  }
  lm.set_training(true);
  lm.set_gradient_checkpointing(ckpt);
  auto b = read_batch(batch);
  const double before = reset_peak_rss_mib();
  at::Tensor loss = train::causal_lm_loss(lm.forward(b.ids, b.mask), b.labels, train::LossKind::TokenAveraged);
  loss.backward();
  const double loss_value = loss.item<double>();
  std::cout << nlohmann::json{{"rss_before_mib", before}, {"rss_peak_mib", peak_rss_mib()}, {"loss", loss_value}}.dump()
            << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) try {
  const std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "steps" && argc == 13) return steps(argv);
  if (cmd == "memory" && argc == 6) return memory(argv);
  fail("usage: llms_train_features_tool steps MODEL INIT BATCH OUT_DIR R ALPHA TARGETS STEPS LR PRECISION CKPT\n"
       "       llms_train_features_tool memory MODEL BATCH CKPT lora|full");
} catch (const std::exception& e) {
  std::cerr << "error: " << e.what() << "\n";
  return 1;
}
