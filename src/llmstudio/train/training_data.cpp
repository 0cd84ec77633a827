// Data preparation and the step plan of a fine-tuning run (see training_data.h).
#include "llmstudio/train/training_data.h"

#include <algorithm>
#include <memory>
#include <optional>

#include "llmstudio/core/error.h"
#include "llmstudio/data/dataset_split.h"
#include "llmstudio/tokenizer/chat_template.h"
#include "llmstudio/train/batching.h"
#include "llmstudio/train/packing.h"

namespace llmstudio::train {

TrainingData prepare_training_data(const experiment::ExperimentConfig& cfg, const tokenizer::Tokenizer& tok) {
  TrainingData out;
  const auto spec = experiment::dataset_spec(cfg);
  auto datasets = data::prepare_datasets(spec);
  out.warnings = datasets.report.warnings;
  tokenizer::Encoder enc = [&tok](std::string_view s) { return tok.encode(s, false); };
  // Shared, so that build_sample keeps the formatter (and the chat template it points to) alive.
  auto chat = std::make_shared<std::optional<tokenizer::ChatTemplate>>();
  if (cfg.dataset.use_chat_template) {
    LLMS_CHECK(!tok.chat_template().empty(), "dataset.use_chat_template is true but ", cfg.llm_backbone,
               " has no chat_template in tokenizer_config.json");
    chat->emplace(tok.chat_template());
  }
  tokenizer::ChatTemplateOptions topts;
  if (!tok.bos_token().empty()) topts.bos_token = tok.bos_token();
  if (!tok.eos_token().empty()) topts.eos_token = tok.eos_token();
  auto formatter = std::make_shared<tokenizer::PromptFormatter>(experiment::prompt_format_config(cfg), enc, tok.eos_token(),
                                                                *chat ? &**chat : nullptr, topts);
  out.train_rows = data::to_conversation_rows(datasets.train, spec.columns);
  out.train = formatter->build_all(out.train_rows);
  out.build_sample = [formatter, chat](const std::vector<const tokenizer::ConversationRow*>& c) { return formatter->build(c); };
  out.validation_rows = data::to_conversation_rows(datasets.validation, spec.columns);
  out.validation = formatter->build_all(out.validation_rows);
  LLMS_CHECK(!out.train.empty(), "no training samples after preparing ", cfg.dataset.train_dataframe);
  out.pad_id = tok.pad_id().value_or(tok.eos_id().value_or(0));
  // training.packing: rows of samples are formed once; an epoch then shuffles and batches rows, not samples.
  if (cfg.training.packing) out.packed_rows = pack_samples(sample_lengths(out.train), cfg.tokenizer.max_length);
  return out;
}

StepPlan plan_steps(const experiment::ExperimentConfig& cfg, std::size_t train_units, std::int64_t max_steps) {
  const auto batches_per_epoch = static_cast<std::int64_t>(
      make_batches(epoch_order(train_units, 0, 0, false), cfg.training.batch_size, cfg.training.drop_last_batch).size());
  StepPlan p;
  p.steps_per_epoch = std::max<std::int64_t>(1, batches_per_epoch / cfg.training.grad_accumulation);
  p.total_steps = p.steps_per_epoch * cfg.training.epochs;
  if (max_steps > 0) p.total_steps = std::min(p.total_steps, max_steps);
  return p;
}

}  // namespace llmstudio::train
