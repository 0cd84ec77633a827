// H2O LLM Studio causal-LM sample construction (see prompt_format.h).
#include "llmstudio/tokenizer/prompt_format.h"

#include <algorithm>
#include <unordered_map>

#include "llmstudio/core/error.h"
#include "llmstudio/tokenizer/jinja_text.h"

namespace llmstudio::tokenizer {

namespace {

bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// Python's unicode_escape codec rejects truncated \x/\u/\U escapes and a trailing backslash; H2O would fail on
// such a marker, so we reject it up front with the setting's name.
void check_escapes(const std::string& name, const std::string& s) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\') continue;
    LLMS_CHECK(i + 1 < s.size(), "prompt format: ", name, " = \"", s, "\" ends with a lone backslash (\\ at end of string)");
    char e = s[i + 1];
    std::size_t n = e == 'x' ? 2 : e == 'u' ? 4 : e == 'U' ? 8 : 0;
    for (std::size_t k = 0; k < n; ++k)
      LLMS_CHECK(i + 2 + k < s.size() && is_hex(s[i + 2 + k]), "prompt format: ", name, " = \"", s,
                 "\" has a truncated \\", e, " escape at position ", i);
    LLMS_CHECK(e != 'N', "prompt format: ", name, " = \"", s, "\": \\N{...} escapes are not supported");
    i += 1 + n;
  }
}

std::vector<int32_t> keep_first(std::vector<int32_t> v, int64_t n) {
  if (static_cast<int64_t>(v.size()) > n) v.resize(static_cast<std::size_t>(n));
  return v;
}

std::vector<int32_t> keep_last(std::vector<int32_t> v, int64_t n) {
  if (static_cast<int64_t>(v.size()) > n) v.erase(v.begin(), v.end() - n);
  return v;
}

void append(std::vector<int32_t>& dst, const std::vector<int32_t>& src) { dst.insert(dst.end(), src.begin(), src.end()); }

std::string id_list(const std::vector<std::string>& ids) {
  std::string out;
  for (const auto& id : ids) out += (out.empty() ? "'" : " -> '") + id + "'";
  return out;
}

}  // namespace

void PromptFormatConfig::validate() const {
  LLMS_CHECK(max_length >= 1, "prompt format: max_length must be at least 1, got ", max_length);
  check_escapes("text_system_start", text_system_start);
  check_escapes("text_prompt_start", text_prompt_start);
  check_escapes("text_answer_separator", text_answer_separator);
}

std::string decode_marker(std::string_view s) { return jinja::text::unicode_unescape(s, /*bytes_as_latin1=*/true); }

std::vector<std::vector<std::size_t>> build_conversation_chains(const std::vector<ConversationRow>& rows,
                                                                bool limit_chained_samples, ChainStats* stats) {
  const std::size_t n = rows.size();
  std::unordered_map<std::string, std::size_t> index_of;
  for (std::size_t i = 0; i < n; ++i) {
    if (!rows[i].id) continue;
    auto [it, inserted] = index_of.emplace(*rows[i].id, i);
    LLMS_CHECK(inserted, "conversation rows ", it->second, " and ", i, " have the same id '", *rows[i].id,
               "': ids must be unique to chain conversations by parent_id");
  }
  constexpr std::size_t kNone = static_cast<std::size_t>(-1);
  std::vector<std::size_t> parent(n, kNone);
  std::vector<bool> is_parent(n, false);
  ChainStats local;
  for (std::size_t i = 0; i < n; ++i) {
    const auto& p = rows[i].parent_id;
    if (!p || p->empty()) continue;
    LLMS_CHECK(!rows[i].id || *rows[i].id != *p, "conversation row ", i, " (id '", *p, "') is its own parent");
    auto it = index_of.find(*p);
    if (it == index_of.end()) {  // H2O: parent ids that are not in the data start a new conversation
      ++local.dangling_parent_ids;
      continue;
    }
    parent[i] = it->second;
    is_parent[it->second] = true;
  }
  // Every row must reach a conversation start (H2O's sanity check rejects circular parent chains).
  std::vector<int> state(n, 0);  // 0 unknown, 1 on the current path, 2 reaches a start
  for (std::size_t i = 0; i < n; ++i) {
    std::vector<std::size_t> path;
    std::size_t cur = i;
    while (cur != kNone && state[cur] == 0) {
      state[cur] = 1;
      path.push_back(cur);
      cur = parent[cur];
    }
    if (cur != kNone && state[cur] == 1) {
      std::vector<std::string> cycle;
      auto start = std::find(path.begin(), path.end(), cur);
      for (auto it = start; it != path.end(); ++it) cycle.push_back(rows[*it].id.value_or("?"));
      cycle.push_back(rows[cur].id.value_or("?"));
      fail("circular parent_id chain: ", id_list(cycle), "; every conversation needs a first row without a parent");
    }
    for (std::size_t r : path) state[r] = 2;
  }
  std::vector<std::vector<std::size_t>> chains;
  for (std::size_t i = 0; i < n; ++i) {
    if (limit_chained_samples && is_parent[i]) continue;  // only conversation ends make samples
    std::vector<std::size_t> chain;
    for (std::size_t cur = i; cur != kNone; cur = parent[cur]) chain.push_back(cur);
    std::reverse(chain.begin(), chain.end());
    chains.push_back(std::move(chain));
  }
  if (stats) *stats = local;
  return chains;
}

PromptSample pad_sample(const PromptSample& s, int64_t max_length, int32_t pad_token_id) {
  LLMS_CHECK(max_length >= 1, "pad_sample: max_length must be at least 1, got ", max_length);
  auto left = [&](const std::vector<int32_t>& v, int32_t fill) {
    std::vector<int32_t> cut = keep_last(v, max_length);
    std::vector<int32_t> out(static_cast<std::size_t>(max_length) - cut.size(), fill);
    append(out, cut);
    return out;
  };
  PromptSample p;
  p.input_ids = left(s.input_ids, pad_token_id);
  p.attention_mask = left(std::vector<int32_t>(std::min<std::size_t>(s.input_ids.size(), max_length), 1), 0);
  p.labels = left(s.labels, kIgnoreIndex);
  p.prompt_input_ids = left(s.prompt_input_ids, pad_token_id);
  p.answer_input_ids = keep_last(s.answer_input_ids, max_length);
  p.answer_input_ids.resize(static_cast<std::size_t>(max_length), pad_token_id);
  return p;
}

PromptFormatter::PromptFormatter(PromptFormatConfig cfg, Encoder encoder, std::string eos_token,
                                 const ChatTemplate* chat_template, ChatTemplateOptions template_options)
    : cfg_(std::move(cfg)),
      encode_(std::move(encoder)),
      eos_token_(std::move(eos_token)),
      template_(chat_template),
      template_options_(std::move(template_options)) {
  cfg_.validate();
  LLMS_CHECK(encode_, "prompt format: no encoder given");
  LLMS_CHECK(!cfg_.use_chat_template || template_, "prompt format: use_chat_template is set but the model has no ",
             "chat template (tokenizer_config.json 'chat_template')");
  system_start_ = decode_marker(cfg_.text_system_start);
  prompt_start_ = decode_marker(cfg_.text_prompt_start);
  answer_separator_ = decode_marker(cfg_.text_answer_separator);
}

std::string PromptFormatter::format_system(const std::string& system) const {
  if (system.empty()) return system;  // H2O: no system tokens at all when the system text is empty
  return system_start_ + system + (cfg_.add_eos_token_to_system ? eos_token_ : "");
}

std::string PromptFormatter::format_prompt(const std::string& prompt) const {
  return prompt_start_ + prompt + (cfg_.add_eos_token_to_prompt ? eos_token_ : "") + answer_separator_;
}

std::string PromptFormatter::format_answer(const std::string& answer) const {
  return answer + (cfg_.add_eos_token_to_answer ? eos_token_ : "");
}

void PromptFormatter::encode_with_markers(const std::vector<const ConversationRow*>& chain,
                                          std::vector<std::vector<int32_t>>& prompts,
                                          std::vector<std::vector<int32_t>>& answers) const {
  for (std::size_t i = 0; i < chain.size(); ++i) {
    // H2O cuts each part on its own: system and answer keep their start, the prompt keeps its end.
    std::vector<int32_t> prompt;
    if (i == 0) {
      std::string system = format_system(chain[0]->system);
      if (!system.empty()) prompt = keep_first(encode_(system), cfg_.max_length);
    }
    append(prompt, keep_last(encode_(format_prompt(chain[i]->prompt)), cfg_.max_length));
    prompts.push_back(std::move(prompt));
    answers.push_back(keep_first(encode_(format_answer(chain[i]->answer)), cfg_.max_length));
  }
}

void PromptFormatter::encode_with_template(const std::vector<const ConversationRow*>& chain,
                                           std::vector<std::vector<int32_t>>& prompts,
                                           std::vector<std::vector<int32_t>>& answers) const {
  using json = nlohmann::ordered_json;
  json messages = json::array();
  if (!chain.empty() && !chain[0]->system.empty())
    messages.push_back(json{{"role", "system"}, {"content", chain[0]->system}});
  std::string done;  // rendered text of the rounds so far
  for (std::size_t i = 0; i < chain.size(); ++i) {
    messages.push_back(json{{"role", "user"}, {"content", chain[i]->prompt}});
    ChatTemplateOptions opts = template_options_;
    opts.add_generation_prompt = true;
    std::string with_prompt = template_->render(messages, opts);
    messages.push_back(json{{"role", "assistant"}, {"content", chain[i]->answer}});
    opts.add_generation_prompt = false;
    std::string with_answer = template_->render(messages, opts);
    LLMS_CHECK(with_prompt.compare(0, done.size(), done) == 0 && with_answer.compare(0, with_prompt.size(), with_prompt) == 0,
               "prompt format: the chat template renders round ", i + 1,
               " so that it does not extend the earlier rounds' text, so prompt and answer tokens cannot be told apart;"
               " set use_chat_template to false");
    prompts.push_back(keep_last(encode_(std::string_view(with_prompt).substr(done.size())), cfg_.max_length));
    answers.push_back(keep_first(encode_(std::string_view(with_answer).substr(with_prompt.size())), cfg_.max_length));
    done = std::move(with_answer);
  }
}

PromptSample PromptFormatter::build(const std::vector<const ConversationRow*>& chain) const {
  LLMS_CHECK(!chain.empty(), "prompt format: empty conversation chain");
  std::vector<std::vector<int32_t>> prompts, answers;
  if (cfg_.use_chat_template) encode_with_template(chain, prompts, answers);
  else encode_with_markers(chain, prompts, answers);

  PromptSample s;
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    bool last = i + 1 == prompts.size();
    append(s.input_ids, prompts[i]);
    append(s.input_ids, answers[i]);
    bool mask_answer = cfg_.mask_prompt_labels && cfg_.only_last_answer && !last;
    s.labels.insert(s.labels.end(), prompts[i].size(), kIgnoreIndex);
    if (!cfg_.mask_prompt_labels) std::copy(prompts[i].begin(), prompts[i].end(), s.labels.end() - prompts[i].size());
    if (mask_answer) s.labels.insert(s.labels.end(), answers[i].size(), kIgnoreIndex);
    else append(s.labels, answers[i]);
    append(s.prompt_input_ids, prompts[i]);
    if (!last) append(s.prompt_input_ids, answers[i]);
  }
  s.input_ids = keep_last(std::move(s.input_ids), cfg_.max_length);
  s.labels = keep_last(std::move(s.labels), cfg_.max_length);
  s.attention_mask.assign(s.input_ids.size(), 1);
  s.prompt_input_ids = keep_last(std::move(s.prompt_input_ids), cfg_.max_length);
  s.answer_input_ids = keep_last(answers.back(), cfg_.max_length);
  return s;
}

std::vector<PromptSample> PromptFormatter::build_all(const std::vector<ConversationRow>& rows, ChainStats* stats) const {
  std::vector<PromptSample> out;
  for (const auto& chain : build_conversation_chains(rows, cfg_.limit_chained_samples, stats)) {
    std::vector<const ConversationRow*> ptrs;
    for (std::size_t i : chain) ptrs.push_back(&rows[i]);
    out.push_back(build(ptrs));
  }
  return out;
}

}  // namespace llmstudio::tokenizer
