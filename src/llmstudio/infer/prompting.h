// Prompt construction for generation: turns a conversation (system prompt, earlier turns, the new user
// message) into the token ids the model continues, in one of three formats:
//   raw            the texts concatenated as is (tokenizer special tokens added, e.g. BOS);
//   chat-template  the tokenizer's Jinja chat_template with add_generation_prompt (as transformers'
//                  apply_chat_template(..., add_generation_prompt=True, tokenize=True));
//   h2o            H2O LLM Studio's <|system|>/<|prompt|>/<|answer|> markers (tokenizer/prompt_format.h),
//                  i.e. what a model fine-tuned by H2O saw in training.
// Also keeps the chat history window (H2O's num_history).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "llmstudio/tokenizer/chat_template.h"
#include "llmstudio/tokenizer/prompt_format.h"
#include "llmstudio/tokenizer/tokenizer.h"

namespace llmstudio::infer {

enum class PromptFormat { raw, chat_template, h2o };

// "raw", "chat-template" (or "chat_template"), "h2o"; Error listing the allowed names otherwise.
PromptFormat parse_prompt_format(std::string_view name);
const char* to_string(PromptFormat format);

struct ChatTurn {
  std::string user;
  std::string assistant;  // empty for the turn being generated
};

struct Conversation {
  std::string system;           // "" = none
  std::vector<ChatTurn> turns;  // oldest first; the last one's assistant text is what the model writes

  // Keeps the last `num_history` completed turns before the last one (H2O's num_history); < 0 keeps all.
  void trim_history(int num_history);
};

class PromptBuilder {
 public:
  // `model_dir` holds tokenizer_config.json (chat template, special tokens). `format` nullopt picks
  // chat-template when the tokenizer has one, raw otherwise. Asking for chat-template without one is an Error
  // naming the folder.
  PromptBuilder(tokenizer::Tokenizer tok, const std::filesystem::path& model_dir,
                std::optional<PromptFormat> format = std::nullopt,
                tokenizer::PromptFormatConfig h2o_config = {});
  ~PromptBuilder();
  PromptBuilder(PromptBuilder&&) noexcept;

  PromptFormat format() const { return format_; }
  // The prompt text (for raw/chat-template exactly what is tokenised; for h2o the parts joined).
  std::string render(const Conversation& conversation) const;
  // The token ids the model continues.
  std::vector<std::int64_t> encode(const Conversation& conversation) const;
  // Convenience: one user message with an optional system prompt.
  std::vector<std::int64_t> encode_single(const std::string& user, const std::string& system = "") const;

  const tokenizer::Tokenizer& tokenizer() const { return tok_; }

 private:
  tokenizer::Tokenizer tok_;
  PromptFormat format_;
  tokenizer::PromptFormatConfig h2o_;
  std::unique_ptr<tokenizer::ChatTemplate> template_;
  tokenizer::ChatTemplateOptions template_options_;
  std::string source_;  // the folder, for errors
};

}  // namespace llmstudio::infer
