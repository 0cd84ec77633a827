// Public tokenizer API: loads a Hugging Face `tokenizer.json` (+ `tokenizer_config.json`) and encodes/decodes
// token-for-token like the Python `tokenizers` library (normalizer -> added tokens -> pre-tokenizer -> BPE model ->
// post-processor; decode: added tokens verbatim, decoder chain for the rest).
//
// Supported: model BPE (byte-level and SentencePiece-style with byte_fallback); normalizers Sequence, Prepend,
// Replace, NFC/NFD/NFKC/NFKD, Lowercase, Strip; pre-tokenizers ByteLevel, Split, Metaspace, Digits, Whitespace,
// WhitespaceSplit, Punctuation, Sequence; post-processors TemplateProcessing, ByteLevel, Roberta/Bert, Sequence;
// decoders ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip, Sequence. Anything else -> llmstudio::Error
// naming the component type and the file.
//
// Invalid UTF-8 input to encode() is first decoded like Python's bytes.decode("utf-8", errors="replace"): each
// maximal ill-formed subsequence becomes U+FFFD. decode() of ids whose bytes are not valid UTF-8 (byte-level
// vocabularies, byte fallback) returns U+FFFD in their place, like `tokenizers` does.
//
// A Tokenizer is an immutable, cheaply copyable handle (shared state); concurrent const calls are thread-safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace llmstudio::tokenizer {

class Tokenizer {
 public:
  // `path` is a model folder (containing tokenizer.json, optionally tokenizer_config.json) or a tokenizer.json
  // file (a tokenizer_config.json beside it is read too). Throws llmstudio::Error naming the file on any problem.
  static Tokenizer from_path(const std::filesystem::path& path);
  // Same from in-memory JSON texts; `config_json` may be empty; `source_name` is used in error messages.
  static Tokenizer from_json(std::string_view tokenizer_json, std::string_view config_json = {},
                             const std::string& source_name = "<memory>");

  // Token ids of `text`. add_special_tokens=true runs the post-processor (e.g. BOS insertion), exactly as
  // `tokenizers.Tokenizer.encode(text, add_special_tokens=...)`.
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = true) const;
  // Text of `ids` (unknown ids are skipped, like `tokenizers`). skip_special_tokens drops added tokens marked special.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;

  // Token string of an id (model vocab or added token); nullopt if out of range.
  std::optional<std::string> id_to_token(int32_t id) const;
  std::optional<int32_t> token_to_id(std::string_view token) const;
  // Number of distinct tokens, model vocab plus added tokens (= tokenizers' get_vocab_size(with_added_tokens=True)).
  std::size_t vocab_size() const;
  // True if `id` is an added token marked special (skipped by decode(..., skip_special_tokens=true)).
  bool is_special(int32_t id) const;

  // Special tokens from tokenizer_config.json (bos_token etc., string or {"content": ...}); strings are empty
  // and ids nullopt when not configured or not in the vocabulary.
  const std::string& bos_token() const;
  const std::string& eos_token() const;
  const std::string& pad_token() const;
  const std::string& unk_token() const;
  std::optional<int32_t> bos_id() const;
  std::optional<int32_t> eos_id() const;
  std::optional<int32_t> pad_id() const;
  std::optional<int32_t> unk_id() const;
  // tokenizer_config.json's add_bos_token / add_eos_token (false when absent). Informational: encode() follows
  // tokenizer.json's post-processor, as `tokenizers` does.
  bool add_bos_token() const;
  bool add_eos_token() const;
  // tokenizer_config.json's chat_template (a string; for a list of named templates, the one named "default");
  // empty if none.
  const std::string& chat_template() const;
  // The tokenizer.json this was loaded from (or the source_name given to from_json).
  const std::string& source() const;

  struct Impl;  // defined in tokenizer.cpp

 private:
  explicit Tokenizer(std::shared_ptr<const Impl> impl);
  std::shared_ptr<const Impl> impl_;
};

}  // namespace llmstudio::tokenizer
