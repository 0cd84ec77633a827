// Validation predictions and the ranking metric (see validation.h).
#include "llmstudio/train/validation.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "llmstudio/core/error.h"
#include "llmstudio/infer/generation.h"
#include "llmstudio/infer/model_source.h"
#include "llmstudio/infer/prediction_io.h"
#include "llmstudio/infer/text_generation.h"
#include "llmstudio/io/atomic_file.h"

namespace llmstudio::train {
namespace fs = std::filesystem;

ValidationMetric ValidationMetric::from_config(const ExperimentConfig& cfg) {
  ValidationMetric m;
  m.kind = cfg.prediction.metric;
  switch (m.kind) {
    case experiment::MetricKind::Perplexity: m.higher_is_better = false; break;
    case experiment::MetricKind::BLEU: m.higher_is_better = true; break;
    case experiment::MetricKind::GPT:  // replaced by Perplexity when the config loads (config_schema.cpp)
      fail("prediction.metric 'GPT' has no evaluation here; expected Perplexity or BLEU");
  }
  return m;
}

double ValidationMetric::worst() const { return higher_is_better ? -INFINITY : INFINITY; }

bool ValidationMetric::improves(double value, double best) const {
  if (std::isnan(value)) return false;
  return higher_is_better ? value > best : value < best;
}

std::string clean_prediction(std::string_view text, const std::vector<std::string>& stop_words) {
  std::string_view s = strip_whitespace(text);
  const std::size_t cut = infer::find_stop(s, stop_words);
  if (cut != std::string_view::npos) s = s.substr(0, cut);
  return std::string(strip_whitespace(s));
}

namespace {

infer::GenerationConfig generation_config(const PredictionConfig& p, std::uint64_t seed) {
  infer::GenerationConfig g;
  infer::apply_prediction_settings(g, p);
  if (p.do_sample) g.seed = seed;  // reproducible sampled validation
  return g;
}

// Restores the model's training flag when the prediction ends (also on errors).
struct EvalMode {
  explicit EvalMode(model::CausalLM& lm) : lm(lm), was(lm.training()) { lm.set_training(false); }
  ~EvalMode() { lm.set_training(was); }
  model::CausalLM& lm;
  bool was;
};

}  // namespace

ValidationPredictor::ValidationPredictor(const ExperimentConfig& cfg, const tokenizer::Tokenizer& tok,
                                         fs::path backbone, const std::vector<tokenizer::ConversationRow>& rows,
                                         const std::vector<tokenizer::PromptSample>& samples, std::uint64_t seed)
    : tok_(tok),
      backbone_(std::move(backbone)),
      pcfg_(cfg.prediction),
      batch_size_(cfg.prediction.batch_size_inference > 0 ? cfg.prediction.batch_size_inference : cfg.training.batch_size),
      seed_(seed),
      stops_(experiment::stop_words(cfg)) {
  try {
    generation_config(pcfg_, seed_).validate();
  } catch (const Error& e) {
    fail("prediction section (used for the BLEU validation predictions): ", e.what());
  }
  // The targets: the answer of each sample's last row, chained exactly as PromptFormatter::build_all chains.
  const auto chains = tokenizer::build_conversation_chains(rows, cfg.dataset.limit_chained_samples);
  LLMS_CHECK(chains.size() == samples.size(), "validation predictions: ", samples.size(), " samples but ", chains.size(),
             " conversation chains (internal: samples must be built from the same rows)");
  for (std::size_t i = 0; i < samples.size(); ++i) {
    const auto& ids = samples[i].prompt_input_ids;
    LLMS_CHECK(!ids.empty(), "validation sample ", i + 1, " has an empty prompt after formatting");
    prompts_.emplace_back(ids.begin(), ids.end());
    prompt_texts_.push_back(tok_.decode(ids, false));
    targets_.push_back(rows[chains[i].back()].answer);
  }
}

ValidationPredictions ValidationPredictor::predict(model::CausalLM& lm, std::int64_t step) const {
  const auto t0 = std::chrono::steady_clock::now();
  EvalMode eval(lm);
  at::NoGradGuard no_grad;
  if (!generation_) {  // once per run: generation_config.json is read and the stop words encoded the first time
    infer::GenerationConfig g = generation_config(pcfg_, seed_);
    const infer::GenerationConfig defaults = infer::generation_defaults(backbone_, lm.config());
    g.eos_token_ids = defaults.eos_token_ids;
    g.pad_token_id = defaults.pad_token_id;
    infer::add_tokenizer_eos(g, tok_);
    infer::add_stop_word_eos(g, tok_, stops_);
    g.validate();
    generation_ = std::move(g);
  }
  const infer::GenerationConfig& g = *generation_;

  ValidationPredictions out;
  out.step = step;
  out.rows.resize(prompts_.size());
  // Prompts of similar length share a batch (less left padding); results go back to sample order.
  std::vector<std::size_t> order(prompts_.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return prompts_[a].size() > prompts_[b].size(); });
  for (std::size_t start = 0; start < order.size(); start += static_cast<std::size_t>(batch_size_)) {
    const std::size_t end = std::min(order.size(), start + static_cast<std::size_t>(batch_size_));
    std::vector<std::vector<std::int64_t>> batch;
    for (std::size_t k = start; k < end; ++k) batch.push_back(prompts_[order[k]]);
    auto results = infer::generate_text(lm, tok_, batch, g, stops_);
    for (std::size_t k = start; k < end; ++k) {
      auto& r = results[k - start];
      auto& row = out.rows[order[k]];
      row.prompt_text = prompt_texts_[order[k]];
      row.target_text = targets_[order[k]];
      row.predicted_text = clean_prediction(r.text, stops_);
      row.finish_reason = r.finish_reason;
      out.generated_tokens += static_cast<std::int64_t>(r.tokens.size());
    }
  }
  std::vector<std::string> hyps, refs;
  for (auto& row : out.rows) {
    row.bleu = sentence_bleu(row.predicted_text, {row.target_text}).score;
    hyps.push_back(row.predicted_text);
    refs.push_back(row.target_text);
  }
  out.corpus = corpus_bleu(hyps, {refs});
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

void write_validation_predictions(const fs::path& file, const ValidationPredictions& predictions) {
  std::string csv = "prompt_text,target_text,predicted_text,bleu,finish_reason\n";
  char num[32];
  for (const auto& r : predictions.rows) {
    std::snprintf(num, sizeof num, "%.17g", r.bleu);
    csv += infer::csv_field(r.prompt_text) + "," + infer::csv_field(r.target_text) + "," +
           infer::csv_field(r.predicted_text) + "," + num + "," + r.finish_reason + "\n";
  }
  io::write_file_atomic(file, csv);
}

}  // namespace llmstudio::train
