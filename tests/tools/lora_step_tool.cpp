// Test helper for tests/parity/test_lora_parity.py and test_lora_variants_parity.py: loads a model folder,
// chooses the trainable tensors with train::setup_trainable (as the trainer does), attaches LoRA with the
// adapter weights of an init file (so PEFT and we start identical), records the first-step loss and gradients,
// runs N optimizer steps on the same batch, and saves the final trainable tensors, the eval-mode logits and
// (LoRA) the PEFT adapter.
//
// usage: llms_lora_step_tool MODEL INIT.safetensors|- BATCH.json OUT_DIR R ALPHA TARGETS(comma|all) STEPS LR WD LOSS
//        [--rslora] [--dora] [--unfreeze a,b] [--full] [--freeze a,b] [--attention-dropout P --dropout-seed S]
// --full: full fine-tuning (no adapters; R/ALPHA/TARGETS unused). --attention-dropout: also writes training-mode
// logits of the initial model, drawn with the CPU generator seeded S (train_logits/a), S again (/b), S+1 (/c).
#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <nlohmann/json.hpp>

#include <iostream>
#include <mutex>
#include <sstream>

#include "llmstudio/core/error.h"
#include "llmstudio/io/atomic_file.h"
#include "llmstudio/io/safetensors.h"
#include "llmstudio/model/causal_lm.h"
#include "llmstudio/model/lora.h"
#include "llmstudio/train/loss.h"
#include "llmstudio/train/optimizer.h"
#include "llmstudio/train/trainable_params.h"

using namespace llmstudio;

namespace {

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string t; std::getline(ss, t, ',');) out.push_back(t);
  return out;
}

void seed_cpu(std::uint64_t seed) {
  at::Generator gen = at::globalContext().defaultGenerator(at::kCPU);
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_current_seed(seed);
}

}  // namespace

int main(int argc, char** argv) try {
  LLMS_CHECK(argc >= 12, "usage: llms_lora_step_tool MODEL INIT BATCH OUT_DIR R ALPHA TARGETS STEPS LR WD LOSS [options]");
  const std::string model_dir = argv[1], init = argv[2], batch = argv[3], out_dir = argv[4];
  train::TrainableSpec spec;
  model::LoraConfig& lc = spec.lora_config;
  lc.r = std::stoll(argv[5]);
  lc.alpha = std::stod(argv[6]);
  lc.dropout = 0.0;
  if (std::string(argv[7]) != "all") lc.target_modules = split_commas(argv[7]);
  const int steps = std::stoi(argv[8]);
  train::OptimizerConfig oc;
  oc.lr = std::stod(argv[9]);
  oc.weight_decay = std::stod(argv[10]);
  const auto loss_kind = train::parse_loss_kind(argv[11]);
  std::uint64_t dropout_seed = 0;
  for (int i = 12; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      LLMS_CHECK(i + 1 < argc, a, " needs a value");
      return argv[++i];
    };
    if (a == "--rslora") lc.use_rslora = true;
    else if (a == "--dora") lc.use_dora = true;
    else if (a == "--full") spec.lora = false;
    else if (a == "--unfreeze") spec.unfreeze = split_commas(value());
    else if (a == "--freeze") spec.freeze = split_commas(value());
    else if (a == "--attention-dropout") spec.attention_dropout = std::stod(value());
    else if (a == "--dropout-seed") dropout_seed = std::stoull(value());
    else fail("unknown option ", a);
  }

  auto lm = model::CausalLM::load(model_dir, {"cpu", "float32"});
  auto trainable = train::setup_trainable(lm, spec, 0);
  for (const auto& l : trainable.log) std::cerr << l << "\n";
  io::NamedTensors out;
  for (const auto& [name, p] : model::lora_parameters(lm))
    if (name.find("magnitude") != std::string::npos) out.emplace_back("attached/" + name, p.detach().clone());
  if (spec.lora && init != "-") model::load_lora_weights(lm, io::load_safetensors_dir(init), init);

  auto j = nlohmann::json::parse(io::read_file(batch));
  auto tensor2d = [&](const char* key) {
    auto rows = j.at(key).get<std::vector<std::vector<std::int64_t>>>();
    std::vector<std::int64_t> flat;
    for (auto& r : rows) flat.insert(flat.end(), r.begin(), r.end());
    return at::tensor(flat, at::kLong).view({static_cast<std::int64_t>(rows.size()), -1});
  };
  at::Tensor ids = tensor2d("input_ids"), mask = tensor2d("attention_mask"), labels = tensor2d("labels");

  if (spec.attention_dropout > 0) {
    at::NoGradGuard no_grad;
    lm.set_training(true);
    const std::pair<const char*, std::uint64_t> draws[] = {{"a", dropout_seed}, {"b", dropout_seed}, {"c", dropout_seed + 1}};
    for (const auto& [tag, s] : draws) {
      seed_cpu(s);
      out.emplace_back(std::string("train_logits/") + tag, lm.forward(ids, mask).contiguous());
    }
    lm.set_training(false);
    out.emplace_back("initial_eval_logits", lm.forward(ids, mask).contiguous());
  }

  auto& params = trainable.params;
  lm.set_training(true);
  train::Optimizer opt(params, oc);
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
  for (auto& [name, p] : params) out.emplace_back("param/" + name, p.detach().clone());
  if (!spec.lora)
    for (auto& [name, p] : lm.named_parameters()) out.emplace_back("final/" + name, p.detach().clone());
  lm.set_training(false);
  {
    at::NoGradGuard no_grad;
    out.emplace_back("logits", lm.forward(ids, mask).contiguous());
  }
  std::filesystem::create_directories(out_dir);
  io::save_safetensors(std::filesystem::path(out_dir) / "results.safetensors", out);
  if (spec.lora) model::save_peft_adapter(lm, trainable.lora_config, std::filesystem::path(out_dir) / "adapter", model_dir);
  return 0;
} catch (const std::exception& e) {
  std::cerr << "error: " << e.what() << "\n";
  return 1;
}
