// Test helper for tests/parity/test_optimizer_parity.py: runs our optimizer (with H2O's hyperparameters,
// OptimizerConfig::h2o) on given parameters and per-step gradients, so the test can compare with torch.optim.
//
//   llms_optimizer_tool NAME LR WD IN.safetensors OUT_DIR RESUME_AT
// IN holds "param/<name>" (initial values), "grad/<step>/<name>" for steps 0..S-1 and "lr_scale" (S values,
// the schedule's factor per step). After RESUME_AT steps (0: never) the optimizer state goes through
// OUT_DIR/optimizer.safetensors into a fresh optimizer, as a checkpoint resume does. Writes
// OUT_DIR/results.safetensors: "param/<name>" after S steps and "state/<key>" (the final optimizer state).
#include <ATen/ATen.h>

#include <iostream>
#include <map>

#include "llmstudio/core/error.h"
#include "llmstudio/io/safetensors.h"
#include "llmstudio/train/optimizer.h"

using namespace llmstudio;

int main(int argc, char** argv) try {
  LLMS_CHECK(argc == 7, "usage: llms_optimizer_tool NAME LR WD IN.safetensors OUT_DIR RESUME_AT");
  const auto cfg = train::OptimizerConfig::h2o(argv[1], std::stod(argv[2]), std::stod(argv[3]));
  const auto in = io::load_safetensors_dir(argv[4]);
  const std::filesystem::path out_dir = argv[5];
  const int resume_at = std::stoi(argv[6]);

  std::vector<std::pair<std::string, at::Tensor>> params;
  for (const auto& [key, t] : in)
    if (key.rfind("param/", 0) == 0) params.emplace_back(key.substr(6), t.clone().set_requires_grad(true));
  const at::Tensor lr_scale = in.at("lr_scale").to(at::kDouble);
  std::filesystem::create_directories(out_dir);

  auto opt = std::make_unique<train::Optimizer>(params, cfg);
  for (std::int64_t s = 0; s < lr_scale.numel(); ++s) {
    if (s == resume_at && s > 0) {
      io::NamedTensors saved;
      for (const auto& [k, v] : opt->state()) saved.emplace_back(k, v);
      io::save_safetensors(out_dir / "optimizer.safetensors", saved);
      opt = std::make_unique<train::Optimizer>(params, cfg);
      opt->load_state(io::load_safetensors_dir(out_dir / "optimizer.safetensors"));
    }
    for (auto& [name, p] : params) p.mutable_grad() = in.at("grad/" + std::to_string(s) + "/" + name).clone();
    opt->step(cfg.lr * lr_scale[s].item<double>());
  }
  io::NamedTensors out;
  for (const auto& [name, p] : params) out.emplace_back("param/" + name, p.detach());
  for (const auto& [k, v] : opt->state()) out.emplace_back("state/" + k, v);
  io::save_safetensors(out_dir / "results.safetensors", out);
  return 0;
} catch (const std::exception& e) {
  std::cerr << "error: " << e.what() << "\n";
  return 1;
}
