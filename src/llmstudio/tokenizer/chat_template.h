// Hugging Face chat templates: renders a conversation through a model's Jinja `chat_template` exactly as
// transformers' `apply_chat_template(..., tokenize=False)` does (jinja2 with trim_blocks/lstrip_blocks, the
// sandbox's globals, messages normalised the same way), and reads the template and special tokens from a
// tokenizer folder (tokenizer_config.json / chat_template.jinja) without going through the tokenizer class.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace llmstudio::tokenizer {

namespace jinja {
class Template;
}

// A plain text message; use the JSON overloads for rich content (content parts, tool_calls, ...).
struct ChatMessage {
  std::string role;
  std::string content;
};

struct ChatTemplateOptions {
  bool add_generation_prompt = false;
  // Special tokens as transformers passes them (its special_tokens_map); unset ones stay undefined.
  std::optional<std::string> bos_token;
  std::optional<std::string> eos_token;
  nlohmann::ordered_json tools = nullptr;      // list of JSON tool schemas, or null
  nlohmann::ordered_json documents = nullptr;  // list of documents, or null
  // Further template variables (unk_token, enable_thinking, date_string, ...); they override the fields above.
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();
};

// A parsed chat template; parse once, render many conversations.
class ChatTemplate {
 public:
  // Throws llmstudio::Error with line:column on template syntax errors.
  explicit ChatTemplate(std::string source);
  ~ChatTemplate();
  ChatTemplate(ChatTemplate&&) noexcept;
  ChatTemplate& operator=(ChatTemplate&&) noexcept;

  // `messages` is a JSON list of message objects. Like transformers, keys whose value is null are dropped and
  // reasoning under `reasoning_content`/`thinking`/`reasoning` is aliased to both `thinking` and
  // `reasoning_content`. Throws llmstudio::Error (with the template position) on runtime errors, including the
  // template's own raise_exception(...).
  std::string render(const nlohmann::ordered_json& messages, const ChatTemplateOptions& opts) const;
  std::string render(const std::vector<ChatMessage>& messages, const ChatTemplateOptions& opts) const;

  const std::string& source() const { return source_; }

 private:
  std::string source_;
  std::unique_ptr<jinja::Template> tmpl_;
};

// One-shot convenience: parse `tmpl` and render `messages`.
std::string render_chat_template(const std::string& tmpl, const nlohmann::ordered_json& messages,
                                 const ChatTemplateOptions& opts);

// What a tokenizer folder says about chat formatting.
struct ChatTemplateConfig {
  std::string chat_template;  // empty when the folder has none
  // Special tokens (bos_token, eos_token, unk_token, sep_token, pad_token, cls_token, mask_token) that are set,
  // as strings ({"content": ...} objects are unwrapped).
  nlohmann::ordered_json special_tokens = nlohmann::ordered_json::object();
  std::optional<std::string> bos_token() const;
  std::optional<std::string> eos_token() const;
  // Options carrying these special tokens (bos/eos in their fields, the others in `extra`).
  ChatTemplateOptions options() const;
};

// Reads `<dir>/tokenizer_config.json` (and `special_tokens_map.json` for tokens it lacks). The template comes
// from `<dir>/chat_template.jinja` when present, else the config's `chat_template`, which may be a string or a
// list of {name, template}: then `template_name` is used ("default" unless given; "tool_use" is not picked
// automatically). Throws llmstudio::Error naming the file on missing/invalid files.
ChatTemplateConfig load_chat_template_config(const std::filesystem::path& dir,
                                             const std::string& template_name = "default");

}  // namespace llmstudio::tokenizer
