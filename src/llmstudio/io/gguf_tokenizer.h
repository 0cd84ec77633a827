// Rebuilding Hugging Face tokenizer files from a GGUF file's tokenizer metadata (tokenizer.ggml.*). Torch-free.
//
// tokenizer.ggml.model "gpt2" (byte-level BPE: tokens are stored in their byte-level form, merges as
// "left right" strings) becomes a tokenizers BPE model with the pre-tokenizer that tokenizer.ggml.pre names
// (gpt2, smollm/starcoder-style digit splitting, llama-bpe / Llama-3, qwen2, ...), a ByteLevel decoder, and
// added tokens for every CONTROL (special) and USER_DEFINED token. tokenizer.ggml.model "llama" (SentencePiece
// BPE with byte fallback: pieces + scores, no merges) becomes a BPE model whose merges are derived from the
// scores (a split of a piece into two vocabulary pieces, ranked by the piece's score), with the Prepend/Replace
// "▁" normalizer and the ByteFallback decoder, as Llama-2 / Mistral tokenizer.json files have.
// tokenizer_config.json carries the special tokens, add_bos/eos and tokenizer.chat_template.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>

#include "llmstudio/io/gguf_reader.h"

namespace llmstudio::io {

// llama.cpp's token types (tokenizer.ggml.token_type).
enum class GgufTokenType : std::int32_t { NORMAL = 1, UNKNOWN = 2, CONTROL = 3, USER_DEFINED = 4, UNUSED = 5, BYTE = 6 };

struct GgufTokenizerFiles {
  nlohmann::json tokenizer;         // tokenizer.json
  nlohmann::json tokenizer_config;  // tokenizer_config.json
  std::int64_t vocab_size = 0;
  std::optional<std::int64_t> bos_id, eos_id, pad_id, unk_id;
  std::string summary;  // one line: model, pre-tokenizer, vocab / merges / added counts
};

// True when the header has tokenizer.ggml.model.
bool gguf_has_tokenizer(const GgufHeader& header);

// Builds the files; `source` names the GGUF file in errors (unsupported model / pre-tokenizer, missing or
// inconsistent arrays, ids out of range).
GgufTokenizerFiles build_gguf_tokenizer(const GgufHeader& header, const std::string& source);

// Serialises JSON for a file; token strings that are not valid UTF-8 are an Error naming `what`.
std::string dump_json_checked(const nlohmann::json& j, const std::string& what);

}  // namespace llmstudio::io
