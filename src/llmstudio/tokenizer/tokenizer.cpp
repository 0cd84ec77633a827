// Tokenizer: loads tokenizer.json + tokenizer_config.json into the component pipeline and runs it
// (see tokenizer.h). tokenizer.json's "truncation" and "padding" settings are ignored (callers do their own).
#include "llmstudio/tokenizer/tokenizer.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "llmstudio/core/error.h"
#include "llmstudio/io/json_text.h"
#include "llmstudio/tokenizer/added_tokens.h"
#include "llmstudio/tokenizer/bpe_model.h"
#include "llmstudio/tokenizer/decoders.h"
#include "llmstudio/tokenizer/json_util.h"
#include "llmstudio/tokenizer/normalizers.h"
#include "llmstudio/tokenizer/post_processors.h"
#include "llmstudio/tokenizer/pre_tokenizers.h"
#include "llmstudio/tokenizer/unicode.h"

namespace llmstudio::tokenizer {

using json_util::json;

struct Tokenizer::Impl {
  std::string source;
  std::unique_ptr<Normalizer> normalizer;
  std::unique_ptr<PreTokenizer> pre_tokenizer;
  std::unique_ptr<BpeModel> model;
  std::unique_ptr<PostProcessor> post_processor;
  std::unique_ptr<Decoder> decoder;
  AddedVocabulary added;
  std::size_t vocab_size = 0;
  std::string bos, eos, pad, unk, chat_template;
  std::optional<int32_t> bos_id, eos_id, pad_id, unk_id;
  bool add_bos = false, add_eos = false;

  std::optional<int32_t> token_to_id(std::string_view t) const {
    if (auto id = added.token_to_id(t)) return id;
    return model->token_to_id(t);
  }
  const std::string* id_to_token(int32_t id) const {
    if (const auto* t = added.id_to_token(id)) return t;
    return model->id_to_token(id);
  }
};

namespace {

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  LLMS_CHECK(in, "cannot open ", p.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  LLMS_CHECK(!in.bad(), "error reading ", p.string());
  return ss.str();
}

json parse_json(std::string_view text, const std::string& source) {
  return io::parse_json(text, source, io::kModelJsonMaxDepth);
}

// A special token in tokenizer_config.json: "text", {"content": "text", ...} or null.
std::string config_token(const json& cfg, const char* key, const std::string& where) {
  auto it = cfg.find(key);
  if (it == cfg.end() || it->is_null()) return {};
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) return json_util::get_string(*it, "content", where + " " + key);
  fail(where, ": \"", key, "\" must be a string, an object with \"content\" or null, found ", it->type_name());
}

std::vector<AddedToken> parse_added_tokens(const json& root, const std::string& file) {
  std::vector<AddedToken> out;
  auto it = root.find("added_tokens");
  if (it == root.end() || it->is_null()) return out;
  LLMS_CHECK(it->is_array(), file, ": \"added_tokens\" must be an array, found ", it->type_name());
  for (const auto& t : *it) {
    const std::string where = file + ": added_tokens entry";
    LLMS_CHECK(t.is_object(), where, " must be an object, found ", t.type_name());
    AddedToken a;
    a.id = static_cast<int32_t>(json_util::get_int_or(t, "id", -1, where));
    LLMS_CHECK(a.id >= 0, where, " ", io::json_preview(t), ": missing or negative \"id\"");
    a.content = json_util::get_string(t, "content", where);
    LLMS_CHECK(!a.content.empty(), where, " id ", a.id, ": empty \"content\"");
    a.single_word = json_util::get_bool_or(t, "single_word", false, where);
    a.lstrip = json_util::get_bool_or(t, "lstrip", false, where);
    a.rstrip = json_util::get_bool_or(t, "rstrip", false, where);
    a.special = json_util::get_bool_or(t, "special", false, where);
    a.normalized = json_util::get_bool_or(t, "normalized", !a.special, where);
    out.push_back(std::move(a));
  }
  return out;
}

void apply_config(Tokenizer::Impl& im, const json& cfg, const std::string& where) {
  LLMS_CHECK(cfg.is_object(), where, ": expected a JSON object, found ", cfg.type_name());
  im.bos = config_token(cfg, "bos_token", where);
  im.eos = config_token(cfg, "eos_token", where);
  im.pad = config_token(cfg, "pad_token", where);
  std::string unk = config_token(cfg, "unk_token", where);
  if (!unk.empty()) im.unk = unk;
  im.add_bos = json_util::get_bool_or(cfg, "add_bos_token", false, where);
  im.add_eos = json_util::get_bool_or(cfg, "add_eos_token", false, where);
  auto ct = cfg.find("chat_template");
  if (ct != cfg.end() && !ct->is_null()) {
    if (ct->is_string()) {
      im.chat_template = ct->get<std::string>();
    } else if (ct->is_array()) {
      for (const auto& named : *ct)
        if (named.is_object() && named.value("name", "") == "default")
          im.chat_template = json_util::get_string(named, "template", where + " chat_template");
    } else {
      fail(where, ": \"chat_template\" must be a string or a list of {name, template}, found ", ct->type_name());
    }
  }
}

std::shared_ptr<Tokenizer::Impl> build(std::string_view tokenizer_json, const std::string& file,
                                       std::string_view config_json, const std::string& config_file) {
  json root = parse_json(tokenizer_json, file);
  LLMS_CHECK(root.is_object(), file, ": expected a JSON object, found ", root.type_name());
  auto impl = std::make_shared<Tokenizer::Impl>();
  impl->source = file;

  const json& model = json_util::require(root, "model", file);
  LLMS_CHECK(model.is_object(), file, ": \"model\" must be an object, found ", model.type_name());
  std::string model_type = model.contains("type") ? json_util::component_type(model, file + ": model")
                                                  : (model.contains("merges") ? "BPE" : "?");
  LLMS_CHECK(model_type == "BPE", file, ": unsupported model type \"", model_type,
             "\" (only BPE is supported; Unigram, WordPiece and WordLevel are not)");
  impl->model = std::make_unique<BpeModel>(model, file);

  auto component = [&](const char* key) -> const json* {
    auto it = root.find(key);
    return it == root.end() || it->is_null() ? nullptr : &*it;
  };
  if (const json* j = component("normalizer")) impl->normalizer = make_normalizer(*j, file);
  if (const json* j = component("pre_tokenizer")) impl->pre_tokenizer = make_pre_tokenizer(*j, file);
  if (const json* j = component("post_processor")) impl->post_processor = make_post_processor(*j, file);
  if (const json* j = component("decoder")) impl->decoder = make_decoder(*j, file);
  impl->added = AddedVocabulary(parse_added_tokens(root, file), impl->normalizer.get());

  impl->vocab_size = impl->model->vocab().size();
  for (const auto& t : impl->added.tokens())
    if (!impl->model->token_to_id(t.content)) ++impl->vocab_size;
  impl->unk = impl->model->unk_token();

  if (!config_json.empty()) apply_config(*impl, parse_json(config_json, config_file), config_file);
  auto id_of = [&](const std::string& s) { return s.empty() ? std::nullopt : impl->token_to_id(s); };
  impl->bos_id = id_of(impl->bos);
  impl->eos_id = id_of(impl->eos);
  impl->pad_id = id_of(impl->pad);
  impl->unk_id = id_of(impl->unk);
  return impl;
}

}  // namespace

Tokenizer::Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

Tokenizer Tokenizer::from_path(const std::filesystem::path& path) {
  std::filesystem::path file = path, config;
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    file = path / "tokenizer.json";
    LLMS_CHECK(std::filesystem::is_regular_file(file, ec), "no tokenizer.json in ", path.string(),
               " (only Hugging Face tokenizer.json files are supported)");
    config = path / "tokenizer_config.json";
  } else {
    LLMS_CHECK(std::filesystem::is_regular_file(path, ec), "tokenizer file ", path.string(), " does not exist");
    config = path.parent_path() / "tokenizer_config.json";
  }
  std::string config_text;
  if (std::filesystem::is_regular_file(config, ec)) config_text = read_file(config);
  std::string text = read_file(file);
  LLMS_CHECK(!text.empty(), file.string(), ": file is empty");
  return Tokenizer(build(text, file.string(), config_text, config.string()));
}

Tokenizer Tokenizer::from_json(std::string_view tokenizer_json, std::string_view config_json,
                               const std::string& source_name) {
  return Tokenizer(build(tokenizer_json, source_name, config_json, source_name + " (tokenizer_config)"));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  const Impl& im = *impl_;
  std::vector<Piece> pieces;
  pieces.push_back(Piece{unicode::is_valid_utf8(text) ? std::string(text) : unicode::repair_utf8(text), -1, true});
  im.added.split_raw(pieces);
  if (im.normalizer) {
    for (auto& p : pieces)
      if (p.token_id < 0) im.normalizer->normalize(p.text);
  }
  im.added.split_normalized(pieces);
  if (im.pre_tokenizer) im.pre_tokenizer->pre_tokenize(pieces);
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  for (const auto& p : pieces) {
    if (p.token_id >= 0)
      ids.push_back(p.token_id);
    else
      im.model->tokenize(p.text, ids);
  }
  if (add_special_tokens && im.post_processor) im.post_processor->process(ids);
  return ids;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  const Impl& im = *impl_;
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    const std::string* t = im.id_to_token(id);
    if (!t) continue;
    if (skip_special_tokens && im.added.is_special_content(*t)) continue;
    tokens.push_back(*t);
  }
  std::string out;
  if (im.decoder) {
    im.decoder->decode_chain(tokens);
    for (const auto& t : tokens) out += t;
  } else {
    for (std::size_t k = 0; k < tokens.size(); ++k) {
      if (k) out += ' ';
      out += tokens[k];
    }
  }
  return out;
}

std::optional<std::string> Tokenizer::id_to_token(int32_t id) const {
  const std::string* t = impl_->id_to_token(id);
  if (!t) return std::nullopt;
  return *t;
}
std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const { return impl_->token_to_id(token); }
std::size_t Tokenizer::vocab_size() const { return impl_->vocab_size; }
bool Tokenizer::is_special(int32_t id) const {
  const std::string* t = impl_->added.id_to_token(id);
  return t && impl_->added.is_special_content(*t);
}
const std::string& Tokenizer::bos_token() const { return impl_->bos; }
const std::string& Tokenizer::eos_token() const { return impl_->eos; }
const std::string& Tokenizer::pad_token() const { return impl_->pad; }
const std::string& Tokenizer::unk_token() const { return impl_->unk; }
std::optional<int32_t> Tokenizer::bos_id() const { return impl_->bos_id; }
std::optional<int32_t> Tokenizer::eos_id() const { return impl_->eos_id; }
std::optional<int32_t> Tokenizer::pad_id() const { return impl_->pad_id; }
std::optional<int32_t> Tokenizer::unk_id() const { return impl_->unk_id; }
bool Tokenizer::add_bos_token() const { return impl_->add_bos; }
bool Tokenizer::add_eos_token() const { return impl_->add_eos; }
const std::string& Tokenizer::chat_template() const { return impl_->chat_template; }
const std::string& Tokenizer::source() const { return impl_->source; }

}  // namespace llmstudio::tokenizer
