// Prompt construction for generation (see prompting.h).
#include "llmstudio/infer/prompting.h"

#include <nlohmann/json.hpp>

#include "llmstudio/core/error.h"

namespace llmstudio::infer {
namespace fs = std::filesystem;

PromptFormat parse_prompt_format(std::string_view name) {
  if (name == "raw") return PromptFormat::raw;
  if (name == "chat-template" || name == "chat_template") return PromptFormat::chat_template;
  if (name == "h2o") return PromptFormat::h2o;
  fail("prompt format '", name, "' is not known; allowed: raw, chat-template, h2o");
}

const char* to_string(PromptFormat format) {
  switch (format) {
    case PromptFormat::raw: return "raw";
    case PromptFormat::chat_template: return "chat-template";
    case PromptFormat::h2o: return "h2o";
  }
  return "?";
}

void Conversation::trim_history(int num_history) {
  if (num_history < 0 || turns.empty()) return;
  const std::size_t keep = static_cast<std::size_t>(num_history) + 1;  // completed turns + the new one
  if (turns.size() > keep) turns.erase(turns.begin(), turns.end() - static_cast<std::ptrdiff_t>(keep));
}

PromptBuilder::PromptBuilder(tokenizer::Tokenizer tok, const fs::path& model_dir, std::optional<PromptFormat> format,
                             tokenizer::PromptFormatConfig h2o_config)
    : tok_(std::move(tok)), h2o_(std::move(h2o_config)), source_(model_dir.string()) {
  const bool has_config = fs::exists(model_dir / "tokenizer_config.json");
  tokenizer::ChatTemplateConfig cfg;
  if (has_config) cfg = tokenizer::load_chat_template_config(model_dir);
  if (cfg.chat_template.empty()) cfg.chat_template = tok_.chat_template();
  format_ = format.value_or(cfg.chat_template.empty() ? PromptFormat::raw : PromptFormat::chat_template);
  if (format_ == PromptFormat::chat_template) {
    LLMS_CHECK(!cfg.chat_template.empty(), source_, "/tokenizer_config.json: no chat_template; use --prompt-format raw ",
               "(text as is) or h2o (<|prompt|>/<|answer|> markers)");
    template_ = std::make_unique<tokenizer::ChatTemplate>(cfg.chat_template);
    template_options_ = cfg.options();
    template_options_.add_generation_prompt = true;
  }
  if (format_ == PromptFormat::h2o) h2o_.validate();
}

PromptBuilder::~PromptBuilder() = default;
PromptBuilder::PromptBuilder(PromptBuilder&&) noexcept = default;

std::string PromptBuilder::render(const Conversation& c) const {
  LLMS_CHECK(!c.turns.empty(), "prompt: the conversation has no user message");
  switch (format_) {
    case PromptFormat::raw: {
      std::string text = c.system.empty() ? "" : c.system + "\n";
      for (std::size_t i = 0; i < c.turns.size(); ++i) {
        text += c.turns[i].user;
        if (i + 1 < c.turns.size()) text += c.turns[i].assistant;
      }
      return text;
    }
    case PromptFormat::chat_template: {
      nlohmann::ordered_json messages = nlohmann::ordered_json::array();
      if (!c.system.empty()) messages.push_back({{"role", "system"}, {"content", c.system}});
      for (std::size_t i = 0; i < c.turns.size(); ++i) {
        messages.push_back({{"role", "user"}, {"content", c.turns[i].user}});
        if (i + 1 < c.turns.size()) messages.push_back({{"role", "assistant"}, {"content", c.turns[i].assistant}});
      }
      return template_->render(messages, template_options_);
    }
    case PromptFormat::h2o: {
      tokenizer::PromptFormatter f(h2o_, [](std::string_view) { return std::vector<int32_t>{}; }, tok_.eos_token());
      std::string text = f.format_system(c.system);
      for (std::size_t i = 0; i < c.turns.size(); ++i) {
        text += f.format_prompt(c.turns[i].user);
        if (i + 1 < c.turns.size()) text += f.format_answer(c.turns[i].assistant);
      }
      return text;
    }
  }
  return {};
}

std::vector<std::int64_t> PromptBuilder::encode(const Conversation& c) const {
  LLMS_CHECK(!c.turns.empty(), "prompt: the conversation has no user message");
  std::vector<int32_t> ids;
  switch (format_) {
    case PromptFormat::raw: ids = tok_.encode(render(c), true); break;
    // transformers' apply_chat_template(tokenize=True) encodes without adding special tokens: the template
    // places BOS itself.
    case PromptFormat::chat_template: ids = tok_.encode(render(c), false); break;
    case PromptFormat::h2o: {
      // As H2O: each part tokenised on its own (no special tokens), the chain without its last answer.
      const tokenizer::Tokenizer& tok = tok_;
      tokenizer::PromptFormatter f(h2o_, [&tok](std::string_view s) { return tok.encode(s, false); }, tok_.eos_token());
      std::vector<tokenizer::ConversationRow> rows(c.turns.size());
      std::vector<const tokenizer::ConversationRow*> chain;
      for (std::size_t i = 0; i < c.turns.size(); ++i) {
        rows[i].prompt = c.turns[i].user;
        rows[i].answer = i + 1 < c.turns.size() ? c.turns[i].assistant : "";
        if (i == 0) rows[i].system = c.system;
        chain.push_back(&rows[i]);
      }
      ids = f.build(chain).prompt_input_ids;
      break;
    }
  }
  LLMS_CHECK(!ids.empty(), "prompt: formatting (", to_string(format_), ") produced no tokens");
  return {ids.begin(), ids.end()};
}

std::vector<std::int64_t> PromptBuilder::encode_single(const std::string& user, const std::string& system) const {
  Conversation c;
  c.system = system;
  c.turns.push_back({user, ""});
  return encode(c);
}

}  // namespace llmstudio::infer
