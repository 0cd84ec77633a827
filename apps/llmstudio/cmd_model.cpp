// `llmstudio info` (inspect a model folder or .safetensors file) and `llmstudio forward` (one forward pass:
// next-token predictions, optionally all logits to a .safetensors file).
#include <nlohmann/json.hpp>

#include <chrono>
#include <iostream>
#include <sstream>

#include "command.h"
#include "llmstudio/core/error.h"
#include "llmstudio/io/atomic_file.h"
#include "llmstudio/io/json_text.h"
#include "llmstudio/io/safetensors.h"
#include "llmstudio/model/causal_lm.h"
#include "llmstudio/model/model_info.h"
#include "llmstudio/platform/platform.h"

namespace llmstudio::cli {
namespace {

struct InfoOptions {
  std::string path;
  bool tensors = false;
  bool json = false;
};

void setup_info(CLI::App& app) {
  auto o = std::make_shared<InfoOptions>();
  auto* cmd = app.add_subcommand("info", "Validate a model folder or .safetensors file and describe it");
  cmd->add_option("path", o->path, "Model folder (config.json + *.safetensors) or a .safetensors file")->required();
  cmd->add_flag("--tensors", o->tensors, "List every tensor");
  cmd->add_flag("--json", o->json, "Print JSON");
  cmd->callback([o] {
    auto info = model::inspect_model(o->path);
    if (o->json)
      std::cout << model::to_json(info, o->tensors).dump(2) << "\n";
    else
      std::cout << model::format_info(info, o->tensors);
  });
}

struct ForwardOptions {
  std::string model, ids, input, output, device, dtype = "auto";
  int top_k = 5;
  bool json = false;
};

// Token ids from "--ids '1 2 3'" (one sequence) or an --input JSON file {"input_ids": [[..]], "attention_mask": [[..]]}.
std::pair<at::Tensor, at::Tensor> read_batch(const ForwardOptions& o) {
  auto to_tensor = [](const nlohmann::json& rows, const char* what) {
    LLMS_CHECK(rows.is_array() && !rows.empty() && rows[0].is_array(), what, " must be a non-empty list of lists");
    const auto T = static_cast<std::int64_t>(rows[0].size());
    LLMS_CHECK(T > 0, what, " rows must not be empty");
    std::vector<std::int64_t> flat;
    for (const auto& r : rows) {
      LLMS_CHECK(r.is_array() && static_cast<std::int64_t>(r.size()) == T, what,
                 ": every row must have the same length (pad the batch), expected ", T, ", found ", r.dump().substr(0, 80));
      for (const auto& v : r) {
        LLMS_CHECK(v.is_number_integer(), what, ": expected integers, found ", v.dump());
        flat.push_back(v.get<std::int64_t>());
      }
    }
    return at::tensor(flat, at::kLong).view({static_cast<std::int64_t>(rows.size()), T});
  };
  if (!o.input.empty()) {
    nlohmann::json j = io::parse_json(io::read_file(o.input), o.input);
    LLMS_CHECK(j.is_object() && j.contains("input_ids"), o.input, ": expected an object with \"input_ids\"");
    at::Tensor ids = to_tensor(j["input_ids"], "input_ids");
    at::Tensor mask;
    if (j.contains("attention_mask") && !j["attention_mask"].is_null()) {
      mask = to_tensor(j["attention_mask"], "attention_mask");
      LLMS_CHECK(mask.sizes() == ids.sizes(), o.input, ": attention_mask must have the shape of input_ids");
    }
    return {ids, mask};
  }
  std::istringstream in(o.ids);
  std::vector<std::int64_t> ids;
  std::string tok;
  while (in >> tok) {
    try {
      size_t used = 0;
      ids.push_back(std::stoll(tok, &used));
      LLMS_CHECK(used == tok.size(), "");
    } catch (const std::exception&) {
      fail("--ids: '", tok, "' is not a token id (expected integers separated by spaces)");
    }
  }
  LLMS_CHECK(!ids.empty(), "give token ids with --ids '1 2 3' or --input batch.json");
  return {at::tensor(ids, at::kLong).view({1, -1}), at::Tensor()};
}

void setup_forward(CLI::App& app) {
  auto o = std::make_shared<ForwardOptions>();
  auto* cmd = app.add_subcommand("forward", "Run one forward pass: next-token predictions (and logits to a file)");
  cmd->add_option("-m,--model", o->model, "Model folder")->required();
  cmd->add_option("--ids", o->ids, "Token ids of one sequence, e.g. '1 15043 3186'");
  cmd->add_option("--input", o->input, "JSON batch: {\"input_ids\": [[..]], \"attention_mask\": [[..]]} (left padding)");
  cmd->add_option("--output", o->output, "Write all logits (float32, [batch, seq, vocab]) to this .safetensors file");
  cmd->add_option("--device", o->device, "auto|cpu|cuda|cuda:N|mps (default: $LLMSTUDIO_DEVICE or auto)");
  cmd->add_option("--dtype", o->dtype, "auto|float32|bfloat16|float16");
  cmd->add_option("--top-k", o->top_k, "Next-token candidates to print")->check(CLI::Range(1, 100));
  cmd->add_flag("--json", o->json, "Print JSON");
  cmd->callback([o] {
    auto facts = platform::probe_platform();
    auto choice = platform::choose_device(facts, platform::device_request_from(o->device), o->dtype);
    auto [ids, mask] = read_batch(*o);
    auto t0 = std::chrono::steady_clock::now();
    auto lm = model::CausalLM::load(o->model, {choice.device, choice.dtype});
    auto t1 = std::chrono::steady_clock::now();
    at::Tensor logits = lm.forward(ids, mask).to(at::kFloat).cpu();
    auto t2 = std::chrono::steady_clock::now();
    if (!o->output.empty()) io::save_safetensors(o->output, {{"logits", logits.contiguous()}}, {{"model", o->model}});
    auto [vals, idx] = logits.select(1, -1).topk(o->top_k, -1);
    auto ms = [](auto a, auto b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
    nlohmann::json j;
    j["device"] = choice.device;
    j["dtype"] = choice.dtype;
    j["architecture"] = lm.config().architecture;
    j["shape"] = std::vector<std::int64_t>(logits.sizes().begin(), logits.sizes().end());
    j["load_ms"] = ms(t0, t1);
    j["forward_ms"] = ms(t1, t2);
    j["next_token_top_k"] = nlohmann::json::array();
    for (std::int64_t b = 0; b < idx.size(0); ++b) {
      nlohmann::json row = nlohmann::json::array();
      for (std::int64_t k = 0; k < idx.size(1); ++k)
        row.push_back({{"id", idx[b][k].item<std::int64_t>()}, {"logit", vals[b][k].item<float>()}});
      j["next_token_top_k"].push_back(row);
    }
    if (o->json) {
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::cout << lm.config().architecture << " on " << choice.device << " (" << choice.dtype << "): logits "
              << j["shape"].dump() << ", load " << static_cast<int>(ms(t0, t1)) << " ms, forward "
              << static_cast<int>(ms(t1, t2)) << " ms\n";
    for (std::int64_t b = 0; b < idx.size(0); ++b) {
      std::cout << "  sequence " << b << " next-token top-" << o->top_k << ":";
      for (const auto& e : j["next_token_top_k"][b]) std::cout << " " << e["id"] << " (" << e["logit"].get<float>() << ")";
      std::cout << "\n";
    }
    if (!o->output.empty()) std::cout << "  logits written to " << o->output << "\n";
  });
}

}  // namespace
LLMS_COMMAND(20, setup_info);
LLMS_COMMAND(21, setup_forward);
}  // namespace llmstudio::cli
