// tokenizer.json / tokenizer_config.json from GGUF tokenizer metadata (see gguf_tokenizer.h).
#include "llmstudio/io/gguf_tokenizer.h"

#include <algorithm>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "llmstudio/core/error.h"

namespace llmstudio::io {
namespace {

using nlohmann::json;

// Split regexes of the byte-level tokenizers that llama.cpp recognises by tokenizer.ggml.pre.
constexpr const char* kLlama3Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr const char* kQwen2Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

json byte_level(bool use_regex) {
  return {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", use_regex}};
}
json split_isolated(const char* regex) {
  return {{"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", "Isolated"}, {"invert", false}};
}

// The pre-tokenizer for tokenizer.ggml.pre, and whether BPE should first look whole words up (ignore_merges).
json pre_tokenizer_for(const std::string& pre, const std::string& source, bool& ignore_merges) {
  ignore_merges = false;
  if (pre == "gpt2" || pre == "default" || pre == "gpt-2" || pre == "olmo" || pre == "jais")
    return byte_level(true);
  if (pre == "smollm" || pre == "starcoder" || pre == "refact" || pre == "codeshell" || pre == "command-r")
    return {{"type", "Sequence"},
            {"pretokenizers", json::array({{{"type", "Digits"}, {"individual_digits", true}}, byte_level(true)})}};
  if (pre == "llama-bpe" || pre == "llama3" || pre == "dbrx" || pre == "smaug-bpe") {
    ignore_merges = true;
    return {{"type", "Sequence"}, {"pretokenizers", json::array({split_isolated(kLlama3Regex), byte_level(false)})}};
  }
  if (pre == "qwen2" || pre == "deepseek-r1-qwen")
    return {{"type", "Sequence"}, {"pretokenizers", json::array({split_isolated(kQwen2Regex), byte_level(false)})}};
  fail(source, ": tokenizer.ggml.pre '", pre,
       "' is not supported (supported: gpt2, default, smollm, starcoder, refact, llama-bpe, qwen2); "
       "use the original model's tokenizer.json instead");
}

std::optional<std::int64_t> opt_id(const GgufHeader& h, const char* key, std::int64_t n_vocab, const std::string& source) {
  const auto* v = h.find(key);
  if (!v) return std::nullopt;
  const auto id = v->as_int(key);
  if (id < 0) return std::nullopt;  // some converters write -1 for "none"
  LLMS_CHECK(id < n_vocab, source, ": ", key, " = ", id, " is outside the vocabulary of ", n_vocab, " tokens");
  return id;
}

bool opt_bool(const GgufHeader& h, const char* key, bool fallback) {
  const auto* v = h.find(key);
  return v ? v->as_bool(key) : fallback;
}

// SentencePiece BPE merges from the vocabulary and scores (GGUF "llama" tokenizers carry no merges): every
// split of a NORMAL piece into two pieces of the vocabulary is a merge; merges rank by the merged piece's
// score (highest first), ties by the ids of the halves. This is the rule SentencePiece's BPE applies when
// it merges the adjacent pair whose result scores highest, and how transformers extracts merges.
json spm_merges(const std::vector<GgufValue>& tokens, const std::vector<std::int32_t>& types, const GgufHeader& h,
                const std::string& source) {
  const auto* sv = h.find("tokenizer.ggml.scores");
  LLMS_CHECK(sv != nullptr, source, ": tokenizer.ggml.scores is missing (a 'llama' tokenizer needs piece scores)");
  const auto& scores = sv->as_array("tokenizer.ggml.scores");
  LLMS_CHECK(scores.size() == tokens.size(), source, ": tokenizer.ggml.scores has ", scores.size(),
             " entries, tokenizer.ggml.tokens has ", tokens.size());
  std::unordered_map<std::string_view, std::int64_t> id_of;
  for (std::size_t i = 0; i < tokens.size(); ++i) id_of.emplace(tokens[i].s, static_cast<std::int64_t>(i));
  struct Merge {
    double score;
    std::int64_t left, right;
  };
  std::vector<Merge> all;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (types[i] != static_cast<std::int32_t>(GgufTokenType::NORMAL)) continue;
    const std::string& piece = tokens[i].s;
    const double score = scores[i].as_double("tokenizer.ggml.scores");
    std::vector<Merge> local;
    for (std::size_t cut = 1; cut < piece.size(); ++cut) {
      if ((static_cast<unsigned char>(piece[cut]) & 0xC0) == 0x80) continue;  // inside a UTF-8 sequence
      auto l = id_of.find(std::string_view(piece).substr(0, cut));
      auto r = id_of.find(std::string_view(piece).substr(cut));
      if (l != id_of.end() && r != id_of.end()) local.push_back({score, l->second, r->second});
    }
    std::sort(local.begin(), local.end(),
              [](const Merge& a, const Merge& b) { return std::tie(a.left, a.right) < std::tie(b.left, b.right); });
    all.insert(all.end(), local.begin(), local.end());
  }
  std::stable_sort(all.begin(), all.end(), [](const Merge& a, const Merge& b) { return a.score > b.score; });
  json merges = json::array();
  for (const auto& m : all) merges.push_back(json::array({tokens[m.left].s, tokens[m.right].s}));
  return merges;
}

}  // namespace

bool gguf_has_tokenizer(const GgufHeader& header) { return header.find("tokenizer.ggml.model") != nullptr; }

std::string dump_json_checked(const nlohmann::json& j, const std::string& what) {
  try {
    return j.dump(2) + "\n";
  } catch (const nlohmann::json::type_error& e) {
    fail(what, ": cannot be written as JSON (", e.what(), ")");
  }
}

GgufTokenizerFiles build_gguf_tokenizer(const GgufHeader& h, const std::string& source) {
  const auto* model_v = h.find("tokenizer.ggml.model");
  LLMS_CHECK(model_v != nullptr, source, ": no tokenizer metadata (tokenizer.ggml.model is missing)");
  const std::string& model = model_v->as_string("tokenizer.ggml.model");
  LLMS_CHECK(model == "gpt2" || model == "llama", source, ": tokenizer.ggml.model '", model,
             "' is not supported (supported: gpt2, llama)");
  const bool spm = model == "llama";

  const auto* tokens_v = h.find("tokenizer.ggml.tokens");
  LLMS_CHECK(tokens_v != nullptr, source, ": tokenizer.ggml.tokens is missing");
  const auto& tokens = tokens_v->as_array("tokenizer.ggml.tokens");
  LLMS_CHECK(tokens_v->element_type == GgufValueType::STRING && !tokens.empty(), source,
             ": tokenizer.ggml.tokens must be a non-empty array of strings");
  const auto n_vocab = static_cast<std::int64_t>(tokens.size());

  std::vector<std::int32_t> types(tokens.size(), static_cast<std::int32_t>(GgufTokenType::NORMAL));
  if (const auto* tt = h.find("tokenizer.ggml.token_type")) {
    const auto& arr = tt->as_array("tokenizer.ggml.token_type");
    LLMS_CHECK(arr.size() == tokens.size(), source, ": tokenizer.ggml.token_type has ", arr.size(),
               " entries, tokenizer.ggml.tokens has ", tokens.size());
    for (std::size_t k = 0; k < arr.size(); ++k) types[k] = static_cast<std::int32_t>(arr[k].as_int("tokenizer.ggml.token_type"));
  }

  json merges = json::array();
  if (const auto* m = h.find("tokenizer.ggml.merges")) {
    for (const auto& e : m->as_array("tokenizer.ggml.merges")) {
      const auto& s = e.as_string("tokenizer.ggml.merges");
      const auto sp = s.find(' ');
      LLMS_CHECK(sp != std::string::npos && sp > 0 && sp + 1 < s.size() && s.find(' ', sp + 1) == std::string::npos,
                 source, ": tokenizer.ggml.merges entry \"", s, "\" is not \"left right\"");
      merges.push_back(s);
    }
  }
  if (spm && merges.empty()) merges = spm_merges(tokens, types, h, source);
  LLMS_CHECK(!merges.empty(), source, ": tokenizer.ggml.merges is missing or empty (needed for a gpt2 tokenizer)");

  GgufTokenizerFiles out;
  out.vocab_size = n_vocab;
  out.bos_id = opt_id(h, "tokenizer.ggml.bos_token_id", n_vocab, source);
  out.eos_id = opt_id(h, "tokenizer.ggml.eos_token_id", n_vocab, source);
  out.pad_id = opt_id(h, "tokenizer.ggml.padding_token_id", n_vocab, source);
  out.unk_id = opt_id(h, "tokenizer.ggml.unknown_token_id", n_vocab, source);
  const bool add_bos = opt_bool(h, "tokenizer.ggml.add_bos_token", spm);
  const bool add_eos = opt_bool(h, "tokenizer.ggml.add_eos_token", false);

  json vocab = json::object();
  json added = json::array();
  auto is_named_special = [&](std::int64_t id) {
    return id == out.bos_id || id == out.eos_id || id == out.pad_id;
  };
  for (std::int64_t id = 0; id < n_vocab; ++id) {
    const std::string& tok = tokens[static_cast<std::size_t>(id)].as_string("tokenizer.ggml.tokens");
    LLMS_CHECK(!vocab.contains(tok), source, ": token \"", tok, "\" appears twice in tokenizer.ggml.tokens (ids ",
               vocab[tok].get<std::int64_t>(), " and ", id, ")");
    vocab[tok] = id;
    const auto type = static_cast<GgufTokenType>(types[static_cast<std::size_t>(id)]);
    const bool control = type == GgufTokenType::CONTROL || is_named_special(id) || (spm && id == out.unk_id);
    if (control || type == GgufTokenType::USER_DEFINED) {
      added.push_back({{"id", id}, {"content", tok}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                       {"normalized", !control}, {"special", control}});
    }
  }

  const std::string pre = spm ? std::string("sentencepiece")
                        : h.find("tokenizer.ggml.pre") ? h.find("tokenizer.ggml.pre")->as_string("tokenizer.ggml.pre")
                                                       : std::string("default");
  bool ignore_merges = false;
  json pre_tok = spm ? json(nullptr) : pre_tokenizer_for(pre, source, ignore_merges);
  json normalizer = nullptr;
  json decoder = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
  if (spm) {  // SentencePiece as tokenizers expresses it: "▁" for spaces (and a leading one), byte fallback
    const bool prefix = opt_bool(h, "tokenizer.ggml.add_space_prefix", true);
    json norms = json::array();
    if (prefix) norms.push_back({{"type", "Prepend"}, {"prepend", "\u2581"}});
    norms.push_back({{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\u2581"}});
    normalizer = {{"type", "Sequence"}, {"normalizers", norms}};
    json decs = json::array({json{{"type", "Replace"}, {"pattern", {{"String", "\u2581"}}}, {"content", " "}},
                             json{{"type", "ByteFallback"}}, json{{"type", "Fuse"}}});
    if (prefix) decs.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
    decoder = {{"type", "Sequence"}, {"decoders", decs}};
  }

  auto token_of = [&](std::optional<std::int64_t> id) -> json {
    if (!id) return nullptr;
    return tokens[static_cast<std::size_t>(*id)].s;
  };
  json post = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", true}};
  if ((add_bos && out.bos_id) || (add_eos && out.eos_id)) {
    json single = json::array(), pair = json::array(), specials = json::object();
    auto special = [&](std::int64_t id, int type_id) { return json{{"SpecialToken", {{"id", tokens[id].s}, {"type_id", type_id}}}}; };
    auto seq = [](const char* id, int type_id) { return json{{"Sequence", {{"id", id}, {"type_id", type_id}}}}; };
    for (int part = 0; part < 2; ++part) {
      if (add_bos && out.bos_id) {
        if (part == 0) single.push_back(special(*out.bos_id, 0));
        pair.push_back(special(*out.bos_id, part));
      }
      if (part == 0) single.push_back(seq("A", 0));
      pair.push_back(seq(part == 0 ? "A" : "B", part));
      if (add_eos && out.eos_id) {
        if (part == 0) single.push_back(special(*out.eos_id, 0));
        pair.push_back(special(*out.eos_id, part));
      }
    }
    for (auto id : {add_bos ? out.bos_id : std::nullopt, add_eos ? out.eos_id : std::nullopt})
      if (id) specials[tokens[*id].s] = {{"id", tokens[*id].s}, {"ids", json::array({*id})}, {"tokens", json::array({tokens[*id].s})}};
    post = {{"type", "TemplateProcessing"}, {"single", single}, {"pair", pair}, {"special_tokens", specials}};
  }

  const std::size_t n_merges = merges.size(), n_added = added.size();
  out.tokenizer = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", std::move(added)},
      {"normalizer", std::move(normalizer)},
      {"pre_tokenizer", std::move(pre_tok)},
      {"post_processor", std::move(post)},
      {"decoder", std::move(decoder)},
      {"model",
       {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", spm ? token_of(out.unk_id) : json(nullptr)},
        {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr}, {"fuse_unk", spm}, {"byte_fallback", spm},
        {"ignore_merges", ignore_merges}, {"vocab", std::move(vocab)}, {"merges", std::move(merges)}}},
  };

  json cfg = {{"tokenizer_class", "PreTrainedTokenizerFast"},
              {"clean_up_tokenization_spaces", false},
              {"add_bos_token", add_bos},
              {"add_eos_token", add_eos},
              {"bos_token", token_of(out.bos_id)},
              {"eos_token", token_of(out.eos_id)},
              {"pad_token", token_of(out.pad_id)},
              {"unk_token", token_of(out.unk_id)}};
  if (const auto* ctx = h.find(h.find("general.architecture")
                                   ? h.find("general.architecture")->s + ".context_length"
                                   : std::string("llama.context_length")))
    cfg["model_max_length"] = ctx->as_int("context_length");
  if (const auto* t = h.find("tokenizer.chat_template")) cfg["chat_template"] = t->as_string("tokenizer.chat_template");
  out.tokenizer_config = std::move(cfg);

  out.summary = "tokenizer: " + model + " (pre '" + pre + "'), " + std::to_string(n_vocab) + " tokens, " +
                std::to_string(n_merges) + " merges, " + std::to_string(n_added) + " added/special tokens" +
                (h.find("tokenizer.chat_template") ? ", chat template" : "");
  return out;
}

}  // namespace llmstudio::io
