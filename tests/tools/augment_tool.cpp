// Test helper for tests/parity/test_augmentation_parity.py (train/augmentation.h, model::neftune_noise).
//
//   llms_augment_tool parents ROWS.json SKIP RANDOM SEED EPOCHS LIMIT_CHAINED
//     ROWS.json: [{"id", "parent_id", "system", "prompt", "answer"}, ...] (null for none). Prints JSON:
//     {"chains": [epoch][sample][row], "texts": [epoch][sample] (the sample's tokens as text; the encoder maps
//     each byte to its value), "numpy": {"random": [5 x RandomState(SEED).random()], "randint": [5 x
//     RandomState(SEED).randint(1000)]}}.
//   llms_augment_tool mask MODEL BATCH.json P MAX_LENGTH SEED STEP MICRO MASK_ID OUT.safetensors
//     BATCH.json: {"input_ids", "attention_mask", "labels"} [B, T]. Applies mask_batch_tokens and writes the
//     batch (attention_mask as uint8 [B, 1, T, T]) and "loss": causal_lm_loss of MODEL on it (token averaged).
//   llms_augment_tool neftune MODEL BATCH.json ALPHA SEED OUT.safetensors
//     Writes "train" (logits in training mode with NEFTune, default generator seeded with SEED), "eval" (same
//     model, training off) and "plain" (NEFTune off, training off).
#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <nlohmann/json.hpp>

#include <iostream>
#include <string>

#include "llmstudio/core/error.h"
#include "llmstudio/io/atomic_file.h"
#include "llmstudio/io/safetensors.h"
#include "llmstudio/model/causal_lm.h"
#include "llmstudio/train/augmentation.h"
#include "llmstudio/train/loss.h"

using namespace llmstudio;
using json = nlohmann::json;

namespace {

train::Batch read_batch(const std::string& file) {
  auto j = json::parse(io::read_file(file));
  auto tensor2d = [&](const char* key) {
    auto rows = j.at(key).get<std::vector<std::vector<std::int64_t>>>();
    std::vector<std::int64_t> flat;
    for (auto& r : rows) flat.insert(flat.end(), r.begin(), r.end());
    return at::tensor(flat, at::kLong).view({static_cast<std::int64_t>(rows.size()), -1});
  };
  train::Batch b;
  b.input_ids = tensor2d("input_ids");
  b.attention_mask = tensor2d("attention_mask");
  b.labels = tensor2d("labels");
  return b;
}

std::optional<std::string> opt_string(const json& j, const char* key) {
  if (!j.contains(key) || j.at(key).is_null()) return std::nullopt;
  return j.at(key).get<std::string>();
}

int parents(char** argv) {
  auto rows_json = json::parse(io::read_file(argv[2]));
  const double skip = std::stod(argv[3]), random = std::stod(argv[4]);
  const auto seed = static_cast<std::uint64_t>(std::stoull(argv[5]));
  const int epochs = std::stoi(argv[6]);
  std::vector<tokenizer::ConversationRow> rows;
  for (const auto& r : rows_json) {
    tokenizer::ConversationRow row;
    row.id = opt_string(r, "id");
    row.parent_id = opt_string(r, "parent_id");
    row.system = opt_string(r, "system").value_or("");
    row.prompt = r.at("prompt").get<std::string>();
    row.answer = r.at("answer").get<std::string>();
    rows.push_back(row);
  }
  tokenizer::PromptFormatConfig pcfg;
  pcfg.limit_chained_samples = std::string(argv[7]) == "1";
  pcfg.max_length = 100000;
  tokenizer::Encoder bytes = [](std::string_view s) {
    std::vector<std::int32_t> ids;
    for (unsigned char c : s) ids.push_back(c);
    return ids;
  };
  tokenizer::PromptFormatter formatter(pcfg, bytes, "</s>");
  train::ParentAugmenter aug([&formatter](const auto& chain) { return formatter.build(chain); }, rows,
                            pcfg.limit_chained_samples, skip, random, seed);
  json out = {{"chains", json::array()}, {"texts", json::array()}};
  for (int e = 0; e < epochs; ++e) {
    out["chains"].push_back(aug.epoch_chains(e));
    json texts = json::array();
    for (const auto& s : aug.epoch_samples(e)) texts.push_back(std::string(s.input_ids.begin(), s.input_ids.end()));
    out["texts"].push_back(texts);
  }
  train::NumpyRandom a(static_cast<std::uint32_t>(seed)), b(static_cast<std::uint32_t>(seed));
  for (int i = 0; i < 5; ++i) {
    out["numpy"]["random"].push_back(a.random());
    out["numpy"]["randint"].push_back(b.randint(1000));
  }
  out["seed_example"] = train::augmentation_seed(seed, train::AugmentStream::Parents, 1, 2);
  std::cout << out.dump() << "\n";
  return 0;
}

int mask(char** argv) {
  auto lm = model::CausalLM::load(argv[2]);
  train::Batch b = read_batch(argv[3]);
  train::mask_batch_tokens(b, std::stod(argv[4]), std::stoll(argv[5]), std::stoi(argv[9]), std::stoull(argv[6]),
                           std::stoll(argv[7]), std::stoll(argv[8]));
  at::NoGradGuard ng;
  at::Tensor loss = train::causal_lm_loss(lm.forward(b.input_ids, b.attention_mask, b.position_ids), b.labels,
                                          train::LossKind::TokenAveraged);
  io::save_safetensors(argv[10], {{"input_ids", b.input_ids},
                                  {"labels", b.labels},
                                  {"attention_mask", b.attention_mask.to(at::kByte)},
                                  {"position_ids", b.position_ids},
                                  {"loss", loss.reshape({1}).to(at::kFloat)}});
  return 0;
}

int neftune(char** argv) {
  auto lm = model::CausalLM::load(argv[2]);
  train::Batch b = read_batch(argv[3]);
  const double alpha = std::stod(argv[4]);
  at::NoGradGuard ng;
  lm.set_neftune_noise_alpha(alpha);
  lm.set_training(true);
  at::manual_seed(std::stoull(argv[5]));
  at::Tensor train_logits = lm.forward(b.input_ids, b.attention_mask);
  lm.set_training(false);
  at::Tensor eval_logits = lm.forward(b.input_ids, b.attention_mask);
  lm.set_neftune_noise_alpha(0);
  at::Tensor plain = lm.forward(b.input_ids, b.attention_mask);
  io::save_safetensors(argv[6], {{"train", train_logits}, {"eval", eval_logits}, {"plain", plain}});
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "parents" && argc == 8) return parents(argv);
    if (mode == "mask" && argc == 11) return mask(argv);
    if (mode == "neftune" && argc == 7) return neftune(argv);
    std::cerr << "usage: see the comment at the top of tests/tools/augment_tool.cpp\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
