// Token masking, parent skipping and random parents; NEFTune wiring (see augmentation.h).
#include "llmstudio/train/augmentation.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <sstream>

#include "llmstudio/core/error.h"
#include "llmstudio/model/causal_lm.h"

namespace llmstudio::train {
namespace {

// splitmix64 (Steele, Lea, Flood 2014), the finaliser of java.util.SplittableRandom.
std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// [B, 1, T, T] "may attend": causal, only keys in `visible` [B, T]; a query with no key left keeps its own.
at::Tensor with_own_key(const at::Tensor& allowed) {
  const std::int64_t T = allowed.size(-1);
  at::Tensor idx = at::arange(T, at::TensorOptions().dtype(at::kLong).device(allowed.device()));
  at::Tensor eye = idx.view({T, 1}).eq(idx.view({1, T})).view({1, 1, T, T});
  at::Tensor empty = allowed.any(-1, /*keepdim=*/true).logical_not();
  return allowed.logical_or(eye.logical_and(empty));
}

at::Tensor causal_visible(const at::Tensor& visible) {
  const std::int64_t B = visible.size(0), T = visible.size(1);
  at::Tensor idx = at::arange(T, at::TensorOptions().dtype(at::kLong).device(visible.device()));
  at::Tensor causal = idx.view({T, 1}).ge(idx.view({1, T})).view({1, 1, T, T});
  return causal.logical_and(visible.to(at::kBool).view({B, 1, 1, T}));
}

}  // namespace

// The seed is folded in first, then the stream, then the two counters; the result is cut to 63 bits so that it is
// a valid seed for torch.Generator().manual_seed in a test.
std::uint64_t augmentation_seed(std::uint64_t seed, AugmentStream stream, std::uint64_t a, std::uint64_t b) {
  std::uint64_t h = splitmix64(seed);
  h = splitmix64(h ^ static_cast<std::uint64_t>(stream));
  h = splitmix64(h ^ a);
  h = splitmix64(h ^ b);
  return h & 0x7FFFFFFFFFFFFFFFULL;
}

// numpy/random/src/mt19937 (legacy_double = mt19937_next_double): a >> 5 and b >> 6 of two draws.
double NumpyRandom::random() {
  const std::uint32_t a = mt_() >> 5, b = mt_() >> 6;
  return (static_cast<double>(a) * 67108864.0 + static_cast<double>(b)) / 9007199254740992.0;
}

// numpy's random_bounded_uint64_fill with use_masked (RandomState.randint): rng = high - 1; draws 32-bit values
// masked to the smallest 2^k - 1 >= rng until one is <= rng.
std::int64_t NumpyRandom::randint(std::int64_t high) {
  LLMS_CHECK(high >= 1 && high <= (std::int64_t{1} << 32), "NumpyRandom::randint: high must be in [1, 2^32], got ", high);
  const auto rng = static_cast<std::uint64_t>(high - 1);
  if (rng == 0) return 0;
  if (rng == 0xFFFFFFFFULL) return static_cast<std::int64_t>(mt_());
  std::uint64_t mask = rng;
  for (int s : {1, 2, 4, 8, 16, 32}) mask |= mask >> s;
  std::uint64_t v;
  do v = static_cast<std::uint64_t>(mt_()) & mask;
  while (v > rng);
  return static_cast<std::int64_t>(v);
}

std::vector<std::size_t> augment_parents(const std::vector<std::size_t>& chain, std::size_t num_rows,
                                         double skip_probability, double random_parent_probability, NumpyRandom& rng) {
  LLMS_CHECK(!chain.empty(), "augment_parents: empty conversation chain");
  std::vector<std::size_t> parents;
  for (std::size_t i = 0; i + 1 < chain.size(); ++i)
    if (rng.random() > skip_probability) parents.push_back(chain[i]);  // H2O keeps on random() > p
  if (rng.random() < random_parent_probability) {
    const auto row = static_cast<std::size_t>(rng.randint(static_cast<std::int64_t>(num_rows)));
    if (parents.empty()) parents.push_back(row);
    else parents.front() = row;  // [random] + parent_encodings[1:]
  }
  parents.push_back(chain.back());
  return parents;
}

ParentAugmenter::ParentAugmenter(SampleBuilder build, std::vector<tokenizer::ConversationRow> rows,
                                 bool limit_chained_samples, double skip_probability, double random_parent_probability,
                                 std::uint64_t seed)
    : build_(std::move(build)),
      rows_(std::move(rows)),
      chains_(tokenizer::build_conversation_chains(rows_, limit_chained_samples)),
      skip_(skip_probability),
      random_(random_parent_probability),
      seed_(seed) {}

std::vector<std::vector<std::size_t>> ParentAugmenter::epoch_chains(std::int64_t epoch) const {
  std::vector<std::vector<std::size_t>> out;
  out.reserve(chains_.size());
  for (std::size_t i = 0; i < chains_.size(); ++i) {
    NumpyRandom rng(static_cast<std::uint32_t>(
        augmentation_seed(seed_, AugmentStream::Parents, static_cast<std::uint64_t>(epoch), i) & 0xFFFFFFFFULL));
    out.push_back(augment_parents(chains_[i], rows_.size(), skip_, random_, rng));
  }
  return out;
}

std::vector<tokenizer::PromptSample> ParentAugmenter::epoch_samples(std::int64_t epoch) const {
  std::vector<tokenizer::PromptSample> out;
  out.reserve(chains_.size());
  for (const auto& chain : epoch_chains(epoch)) {
    std::vector<const tokenizer::ConversationRow*> ptrs;
    for (std::size_t r : chain) ptrs.push_back(&rows_[r]);
    out.push_back(build_(ptrs));
  }
  return out;
}

std::int32_t h2o_mask_token_id(const tokenizer::Tokenizer& tok) {
  if (auto id = tok.unk_id()) return *id;
  if (auto id = tok.pad_id()) return *id;
  if (auto id = tok.eos_id()) return *id;
  LLMS_CHECK(tok.vocab_size() > 0, "augmentation.token_mask_probability: the tokenizer ", tok.source(), " has no tokens");
  return static_cast<std::int32_t>(tok.vocab_size() - 1);
}

at::Tensor draw_token_mask(std::int64_t rows, std::int64_t max_length, double probability, std::uint64_t gen_seed) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(gen_seed);
  at::Tensor p = at::full({rows, max_length}, probability, at::TensorOptions().dtype(at::kFloat));
  return at::bernoulli(p, gen).to(at::kBool);
}

void mask_tokens(Batch& batch, const at::Tensor& mask, std::int32_t mask_token_id) {
  const std::int64_t B = batch.input_ids.size(0), T = batch.input_ids.size(1);
  LLMS_CHECK(mask.dim() == 2 && mask.size(0) == B && mask.size(1) >= T, "token mask must be [", B, ", >= ", T,
             "] (batch rows, max_length), found ", mask.sizes());
  const at::Tensor m = mask.narrow(1, mask.size(1) - T, T).to(batch.input_ids.device());
  const bool packed = batch.attention_mask.dim() == 4;
  if (!packed) {
    if (!batch.position_ids.defined()) batch.position_ids = model::positions_from_mask(batch.attention_mask);
    batch.attention_mask = with_own_key(causal_visible(batch.attention_mask.to(at::kBool).logical_and(m.logical_not())));
  } else {
    batch.attention_mask = with_own_key(batch.attention_mask.to(at::kBool).logical_and(m.logical_not().view({B, 1, 1, T})));
  }
  batch.segments = {};  // the mask now hides tokens inside segments: only the mask describes it
  batch.padded = true;
  batch.input_ids = batch.input_ids.masked_fill(m, mask_token_id);
  batch.labels = batch.labels.masked_fill(m.to(batch.labels.device()), tokenizer::kIgnoreIndex);
}

void mask_batch_tokens(Batch& batch, double probability, std::int64_t max_length, std::int32_t mask_token_id,
                       std::uint64_t seed, std::int64_t step, std::int64_t micro) {
  if (probability <= 0) return;
  const std::int64_t width = std::max(max_length, batch.input_ids.size(1));
  const auto s = augmentation_seed(seed, AugmentStream::TokenMask, static_cast<std::uint64_t>(step),
                                   static_cast<std::uint64_t>(micro));
  mask_tokens(batch, draw_token_mask(batch.input_ids.size(0), width, probability, s), mask_token_id);
}

Augmentation::Augmentation(const experiment::ExperimentConfig& cfg, const tokenizer::Tokenizer& tok, SampleBuilder build,
                           std::vector<tokenizer::ConversationRow> train_rows, std::uint64_t seed)
    : token_mask_p_(cfg.augmentation.token_mask_probability),
      neftune_alpha_(cfg.augmentation.neftune_noise_alpha),
      max_length_(cfg.tokenizer.max_length),
      mask_token_id_(token_mask_p_ > 0 ? h2o_mask_token_id(tok) : 0),
      seed_(seed),
      parents_(std::move(build), std::move(train_rows), cfg.dataset.limit_chained_samples,
               cfg.augmentation.skip_parent_probability, cfg.augmentation.random_parent_probability, seed) {
  LLMS_CHECK(!(parents_active() && cfg.training.packing), "augmentation.skip_parent_probability (",
             cfg.augmentation.skip_parent_probability, ") / random_parent_probability (",
             cfg.augmentation.random_parent_probability, ") re-draw the training samples every epoch, but ",
             "training.packing fixes its rows once from the sample lengths\n  hint: --set training.packing=false, ",
             "or set both probabilities to 0");
}

std::string Augmentation::summary() const {
  std::ostringstream os;
  if (token_mask_p_ > 0) os << "token masking p=" << token_mask_p_ << " (mask id " << mask_token_id_ << "); ";
  if (parents_active())
    os << "parents re-drawn every epoch (skip p=" << parents_.skip_probability() << ", random parent p="
       << parents_.random_parent_probability() << "); ";
  if (neftune_alpha_ > 0) os << "NEFTune noise alpha=" << neftune_alpha_ << " (training only); ";
  std::string s = os.str();
  if (!s.empty()) s = "augmentation: " + s.substr(0, s.size() - 2);
  return s;
}

}  // namespace llmstudio::train
