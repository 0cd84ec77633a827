// The tokenized data of a fine-tuning run: the experiment's dataset read and split (data::prepare_datasets),
// laid out as prompt/answer samples with its prompt format (H2O markers or the model's chat template), the
// validation conversations (for generated predictions), optional packing into rows, and the batch plan
// (batches per epoch, optimizer steps). Built before the experiment folder exists, so bad data fails early.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "llmstudio/data/dataset_columns.h"
#include "llmstudio/experiment/experiment_config.h"
#include "llmstudio/tokenizer/prompt_format.h"
#include "llmstudio/tokenizer/tokenizer.h"

namespace llmstudio::train {

struct TrainingData {
  std::vector<tokenizer::PromptSample> train;
  std::vector<tokenizer::PromptSample> validation;
  std::vector<tokenizer::ConversationRow> validation_rows;  // the conversations behind `validation`
  std::vector<tokenizer::ConversationRow> train_rows;       // the rows behind `train` (train/augmentation)
  // The formatter's build of one chain of train_rows (oldest first), for samples re-drawn per epoch.
  std::function<tokenizer::PromptSample(const std::vector<const tokenizer::ConversationRow*>&)> build_sample;
  std::vector<std::vector<std::size_t>> packed_rows;   // training.packing: sample indices per row
  std::vector<std::string> warnings;                   // from reading the data
  std::int32_t pad_id = 0;

  // What an epoch shuffles and batches: packed rows, or samples.
  std::size_t train_units() const { return packed_rows.empty() ? train.size() : packed_rows.size(); }
};

TrainingData prepare_training_data(const experiment::ExperimentConfig& cfg, const tokenizer::Tokenizer& tok);

// Optimizer steps per epoch and in all (the run's length), from the batch size, accumulation and drop_last_batch.
struct StepPlan {
  std::int64_t steps_per_epoch = 1;
  std::int64_t total_steps = 0;
};
StepPlan plan_steps(const experiment::ExperimentConfig& cfg, std::size_t train_units, std::int64_t max_steps);

}  // namespace llmstudio::train
