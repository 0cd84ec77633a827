// BPE model: loading (vocab, merges in "a b" or ["a", "b"] form), merging, word cache (see bpe_model.h).
#include "llmstudio/tokenizer/bpe_model.h"

#include <algorithm>
#include <array>
#include <cstdio>

#include "llmstudio/io/json_text.h"
#include "llmstudio/tokenizer/json_util.h"
#include "llmstudio/tokenizer/unicode.h"

namespace llmstudio::tokenizer {

// Open-addressing hash map (id_a, id_b) -> (rank, merged id).
struct BpeModel::MergeTable {
  struct Slot {
    uint64_t key = kEmpty;
    int32_t rank = 0;
    int32_t new_id = 0;
  };
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  std::vector<Slot> slots;
  uint64_t mask = 0;
  int shift = 0;

  explicit MergeTable(std::size_t n) {
    std::size_t cap = 16;
    int bits = 4;
    while (cap < n * 2 + 1) {
      cap <<= 1;
      ++bits;
    }
    slots.resize(cap);
    mask = cap - 1;
    shift = 64 - bits;
  }
  static uint64_t key_of(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  std::size_t home(uint64_t key) const { return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ull) >> shift); }
  void put(int32_t a, int32_t b, int32_t rank, int32_t new_id) {
    uint64_t key = key_of(a, b);
    for (std::size_t i = home(key);; i = (i + 1) & mask) {
      if (slots[i].key == kEmpty || slots[i].key == key) {
        slots[i] = Slot{key, rank, new_id};  // a repeated merge keeps the last rank, like tokenizers' HashMap
        return;
      }
    }
  }
  const Slot* get(int32_t a, int32_t b) const {
    uint64_t key = key_of(a, b);
    for (std::size_t i = home(key);; i = (i + 1) & mask) {
      if (slots[i].key == key) return &slots[i];
      if (slots[i].key == kEmpty) return nullptr;
    }
  }
};

// Word -> ids cache, sharded by hash so concurrent encode() calls rarely contend.
struct BpeModel::Cache {
  static constexpr std::size_t kShards = 16;
  static constexpr std::size_t kPerShard = 8192;
  static constexpr std::size_t kMaxWordBytes = 256;
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> map;
  };
  std::array<Shard, kShards> shards;
  static std::size_t shard_of(std::string_view w) { return StringHash{}(w) % kShards; }
  bool get(std::string_view w, std::vector<int32_t>& out) {
    Shard& s = shards[shard_of(w)];
    std::lock_guard lock(s.mu);
    auto it = s.map.find(w);
    if (it == s.map.end()) return false;
    out.insert(out.end(), it->second.begin(), it->second.end());
    return true;
  }
  void put(std::string_view w, std::vector<int32_t> ids) {
    Shard& s = shards[shard_of(w)];
    std::lock_guard lock(s.mu);
    if (s.map.size() >= kPerShard) return;
    s.map.emplace(std::string(w), std::move(ids));
  }
};

BpeModel::~BpeModel() = default;

BpeModel::BpeModel(const nlohmann::json& model, const std::string& file) {
  const std::string where = file + ": model BPE";
  LLMS_CHECK(json_util::component_type(model, file + ": model") == "BPE", where, ": not a BPE model");
  auto dropout = model.find("dropout");
  if (dropout != model.end() && !dropout->is_null()) {
    LLMS_CHECK(dropout->is_number(), where, ": \"dropout\" must be a number or null");
    LLMS_CHECK(dropout->get<double>() == 0.0, where, ": BPE dropout (", dropout->get<double>(),
               ") is a training-time randomization and is not supported; set it to null");
  }
  const auto& vocab = json_util::require(model, "vocab", where);
  LLMS_CHECK(vocab.is_object(), where, ": \"vocab\" must be an object token -> id, found ", vocab.type_name());
  vocab_.reserve(vocab.size());
  int32_t max_id = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    LLMS_CHECK(it.value().is_number_integer(), where, ": vocab entry \"", it.key(), "\" must map to an integer id");
    int64_t id = it.value().get<int64_t>();
    LLMS_CHECK(id >= 0 && id < (int64_t{1} << 30), where, ": vocab id ", id, " of \"", it.key(), "\" out of range");
    vocab_[it.key()] = static_cast<int32_t>(id);
    max_id = std::max(max_id, static_cast<int32_t>(id));
  }
  id_to_token_.resize(static_cast<std::size_t>(max_id + 1));
  has_id_.assign(static_cast<std::size_t>(max_id + 1), 0);
  for (const auto& [tok, id] : vocab_) {
    id_to_token_[id] = tok;
    has_id_[id] = 1;
  }

  unk_token_ = json_util::get_string_or(model, "unk_token", "", where);
  prefix_ = json_util::get_string_or(model, "continuing_subword_prefix", "", where);
  suffix_ = json_util::get_string_or(model, "end_of_word_suffix", "", where);
  fuse_unk_ = json_util::get_bool_or(model, "fuse_unk", false, where);
  byte_fallback_ = json_util::get_bool_or(model, "byte_fallback", false, where);
  ignore_merges_ = json_util::get_bool_or(model, "ignore_merges", false, where);
  if (!unk_token_.empty()) {
    auto it = vocab_.find(unk_token_);
    if (it != vocab_.end()) unk_id_ = it->second;  // tokenizers fails at encode time if it is missing; so do we
  }
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    auto it = vocab_.find(std::string_view(name));
    byte_ids_[b] = it == vocab_.end() ? -1 : it->second;
  }

  const auto& merges = json_util::get_array(model, "merges", where);
  merges_ = std::make_unique<MergeTable>(merges.size());
  auto lookup = [&](std::string_view tok, std::size_t rank) {
    auto it = vocab_.find(tok);
    LLMS_CHECK(it != vocab_.end(), where, ": merge ", rank + 1, " uses token \"", tok, "\" which is not in the vocab");
    return it->second;
  };
  for (std::size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& m = merges[rank];
    std::string a, b;
    if (m.is_string()) {
      const auto& s = m.get_ref<const std::string&>();
      auto sp = s.find(' ');
      LLMS_CHECK(sp != std::string::npos && s.find(' ', sp + 1) == std::string::npos, where, ": merge ", rank + 1,
                 " must be \"left right\" (two tokens separated by one space), found \"", s, "\"");
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      a = m[0].get<std::string>();
      b = m[1].get<std::string>();
    } else {
      fail(where, ": merge ", rank + 1, " must be a string \"a b\" or a pair [\"a\", \"b\"], found ", io::json_preview(m));
    }
    int32_t ida = lookup(a, rank), idb = lookup(b, rank);
    LLMS_CHECK(b.size() >= prefix_.size(), where, ": merge ", rank + 1, " right token \"", b,
               "\" is shorter than continuing_subword_prefix");
    std::string merged = a + b.substr(prefix_.size());
    auto it = vocab_.find(merged);
    LLMS_CHECK(it != vocab_.end(), where, ": merge ", rank + 1, " (\"", a, "\", \"", b, "\") gives \"", merged,
               "\" which is not in the vocab");
    merges_->put(ida, idb, static_cast<int32_t>(rank), it->second);
  }
  cache_ = std::make_unique<Cache>();
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
  auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= id_to_token_.size() || !has_id_[id]) return nullptr;
  return &id_to_token_[id];
}

void BpeModel::tokenize(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    auto it = vocab_.find(word);
    if (it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  bool cacheable = word.size() < Cache::kMaxWordBytes;
  if (cacheable && cache_->get(word, out)) return;
  std::size_t start = out.size();
  merge_word(word, out);
  if (cacheable) cache_->put(word, std::vector<int32_t>(out.begin() + static_cast<std::ptrdiff_t>(start), out.end()));
}

namespace {
struct Symbol {
  int32_t id;
  int32_t prev;
  int32_t next;
  int32_t len;  // bytes of the word covered; 0 once merged into its left neighbour
};
struct MergeCandidate {
  int32_t rank;
  int32_t pos;
  int32_t new_id;
};
// Heap order: smallest rank first, then leftmost position.
struct CandidateAfter {
  bool operator()(const MergeCandidate& a, const MergeCandidate& b) const {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
  }
};
}  // namespace

void BpeModel::merge_word(std::string_view word, std::vector<int32_t>& out) const {
  thread_local std::vector<Symbol> symbols;
  thread_local std::vector<MergeCandidate> heap;
  thread_local std::string buf;
  symbols.clear();
  heap.clear();
  auto add = [&](int32_t id, int32_t len) {
    int32_t n = static_cast<int32_t>(symbols.size());
    symbols.push_back(Symbol{id, n - 1, -1, len});
    if (n > 0) symbols[n - 1].next = n;
  };
  // Pending unknown run (id, byte length), flushed before the next known symbol (fuse_unk merges runs).
  int32_t unk_pending_id = -1, unk_pending_len = 0;
  std::size_t i = 0;
  while (i < word.size()) {
    std::size_t begin = i;
    i += unicode::utf8_len(static_cast<unsigned char>(word[i]));
    if (i > word.size()) i = word.size();
    auto len = static_cast<int32_t>(i - begin);
    std::string_view ch = word.substr(begin, i - begin);
    std::string_view key = ch;
    if ((!prefix_.empty() && begin != 0) || (!suffix_.empty() && i == word.size())) {
      buf.clear();
      if (begin != 0) buf += prefix_;
      buf += ch;
      if (i == word.size()) buf += suffix_;
      key = buf;
    }
    auto it = vocab_.find(key);
    if (it != vocab_.end()) {
      if (unk_pending_id >= 0) {
        add(unk_pending_id, unk_pending_len);
        unk_pending_id = -1;
      }
      add(it->second, len);
      continue;
    }
    if (byte_fallback_) {
      bool all = std::all_of(key.begin(), key.end(), [&](char c) { return byte_ids_[static_cast<unsigned char>(c)] >= 0; });
      if (all) {
        for (char c : key) add(byte_ids_[static_cast<unsigned char>(c)], 1);
        continue;  // like tokenizers, a pending unk run stays pending
      }
    }
    if (!unk_token_.empty()) {
      LLMS_CHECK(unk_id_.has_value(), "tokenizer: BPE unk_token \"", unk_token_, "\" is not in the vocabulary");
      if (unk_pending_id >= 0 && fuse_unk_) {
        unk_pending_len += len;
      } else {
        if (unk_pending_id >= 0) add(unk_pending_id, unk_pending_len);
        unk_pending_id = *unk_id_;
        unk_pending_len = len;
      }
    }
  }
  if (unk_pending_id >= 0) add(unk_pending_id, unk_pending_len);

  // Merge pairs in rank order (ties: leftmost first) until no known pair remains.
  const auto n = static_cast<int32_t>(symbols.size());
  for (int32_t p = 0; p + 1 < n; ++p) {
    if (const auto* m = merges_->get(symbols[p].id, symbols[p + 1].id)) heap.push_back({m->rank, p, m->new_id});
  }
  std::make_heap(heap.begin(), heap.end(), CandidateAfter{});
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), CandidateAfter{});
    MergeCandidate top = heap.back();
    heap.pop_back();
    Symbol& cur = symbols[top.pos];
    if (cur.len == 0 || cur.next < 0) continue;
    int32_t next_pos = cur.next;
    Symbol right = symbols[next_pos];
    const auto* m = merges_->get(cur.id, right.id);
    if (!m || m->new_id != top.new_id) continue;  // stale entry
    cur.id = top.new_id;
    cur.len += right.len;
    cur.next = right.next;
    symbols[next_pos].len = 0;
    if (right.next >= 0) symbols[right.next].prev = top.pos;
    if (cur.prev >= 0) {
      if (const auto* pm = merges_->get(symbols[cur.prev].id, cur.id)) {
        heap.push_back({pm->rank, cur.prev, pm->new_id});
        std::push_heap(heap.begin(), heap.end(), CandidateAfter{});
      }
    }
    if (cur.next >= 0) {
      if (const auto* nm = merges_->get(cur.id, symbols[cur.next].id)) {
        heap.push_back({nm->rank, top.pos, nm->new_id});
        std::push_heap(heap.begin(), heap.end(), CandidateAfter{});
      }
    }
  }
  for (const auto& s : symbols)
    if (s.len != 0) out.push_back(s.id);
}

}  // namespace llmstudio::tokenizer
