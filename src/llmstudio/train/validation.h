// Generation-based validation of a fine-tuning run (prediction.metric "BLEU"): greedy answers to the validation
// samples from the model in its current state (LoRA unmerged), their corpus BLEU against the answers (bleu.h),
// and <experiment>/validation_predictions.csv. Also the metric rule for `save_checkpoint: best` (BLEU higher is
// better, Perplexity lower).
//
// As in H2O LLM Studio: the prompt is the sample's generation prompt exactly as formatted for training (the
// conversation chain without its last answer); generation follows the prediction section (max/min_length_
// inference, do_sample/temperature/top_k/top_p, repetition_penalty, max_time, batch_size_inference or the
// training batch size); the stop words are prediction.stop_tokens split on "," plus, with H2O's markers, the
// stripped text_system_start/text_prompt_start/text_answer_separator (one-token stop words also end a row like EOS;
// the same rule as infer::default_stop_strings for experiments); the prediction is stripped, cut at the first
// stop word and stripped again (H2O's clean_output); the target is the answer of the chain's last row.
// Difference: H2O's BLEU averages per-row sentence BLEU; ours is corpus BLEU (sacrebleu.corpus_bleu), the standard
// corpus-level score; the per-row sentence BLEU (effective order, as H2O) is in the CSV.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "llmstudio/experiment/experiment_config.h"
#include "llmstudio/infer/generation.h"
#include "llmstudio/model/causal_lm.h"
#include "llmstudio/tokenizer/prompt_format.h"
#include "llmstudio/tokenizer/tokenizer.h"
#include "llmstudio/train/bleu.h"
#include "llmstudio/experiment/experiment_config.h"

namespace llmstudio::train {

using experiment::ExperimentConfig;
using experiment::PredictionConfig;

// The validation metric that ranks evaluations (prediction.metric).
struct ValidationMetric {
  experiment::MetricKind kind = experiment::MetricKind::Perplexity;  // Perplexity: ranked by validation loss
  bool higher_is_better = false;

  static ValidationMetric from_config(const ExperimentConfig& cfg);
  bool generates() const { return kind == experiment::MetricKind::BLEU; }
  // The starting "best" value (worse than any real one).
  double worst() const;
  // True when `value` beats `best`; NaN never does.
  bool improves(double value, double best) const;
};

struct ValidationPrediction {
  std::string prompt_text;     // the generation prompt, decoded with its special tokens
  std::string target_text;     // the answer of the sample's last row
  std::string predicted_text;  // the cleaned generated text
  double bleu = 0;             // sentence BLEU (effective order) of this row
  std::string finish_reason;   // "eos", "length", "stop", "time"
};

struct ValidationPredictions {
  std::int64_t step = 0;
  std::vector<ValidationPrediction> rows;  // in validation-sample order
  BleuScore corpus;                        // corpus BLEU of predicted vs target texts
  std::int64_t generated_tokens = 0;
  double seconds = 0;
};

class ValidationPredictor {
 public:
  // `rows` are the validation dataset's rows and `samples` the PromptFormatter samples built from them (same
  // order). Checks the prediction settings (Error naming the key) so that a bad config fails before training.
  // `tok` must outlive the predictor.
  ValidationPredictor(const ExperimentConfig& cfg, const tokenizer::Tokenizer& tok, std::filesystem::path backbone,
                      const std::vector<tokenizer::ConversationRow>& rows,
                      const std::vector<tokenizer::PromptSample>& samples, std::uint64_t seed);

  std::size_t size() const { return prompts_.size(); }
  const std::vector<std::string>& stop_words() const { return stops_; }

  // Generates the answers (eval mode and no grad for the call; the model's mode is restored) and scores them.
  ValidationPredictions predict(model::CausalLM& lm, std::int64_t step) const;

 private:
  const tokenizer::Tokenizer& tok_;
  std::filesystem::path backbone_;
  PredictionConfig pcfg_;
  std::int64_t batch_size_;
  std::uint64_t seed_;
  std::vector<std::vector<std::int64_t>> prompts_;
  std::vector<std::string> prompt_texts_, targets_, stops_;
  mutable std::optional<infer::GenerationConfig> generation_;  // built on the first predict()
};

// H2O's clean_output on one text: strip, cut at the earliest stop word, strip.
std::string clean_prediction(std::string_view text, const std::vector<std::string>& stop_words);

// Writes the predictions as CSV (prompt_text, target_text, predicted_text, bleu, finish_reason), atomically.
void write_validation_predictions(const std::filesystem::path& file, const ValidationPredictions& predictions);

}  // namespace llmstudio::train
