// `llmstudio generate`: text (or token-id) prompts in, generated continuations out, streamed to the terminal.
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "command.h"
#include "llmstudio/core/error.h"
#include "llmstudio/infer/generation.h"
#include "llmstudio/infer/text_stream.h"
#include "llmstudio/io/atomic_file.h"
#include "llmstudio/model/causal_lm.h"
#include "llmstudio/platform/platform.h"
#include "llmstudio/tokenizer/tokenizer.h"

namespace llmstudio::cli {
namespace {
namespace fs = std::filesystem;

struct GenerateOptions {
  std::string model, device, dtype = "auto", ids, input_ids;
  std::vector<std::string> prompts;
  bool raw = false, json = false, greedy = false, do_sample = false;
  std::int64_t max_new_tokens = 256, min_new_tokens = 0, top_k = 0, num_beams = 1;
  double temperature = 1.0, top_p = 1.0, repetition_penalty = 1.0, max_time = 0;
  std::optional<std::uint64_t> seed;
  std::vector<std::int64_t> eos;
};

std::vector<std::int64_t> parse_ids(const std::string& text, const std::string& what) {
  std::istringstream in(text);
  std::vector<std::int64_t> ids;
  std::string tok;
  while (in >> tok) {
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(tok, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    LLMS_CHECK(used == tok.size() && used > 0, what, ": '", tok, "' is not a token id (expected integers)");
    ids.push_back(v);
  }
  return ids;
}

void setup_generate(CLI::App& app) {
  auto o = std::make_shared<GenerateOptions>();
  auto* cmd = app.add_subcommand("generate", "Generate text from a model folder");
  cmd->add_option("-m,--model", o->model, "Model folder (config.json, *.safetensors, tokenizer.json)")->required();
  cmd->add_option("-p,--prompt", o->prompts, "Prompt text (repeat for a batch)");
  cmd->add_option("--ids", o->ids, "One prompt as token ids, e.g. '1 15043 3186'");
  cmd->add_option("--input-ids", o->input_ids, "JSON file {\"prompts\": [[ids...], ...]}: a batch of token-id prompts");
  cmd->add_flag("--raw", o->raw, "Feed the prompt text to the tokenizer as is (no chat template)");
  cmd->add_option("--max-new-tokens", o->max_new_tokens, "Tokens to generate at most (H2O max_length_inference)");
  cmd->add_option("--min-new-tokens", o->min_new_tokens, "EOS is suppressed before this many (H2O min_length_inference)");
  cmd->add_flag("--greedy", o->greedy, "Greedy decoding (default)");
  cmd->add_flag("--do-sample", o->do_sample, "Sample with temperature/top-k/top-p");
  cmd->add_option("--temperature", o->temperature, "Sampling temperature");
  cmd->add_option("--top-k", o->top_k, "Keep the k most likely tokens (0 = off)");
  cmd->add_option("--top-p", o->top_p, "Nucleus sampling threshold (1 = off)");
  cmd->add_option("--repetition-penalty", o->repetition_penalty, "Penalty for tokens already seen (1 = off)");
  cmd->add_option("--max-time", o->max_time, "Stop after this many seconds (0 = no limit)");
  cmd->add_option("--num-beams", o->num_beams, "Beam search is not implemented: only 1");
  cmd->add_option("--seed", o->seed, "Random seed for sampling (reproducible output)");
  cmd->add_option("--eos-id", o->eos, "End-of-sequence token id(s) (default: the model's)");
  cmd->add_option("--device", o->device, "auto|cpu|cuda|cuda:N|mps (default: $LLMSTUDIO_DEVICE or auto)");
  cmd->add_option("--dtype", o->dtype, "auto|float32|bfloat16|float16");
  cmd->add_flag("--json", o->json, "Print one JSON object per prompt (prompt, text, token ids)");
  cmd->callback([o] {
    LLMS_CHECK(!(o->greedy && o->do_sample), "--greedy and --do-sample exclude each other");
    auto facts = platform::probe_platform();
    auto choice = platform::choose_device(facts, platform::device_request_from(o->device), o->dtype);
    auto lm = model::CausalLM::load(o->model, {choice.device, choice.dtype});
    infer::GenerationConfig g = infer::generation_defaults(o->model, lm.config());
    g.max_new_tokens = o->max_new_tokens;
    g.min_new_tokens = o->min_new_tokens;
    g.do_sample = o->do_sample;
    g.temperature = o->temperature;
    g.top_k = o->top_k;
    g.top_p = o->top_p;
    g.repetition_penalty = o->repetition_penalty;
    g.max_time = o->max_time;
    g.num_beams = o->num_beams;
    g.seed = o->seed;
    if (!o->eos.empty()) g.eos_token_ids = o->eos;
    g.validate();

    std::vector<std::vector<std::int64_t>> prompts;
    std::vector<std::string> texts;
    std::optional<tokenizer::Tokenizer> tok;
    const bool have_tokenizer = fs::exists(fs::path(o->model) / "tokenizer.json");
    if (have_tokenizer) tok = tokenizer::Tokenizer::from_path(o->model);
    if (!o->ids.empty()) prompts.push_back(parse_ids(o->ids, "--ids"));
    if (!o->input_ids.empty()) {
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(io::read_file(o->input_ids));
      } catch (const nlohmann::json::parse_error& e) {
        fail(o->input_ids, ": invalid JSON: ", e.what());
      }
      LLMS_CHECK(j.is_object() && j.contains("prompts") && j["prompts"].is_array(), o->input_ids,
                 ": expected {\"prompts\": [[ids...], ...]}");
      for (const auto& p : j["prompts"]) {
        LLMS_CHECK(p.is_array(), o->input_ids, ": each prompt must be a list of token ids");
        prompts.push_back(p.get<std::vector<std::int64_t>>());
      }
    }
    for (const auto& text : o->prompts) {
      LLMS_CHECK(tok.has_value(), "text prompts need a tokenizer.json in ", o->model, "; give token ids with --ids instead");
      LLMS_CHECK(o->raw, "chat-template formatting is not available yet: add --raw to feed the prompt text as is");
      auto ids = tok->encode(text, true);
      prompts.emplace_back(ids.begin(), ids.end());
      texts.push_back(text);
    }
    LLMS_CHECK(!prompts.empty(), "no prompt: give -p TEXT, --ids or --input-ids");
    texts.resize(prompts.size());

    // Stream the text of a single prompt to the terminal as it is generated.
    const bool stream = !o->json && prompts.size() == 1 && tok.has_value();
    std::optional<infer::TextStream> streamer;
    if (stream) streamer.emplace(*tok);
    auto t0 = std::chrono::steady_clock::now();
    auto results = infer::generate(lm, prompts, g, [&](std::size_t, std::int64_t token) {
      if (streamer) std::cout << streamer->push(token) << std::flush;
      return false;
    });
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (streamer) std::cout << streamer->flush() << "\n";
    std::size_t total = 0;
    for (std::size_t i = 0; i < results.size(); ++i) {
      const auto& r = results[i];
      total += r.tokens.size();
      std::string text;
      if (tok) {
        std::vector<int32_t> ids(r.tokens.begin(), r.tokens.end());
        text = tok->decode(ids, true);
      }
      if (o->json) {
        nlohmann::json j = {{"prompt", texts[i]}, {"prompt_ids", prompts[i]}, {"text", text},
                            {"token_ids", r.tokens}, {"finish_reason", r.finish_reason}};
        std::cout << j.dump() << "\n";
      } else if (!stream) {
        std::cout << "[" << i << "] ";
        if (tok) std::cout << text; else for (auto t : r.tokens) std::cout << t << " ";
        std::cout << "  (" << r.finish_reason << ")\n";
      }
    }
    if (!o->json)
      std::cerr << total << " tokens in " << secs << " s (" << (secs > 0 ? static_cast<double>(total) / secs : 0.0)
                << " tokens/s) on " << choice.device << "\n";
  });
}

}  // namespace
LLMS_COMMAND(60, setup_generate);
}  // namespace llmstudio::cli
