// `llmstudio template`: render a conversation through a model's chat template (as transformers'
// apply_chat_template(tokenize=False) does) and print the prompt. A batch mode (a list of cases, --json output)
// serves the parity tests.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>

#include "command.h"
#include "llmstudio/core/error.h"
#include "llmstudio/io/json_text.h"
#include "llmstudio/tokenizer/chat_template.h"

namespace llmstudio::cli {
namespace {

using json = nlohmann::ordered_json;

struct TemplateOptions {
  std::string tokenizer;
  std::string template_file;
  std::string template_name = "default";
  std::string messages;
  std::string vars;
  std::string tools;
  std::optional<std::string> bos_token;
  std::optional<std::string> eos_token;
  bool add_generation_prompt = false;
  bool json_output = false;
};

std::string read_text(const std::string& path) {
  if (path == "-") return std::string(std::istreambuf_iterator<char>(std::cin), {});
  std::ifstream in(path, std::ios::binary);
  LLMS_CHECK(in, "cannot open ", path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

json read_json_file(const std::string& path) {
  return io::parse_ordered_json(read_text(path), path);  // key order matters: templates iterate dicts
}

// A case: the messages plus per-case overrides of the template source, add_generation_prompt, tools and extra
// variables.
struct Case {
  json messages;
  std::optional<std::string> template_source;
  std::optional<bool> add_generation_prompt;
  json tools;
  json extra = json::object();
};

// --messages holds one conversation (a list of message objects), a list of conversations, or a list of
// {"messages": [...], "add_generation_prompt": bool, "tools": [...], "vars": {...}, "template": "..."} cases.
std::vector<Case> read_cases(const std::string& path, bool& batch) {
  json j = read_json_file(path);
  LLMS_CHECK(j.is_array(), path, ": expected a JSON list of messages or of conversations, found ", j.type_name());
  batch = !j.empty() && (j[0].is_array() || (j[0].is_object() && j[0].contains("messages")));
  std::vector<Case> cases;
  if (!batch) {
    cases.push_back(Case{j, std::nullopt, std::nullopt, nullptr});
    return cases;
  }
  for (const auto& c : j) {
    Case k;
    if (c.is_array()) {
      k.messages = c;
    } else {
      LLMS_CHECK(c.is_object() && c.contains("messages"), path, ": each batch entry needs \"messages\", found ",
                 c.dump().substr(0, 80));
      k.messages = c["messages"];
      if (c.contains("add_generation_prompt")) k.add_generation_prompt = c["add_generation_prompt"].get<bool>();
      if (c.contains("tools")) k.tools = c["tools"];
      if (c.contains("vars")) k.extra = c["vars"];
      if (c.contains("template")) k.template_source = c["template"].get<std::string>();
    }
    cases.push_back(std::move(k));
  }
  return cases;
}

void run_template(const TemplateOptions& o) {
  bool batch = false;
  std::vector<Case> cases = read_cases(o.messages, batch);
  bool per_case_templates =
      batch && std::all_of(cases.begin(), cases.end(), [](const Case& c) { return c.template_source.has_value(); });
  LLMS_CHECK(!o.tokenizer.empty() || !o.template_file.empty() || per_case_templates,
             "give --tokenizer <dir> or --template <file.jinja>");
  tokenizer::ChatTemplateOptions base;
  std::string source;
  if (!o.tokenizer.empty()) {
    auto cfg = tokenizer::load_chat_template_config(o.tokenizer, o.template_name);
    base = cfg.options();
    source = cfg.chat_template;
  }
  if (!o.template_file.empty()) source = read_text(o.template_file);
  LLMS_CHECK(!source.empty() || per_case_templates, o.tokenizer, " has no chat_template (tokenizer_config.json or chat_template.jinja); ",
             "pass --template <file.jinja>");
  if (o.bos_token) base.bos_token = *o.bos_token;
  if (o.eos_token) base.eos_token = *o.eos_token;
  if (!o.vars.empty()) {
    json vars = read_json_file(o.vars);
    LLMS_CHECK(vars.is_object(), o.vars, ": expected a JSON object of template variables");
    for (auto it = vars.begin(); it != vars.end(); ++it) base.extra[it.key()] = it.value();
  }
  if (!o.tools.empty()) base.tools = read_json_file(o.tools);
  base.add_generation_prompt = o.add_generation_prompt;

  std::optional<tokenizer::ChatTemplate> shared;
  if (!source.empty()) shared.emplace(source);
  LLMS_CHECK(!batch || o.json_output, o.messages, " holds several conversations: add --json to print them");
  json results = json::array();
  for (const auto& c : cases) {
    tokenizer::ChatTemplateOptions opts = base;
    if (c.add_generation_prompt) opts.add_generation_prompt = *c.add_generation_prompt;
    if (!c.tools.is_null()) opts.tools = c.tools;
    for (auto it = c.extra.begin(); it != c.extra.end(); ++it) opts.extra[it.key()] = it.value();
    if (!o.json_output) {
      std::cout << shared->render(c.messages, opts) << std::flush;
      return;
    }
    try {
      // A case's own template may fail to parse: that is reported as its error, like a render error.
      std::optional<tokenizer::ChatTemplate> own;
      if (c.template_source) own.emplace(*c.template_source);
      results.push_back(json{{"output", (own ? *own : *shared).render(c.messages, opts)}});
    } catch (const Error& e) {
      results.push_back(json{{"error", e.what()}});
    }
  }
  std::cout << results.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
}

void setup_template(CLI::App& app) {
  auto o = std::make_shared<TemplateOptions>();
  auto* cmd = app.add_subcommand("template", "Render a conversation with a model's chat template and print the prompt");
  cmd->add_option("--tokenizer", o->tokenizer, "Tokenizer folder (tokenizer_config.json with chat_template)");
  cmd->add_option("--template", o->template_file, "Jinja chat template file (overrides the tokenizer's)");
  cmd->add_option("--template-name", o->template_name, "Which named template when the config lists several");
  cmd->add_option("--messages", o->messages, "JSON file: list of {role, content} messages ('-' = stdin)")->required();
  cmd->add_flag("--add-generation-prompt", o->add_generation_prompt, "Append the assistant turn header");
  cmd->add_option("--bos-token", o->bos_token, "bos_token string (default: from the tokenizer config)");
  cmd->add_option("--eos-token", o->eos_token, "eos_token string (default: from the tokenizer config)");
  cmd->add_option("--tools", o->tools, "JSON file: list of tool schemas passed as `tools`");
  cmd->add_option("--vars", o->vars, "JSON file: object of extra template variables (e.g. enable_thinking)");
  cmd->add_flag("--json", o->json_output, "Print a JSON list of {output} / {error}, one per conversation");
  cmd->callback([o] { run_template(*o); });
}

}  // namespace
LLMS_COMMAND(40, setup_template);
}  // namespace llmstudio::cli
