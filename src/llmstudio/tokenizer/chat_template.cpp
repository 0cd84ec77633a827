// Chat-template rendering with transformers' conventions, and tokenizer-folder loading (see chat_template.h).
#include "llmstudio/tokenizer/chat_template.h"

#include <fstream>
#include <sstream>

#include "llmstudio/core/error.h"
#include "llmstudio/io/json_text.h"
#include "llmstudio/tokenizer/jinja_interpreter.h"
#include "llmstudio/tokenizer/jinja_value.h"

namespace llmstudio::tokenizer {

using json = nlohmann::ordered_json;

namespace {

// transformers' _normalize_chat_messages (drop null-valued keys) followed by _alias_reasoning_fields.
json normalize_messages(const json& messages) {
  LLMS_CHECK(messages.is_array(), "chat messages must be a JSON list of message objects, got ", messages.type_name());
  json out = json::array();
  std::size_t i = 0;
  for (const auto& m : messages) {
    LLMS_CHECK(m.is_object(), "chat message ", i, " must be a JSON object, got ", m.type_name(), ": ", io::json_preview(m));
    json msg = json::object();
    for (auto it = m.begin(); it != m.end(); ++it)
      if (!it.value().is_null()) msg[it.key()] = it.value();
    const json* reasoning = nullptr;
    for (const char* key : {"reasoning_content", "thinking", "reasoning"}) {
      if (msg.contains(key)) {
        reasoning = &msg[key];
        break;
      }
    }
    if (reasoning) {
      // {"thinking": r, **message, "reasoning_content": r}
      json r = *reasoning;
      json aliased = json::object();
      aliased["thinking"] = r;
      for (auto it = msg.begin(); it != msg.end(); ++it) aliased[it.key()] = it.value();
      aliased["thinking"] = msg.contains("thinking") ? msg["thinking"] : r;
      aliased["reasoning_content"] = r;
      msg = std::move(aliased);
    }
    out.push_back(std::move(msg));
    ++i;
  }
  return out;
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  LLMS_CHECK(in, "cannot open ", p.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

json read_json(const std::filesystem::path& p) {
  return io::parse_json(read_file(p), p.string(), io::kModelJsonMaxDepth);
}

std::optional<std::string> token_string(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return std::nullopt;
}

}  // namespace

ChatTemplate::ChatTemplate(std::string source)
    : source_(std::move(source)), tmpl_(std::make_unique<jinja::Template>(source_)) {}
ChatTemplate::~ChatTemplate() = default;
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;

std::string ChatTemplate::render(const json& messages, const ChatTemplateOptions& opts) const {
  using jinja::Value;
  jinja::Dict ctx;
  ctx.set(Value("messages"), jinja::from_json(normalize_messages(messages)));
  ctx.set(Value("tools"), jinja::from_json(opts.tools));
  ctx.set(Value("documents"), jinja::from_json(opts.documents));
  ctx.set(Value("add_generation_prompt"), Value(opts.add_generation_prompt));
  if (opts.bos_token) ctx.set(Value("bos_token"), Value(*opts.bos_token));
  if (opts.eos_token) ctx.set(Value("eos_token"), Value(*opts.eos_token));
  if (!opts.extra.is_null()) {
    LLMS_CHECK(opts.extra.is_object(), "extra chat-template variables must be a JSON object, got ",
               opts.extra.type_name());
    for (auto it = opts.extra.begin(); it != opts.extra.end(); ++it)
      ctx.set(Value(it.key()), jinja::from_json(it.value()));
  }
  return tmpl_->render(ctx);
}

std::string ChatTemplate::render(const std::vector<ChatMessage>& messages, const ChatTemplateOptions& opts) const {
  json arr = json::array();
  for (const auto& m : messages) arr.push_back(json{{"role", m.role}, {"content", m.content}});
  return render(arr, opts);
}

std::string render_chat_template(const std::string& tmpl, const json& messages, const ChatTemplateOptions& opts) {
  return ChatTemplate(tmpl).render(messages, opts);
}

std::optional<std::string> ChatTemplateConfig::bos_token() const {
  if (special_tokens.contains("bos_token")) return special_tokens["bos_token"].get<std::string>();
  return std::nullopt;
}

std::optional<std::string> ChatTemplateConfig::eos_token() const {
  if (special_tokens.contains("eos_token")) return special_tokens["eos_token"].get<std::string>();
  return std::nullopt;
}

ChatTemplateOptions ChatTemplateConfig::options() const {
  ChatTemplateOptions o;
  o.bos_token = bos_token();
  o.eos_token = eos_token();
  for (auto it = special_tokens.begin(); it != special_tokens.end(); ++it)
    if (it.key() != "bos_token" && it.key() != "eos_token") o.extra[it.key()] = it.value();
  return o;
}

ChatTemplateConfig load_chat_template_config(const std::filesystem::path& dir, const std::string& template_name) {
  LLMS_CHECK(std::filesystem::is_directory(dir), "tokenizer folder ", dir.string(), " does not exist");
  const auto config_path = dir / "tokenizer_config.json";
  json config = std::filesystem::exists(config_path) ? read_json(config_path) : json::object();
  LLMS_CHECK(config.is_object(), config_path.string(), ": expected a JSON object");
  ChatTemplateConfig out;

  static const char* kSpecial[] = {"bos_token", "eos_token", "unk_token", "sep_token",
                                   "pad_token", "cls_token", "mask_token"};
  json special_map = json::object();
  if (std::filesystem::exists(dir / "special_tokens_map.json")) special_map = read_json(dir / "special_tokens_map.json");
  for (const char* key : kSpecial) {
    std::optional<std::string> tok;
    if (config.contains(key)) tok = token_string(config[key]);
    if (!tok && special_map.is_object() && special_map.contains(key)) tok = token_string(special_map[key]);
    if (tok) out.special_tokens[key] = *tok;
  }

  if (std::filesystem::exists(dir / "chat_template.jinja")) {
    out.chat_template = read_file(dir / "chat_template.jinja");
    return out;
  }
  if (!config.contains("chat_template") || config["chat_template"].is_null()) return out;
  const json& ct = config["chat_template"];
  if (ct.is_string()) {
    out.chat_template = ct.get<std::string>();
    return out;
  }
  LLMS_CHECK(ct.is_array(), config_path.string(), ": 'chat_template' must be a string or a list of {name, template}, got ",
             ct.type_name());
  std::string names;
  for (const auto& entry : ct) {
    LLMS_CHECK(entry.is_object() && entry.contains("name") && entry.contains("template"), config_path.string(),
               ": each 'chat_template' list entry needs 'name' and 'template', got ", io::json_preview(entry));
    std::string name = entry["name"].get<std::string>();
    if (name == template_name) {
      out.chat_template = entry["template"].get<std::string>();
      return out;
    }
    names += (names.empty() ? "" : ", ") + name;
  }
  fail(config_path.string(), ": no chat template named '", template_name, "' (available: ", names, ")");
}

}  // namespace llmstudio::tokenizer
