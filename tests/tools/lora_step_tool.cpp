// Test helper for tests/parity/test_lora_parity.py: loads a model folder, attaches LoRA with the adapter
// weights of an init file (so PEFT and we start identical), records the first-step loss and adapter
// gradients, runs N optimizer steps on the same batch, and saves the PEFT adapter and final logits.
//
// usage: llms_lora_step_tool MODEL INIT.safetensors BATCH.json OUT_DIR R ALPHA TARGETS(comma|all) STEPS LR WD LOSS
#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <nlohmann/json.hpp>

#include <iostream>
#include <sstream>

#include "llmstudio/core/error.h"
#include "llmstudio/io/atomic_file.h"
#include "llmstudio/io/safetensors.h"
#include "llmstudio/model/causal_lm.h"
#include "llmstudio/model/lora.h"
#include "llmstudio/train/loss.h"
#include "llmstudio/train/optimizer.h"

using namespace llmstudio;

int main(int argc, char** argv) try {
  LLMS_CHECK(argc == 12, "usage: llms_lora_step_tool MODEL INIT BATCH OUT_DIR R ALPHA TARGETS STEPS LR WD LOSS");
  const std::string model_dir = argv[1], init = argv[2], batch = argv[3], out_dir = argv[4];
  model::LoraConfig lc;
  lc.r = std::stoll(argv[5]);
  lc.alpha = std::stod(argv[6]);
  lc.dropout = 0.0;
  if (std::string(argv[7]) != "all") {
    std::stringstream ss(argv[7]);
    for (std::string t; std::getline(ss, t, ',');) lc.target_modules.push_back(t);
  }
  const int steps = std::stoi(argv[8]);
  train::OptimizerConfig oc;
  oc.lr = std::stod(argv[9]);
  oc.weight_decay = std::stod(argv[10]);
  const auto loss_kind = train::parse_loss_kind(argv[11]);

  auto lm = model::CausalLM::load(model_dir, {"cpu", "float32"});
  model::attach_lora(lm, lc, 0);
  model::load_lora_weights(lm, io::load_safetensors_dir(init), init);
  lm.set_training(true);

  auto j = nlohmann::json::parse(io::read_file(batch));
  auto tensor2d = [&](const char* key) {
    auto rows = j.at(key).get<std::vector<std::vector<std::int64_t>>>();
    std::vector<std::int64_t> flat;
    for (auto& r : rows) flat.insert(flat.end(), r.begin(), r.end());
    return at::tensor(flat, at::kLong).view({static_cast<std::int64_t>(rows.size()), -1});
  };
  at::Tensor ids = tensor2d("input_ids"), mask = tensor2d("attention_mask"), labels = tensor2d("labels");

  auto params = model::lora_parameters(lm);
  train::Optimizer opt(params, oc);
  io::NamedTensors out;
  std::vector<float> losses;
  for (int s = 0; s < steps; ++s) {
    opt.zero_grad();
    at::Tensor loss = train::causal_lm_loss(lm.forward(ids, mask), labels, loss_kind);
    loss.backward();
    losses.push_back(loss.item<float>());
    if (s == 0)
      for (auto& [name, p] : params) out.emplace_back("grad/" + name, p.grad().clone());
    opt.step(oc.lr);
  }
  out.emplace_back("losses", at::tensor(losses, at::kFloat));
  lm.set_training(false);
  {
    at::NoGradGuard no_grad;
    out.emplace_back("logits", lm.forward(ids, mask).contiguous());
  }
  std::filesystem::create_directories(out_dir);
  io::save_safetensors(std::filesystem::path(out_dir) / "results.safetensors", out);
  model::save_peft_adapter(lm, lc, std::filesystem::path(out_dir) / "adapter", model_dir);
  return 0;
} catch (const std::exception& e) {
  std::cerr << "error: " << e.what() << "\n";
  return 1;
}
