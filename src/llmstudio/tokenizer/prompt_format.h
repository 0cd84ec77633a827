// H2O LLM Studio's causal-LM sample construction, so its dataset configs and data carry over unchanged:
// conversation chains from id/parent_id rows (ConversationChainHandler), the prompt/answer/system markers with
// their eos tokens (CustomDataset.parse_prompt/parse_answer/parse_system, markers decoded like Python's
// codecs "unicode_escape"), per-part tokenisation and truncation, label masking (mask_prompt_labels,
// only_last_answer), left truncation of the chain to max_length, and H2O's left padding. Alternatively a
// chain can be laid out by the model's chat template (use_chat_template).
//
// Deliberate differences from H2O, all in error handling: duplicate ids, self-parenting and circular parent
// chains are errors (H2O's sanity check rejects them too, its chain builder loops up to 1000 hops); parent ids
// that match no row start a new conversation, as in H2O, and are counted in ChainStats.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "llmstudio/tokenizer/chat_template.h"

namespace llmstudio::tokenizer {

// H2O's dataset/tokenizer settings for causal language modelling (names and defaults as in H2O's
// ConfigNLPCausalLMDataset / ConfigNLPCausalLMTokenizer).
struct PromptFormatConfig {
  std::string text_system_start = "<|system|>";
  std::string text_prompt_start = "<|prompt|>";
  std::string text_answer_separator = "<|answer|>";
  bool add_eos_token_to_system = true;
  bool add_eos_token_to_prompt = true;
  bool add_eos_token_to_answer = true;
  // true: one sample per complete conversation (rows that are nobody's parent); false: one sample per row,
  // holding the row and all its ancestors.
  bool limit_chained_samples = false;
  bool mask_prompt_labels = true;  // labels of system/prompt tokens are -100
  // Only with mask_prompt_labels (as in H2O, no effect otherwise): answers before the last are masked too.
  bool only_last_answer = false;
  int64_t max_length = 512;  // tokens per sample; each part is also cut to this before concatenation
  // Lay out the chain with the model's chat template instead of the markers above (the add_eos_* settings then
  // do not apply: the template places its own end-of-turn tokens).
  bool use_chat_template = false;

  // Throws llmstudio::Error naming the offending setting.
  void validate() const;
};

// One dataset row. `id`/`parent_id` chain rows into conversations (nullopt or "" parent = conversation start).
struct ConversationRow {
  std::optional<std::string> id;
  std::optional<std::string> parent_id;
  std::string system;  // "" = no system prompt
  std::string prompt;
  std::string answer;
};

struct ChainStats {
  std::size_t dangling_parent_ids = 0;  // parent ids naming no row; those rows start a conversation
};

// Row-index chains (oldest round first), one per sample, in row order. See PromptFormatConfig::
// limit_chained_samples for which rows end a sample. Throws llmstudio::Error on duplicate ids,
// self-parenting or circular parent chains.
std::vector<std::vector<std::size_t>> build_conversation_chains(const std::vector<ConversationRow>& rows,
                                                                bool limit_chained_samples,
                                                                ChainStats* stats = nullptr);

// Decodes escapes in a marker string exactly like Python's codecs.decode(s, "unicode_escape"), which H2O applies
// to text_system_start/text_prompt_start/text_answer_separator ("\\n" -> newline, "\\u00e9" -> é; note that
// literal non-ASCII characters come out as their UTF-8 bytes read as Latin-1, as in H2O).
std::string decode_marker(std::string_view s);

// Tokenises text without adding special tokens (special-token text such as "</s>" must map to its id, as
// Hugging Face tokenizers do).
using Encoder = std::function<std::vector<int32_t>(std::string_view)>;

struct PromptSample {
  std::vector<int32_t> input_ids;       // the whole chain, cut from the left to max_length
  std::vector<int32_t> attention_mask;  // all ones (unpadded)
  std::vector<int32_t> labels;          // input_ids with -100 on masked positions
  std::vector<int32_t> prompt_input_ids;  // the chain without its last answer (the generation prompt)
  std::vector<int32_t> answer_input_ids;  // the last answer
};

// H2O's pad_tokens: left-pads (cuts from the left) input_ids with pad_token_id, attention_mask with 0 and
// labels with -100 to exactly max_length; prompt_input_ids likewise; answer_input_ids is right-padded.
PromptSample pad_sample(const PromptSample& s, int64_t max_length, int32_t pad_token_id);

inline constexpr int32_t kIgnoreIndex = -100;

class PromptFormatter {
 public:
  // `eos_token` is the tokenizer's eos string, appended as text where the add_eos_* settings say (as H2O does).
  // With cfg.use_chat_template, `chat_template` must be given; `template_options` supplies its special tokens.
  PromptFormatter(PromptFormatConfig cfg, Encoder encoder, std::string eos_token,
                  const ChatTemplate* chat_template = nullptr, ChatTemplateOptions template_options = {});

  // The texts H2O tokenises for one round.
  std::string format_system(const std::string& system) const;  // "" stays ""
  std::string format_prompt(const std::string& prompt) const;
  std::string format_answer(const std::string& answer) const;

  // Builds the sample of one chain (rows oldest first); only the first round's system prompt is used.
  PromptSample build(const std::vector<const ConversationRow*>& chain) const;
  // All samples of a dataset, chained per cfg.limit_chained_samples.
  std::vector<PromptSample> build_all(const std::vector<ConversationRow>& rows, ChainStats* stats = nullptr) const;

  const PromptFormatConfig& config() const { return cfg_; }

 private:
  // Per round: tokens of the prompt part (system included in round 0) and of the answer part.
  void encode_with_markers(const std::vector<const ConversationRow*>& chain, std::vector<std::vector<int32_t>>& prompts,
                           std::vector<std::vector<int32_t>>& answers) const;
  void encode_with_template(const std::vector<const ConversationRow*>& chain,
                            std::vector<std::vector<int32_t>>& prompts, std::vector<std::vector<int32_t>>& answers) const;

  PromptFormatConfig cfg_;
  Encoder encode_;
  std::string eos_token_;
  const ChatTemplate* template_;
  ChatTemplateOptions template_options_;
  std::string system_start_, prompt_start_, answer_separator_;  // decoded markers
};

}  // namespace llmstudio::tokenizer
