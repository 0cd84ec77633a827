// The BPE model of tokenizer.json ("model": {"type": "BPE"}): vocabulary, merge ranks, and word -> ids with a
// rank-ordered priority queue over a linked list of symbols (same merge order as tokenizers), unk/fuse_unk,
// byte_fallback (<0xXX> tokens), ignore_merges, continuing_subword_prefix / end_of_word_suffix, and a
// thread-safe word cache.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace llmstudio::tokenizer {

// Transparent string hashing so maps keyed by std::string can be probed with a string_view.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
using Vocab = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

class BpeModel {
 public:
  // Builds the model from tokenizer.json's "model" object; throws llmstudio::Error naming `file`.
  BpeModel(const nlohmann::json& model, const std::string& file);
  ~BpeModel();

  // Appends the ids of one pre-tokenized word to `out`.
  void tokenize(std::string_view word, std::vector<int32_t>& out) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  const std::string* id_to_token(int32_t id) const;  // nullptr if unknown
  const Vocab& vocab() const { return vocab_; }
  const std::string& unk_token() const { return unk_token_; }

 private:
  struct MergeTable;
  struct Cache;
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;

  Vocab vocab_;
  std::vector<std::string> id_to_token_;
  std::vector<char> has_id_;
  std::unique_ptr<MergeTable> merges_;
  std::unique_ptr<Cache> cache_;
  std::string unk_token_;
  std::optional<int32_t> unk_id_;
  std::string prefix_, suffix_;
  bool fuse_unk_ = false, byte_fallback_ = false, ignore_merges_ = false;
  int32_t byte_ids_[256];  // ids of <0x00>..<0xFF> when byte_fallback (-1 if missing)
};

}  // namespace llmstudio::tokenizer
