// `llmstudio generate`: text (or token-id) prompts in, generated continuations out, streamed to the terminal;
// batch prediction from a CSV/JSONL file. Prompts are formatted by infer::PromptBuilder (chat template, H2O
// markers or raw), stop strings and streaming by infer::generate_text.
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "command.h"
#include "generation_flags.h"
#include "llmstudio/core/error.h"
#include "llmstudio/infer/prediction_io.h"
#include "llmstudio/infer/text_generation.h"
#include "llmstudio/io/atomic_file.h"
#include "llmstudio/io/json_text.h"

namespace llmstudio::cli {
namespace {
namespace fs = std::filesystem;

struct GenerateOptions {
  GenerationFlags flags;
  std::string ids, input_ids, input, output;
  std::vector<std::string> prompts;
  bool raw = false, json = false;
  std::int64_t batch_size = 8;
  std::int64_t warmup = 0;
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

std::vector<std::vector<std::int64_t>> read_id_prompts(const std::string& file) {
  const nlohmann::json j = io::parse_json(io::read_file(file), file);
  LLMS_CHECK(j.is_object() && j.contains("prompts") && j["prompts"].is_array(), file,
             ": expected {\"prompts\": [[ids...], ...]}");
  std::vector<std::vector<std::int64_t>> prompts;
  for (const auto& p : j["prompts"]) {
    LLMS_CHECK(p.is_array(), file, ": each prompt must be a list of token ids");
    prompts.push_back(p.get<std::vector<std::int64_t>>());
  }
  return prompts;
}

// --input FILE --output FILE: batches of --batch-size prompts (left-padded by generate()).
void predict_file(const GenerateOptions& o, LoadedModel& m, const infer::GenerationConfig& g) {
  LLMS_CHECK(!o.output.empty(), "--input needs --output <file.jsonl|file.csv>");
  LLMS_CHECK(o.batch_size > 0, "--batch-size must be > 0, found ", o.batch_size);
  auto rows = infer::read_prompt_rows(o.input);
  auto builder = prompt_builder(o.flags, m, o.raw);
  std::vector<infer::PredictionRow> out;
  auto t0 = std::chrono::steady_clock::now();
  std::size_t total = 0;
  for (std::size_t start = 0; start < rows.size(); start += static_cast<std::size_t>(o.batch_size)) {
    const std::size_t end = std::min(rows.size(), start + static_cast<std::size_t>(o.batch_size));
    std::vector<std::vector<std::int64_t>> prompts;
    for (std::size_t i = start; i < end; ++i)
      prompts.push_back(builder.encode_single(rows[i].prompt, rows[i].system.empty() ? o.flags.system : rows[i].system));
    auto results = infer::generate_text(m.lm, *m.tok, prompts, g, stop_strings(o.flags, m));
    for (std::size_t i = start; i < end; ++i) {
      auto& r = results[i - start];
      total += r.tokens.size();
      out.push_back({rows[i].prompt, rows[i].system, r.text, prompts[i - start], r.tokens, r.finish_reason});
    }
    std::cerr << "generated " << end << "/" << rows.size() << "\r" << std::flush;
  }
  infer::write_predictions(o.output, out);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cerr << "\n" << rows.size() << " predictions (" << total << " tokens, " << secs << " s) written to " << o.output
            << "\n";
}

void setup_generate(CLI::App& app) {
  auto o = std::make_shared<GenerateOptions>();
  auto* cmd = app.add_subcommand("generate", "Generate text from a model folder or a finished experiment");
  add_generation_flags(cmd, o->flags);
  cmd->add_option("-p,--prompt", o->prompts, "Prompt text (repeat for a batch)");
  cmd->add_option("--ids", o->ids, "One prompt as token ids, e.g. '1 15043 3186'");
  cmd->add_option("--input-ids", o->input_ids, "JSON file {\"prompts\": [[ids...], ...]}: a batch of token-id prompts");
  cmd->add_option("--input", o->input, "Prompts file (.csv/.jsonl/.parquet with a 'prompt' column, optional 'system')");
  cmd->add_option("--output", o->output, "Predictions file for --input (.jsonl or .csv)");
  cmd->add_option("--batch-size", o->batch_size, "Prompts per batch for --input (left-padded)");
  cmd->add_flag("--raw", o->raw, "Feed the prompt text to the tokenizer as is (same as --prompt-format raw)");
  cmd->add_flag("--json", o->json, "Print one JSON object per prompt (prompt, text, token ids)");
  cmd->add_option("--warmup", o->warmup,
                  "Benchmarking: first run an untimed generation of this many tokens on the same prompts with the same "
                  "settings (loads GPU kernels and libraries, fills the allocator, captures the CUDA graph), then the "
                  "timed one");
  cmd->callback([o] {
    LoadedModel m = load_model(o->flags);
    const infer::GenerationConfig g = generation_config(o->flags, m);
    if (!o->input.empty()) return predict_file(*o, m, g);

    std::vector<std::vector<std::int64_t>> prompts;
    std::vector<std::string> texts;
    if (!o->ids.empty()) prompts.push_back(parse_ids(o->ids, "--ids"));
    if (!o->input_ids.empty())
      for (auto& p : read_id_prompts(o->input_ids)) prompts.push_back(std::move(p));
    texts.resize(prompts.size());
    if (!o->prompts.empty()) {
      auto builder = prompt_builder(o->flags, m, o->raw);
      for (const auto& text : o->prompts) {
        prompts.push_back(builder.encode_single(text, o->flags.system));
        texts.push_back(text);
      }
    }
    LLMS_CHECK(!prompts.empty(), "no prompt: give -p TEXT, --ids, --input-ids or --input FILE");
    LLMS_CHECK(o->flags.stop.empty() || m.tok, "--stop needs a tokenizer.json in ", o->flags.model);

    if (o->warmup > 0) {
      // The timed run's settings (so the same decode step and CUDA graph serve both), stopped after `warmup` tokens.
      std::vector<std::int64_t> made(prompts.size(), 0);
      infer::generate(m.lm, prompts, g, [&](std::size_t row, std::int64_t) { return ++made[row] >= o->warmup; });
    }
    auto t0 = std::chrono::steady_clock::now();
    std::vector<infer::TextGenerationResult> results;
    const bool stream = !o->json && prompts.size() == 1 && m.tok.has_value();
    if (m.tok) {
      results = infer::generate_text(m.lm, *m.tok, prompts, g, stop_strings(o->flags, m), [&](std::size_t, std::string_view s) {
        if (stream) std::cout << s << std::flush;
      });
    } else {
      for (auto& s : infer::generate(m.lm, prompts, g)) results.push_back({std::move(s.tokens), "", s.finish_reason});
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (stream) std::cout << "\n";
    std::size_t total = 0;
    for (std::size_t i = 0; i < results.size(); ++i) {
      const auto& r = results[i];
      total += r.tokens.size();
      if (o->json) {
        nlohmann::json j = {{"prompt", texts[i]}, {"prompt_ids", prompts[i]}, {"text", r.text},
                            {"token_ids", r.tokens}, {"finish_reason", r.finish_reason}};
        std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
      } else if (!stream) {
        std::cout << "[" << i << "] ";
        if (m.tok) std::cout << r.text; else for (auto t : r.tokens) std::cout << t << " ";
        std::cout << "  (" << r.finish_reason << ")\n";
      }
    }
    if (!o->json)
      std::cerr << total << " tokens in " << secs << " s (" << (secs > 0 ? static_cast<double>(total) / secs : 0.0)
                << " tokens/s) on " << m.device << "\n";
  });
}

}  // namespace
LLMS_COMMAND(60, setup_generate);
}  // namespace llmstudio::cli
