// H2O LLM Studio's `augmentation` section for causal-LM training: token masking, parent skipping, random
// parents (this file) and NEFTune (the noise itself is model::CausalLM::set_neftune_noise_alpha; the trainer
// turns it on through Augmentation). Each mirrors the H2O function named at its declaration.
//
// Randomness. H2O draws from process-global generators (numpy's for parents, torch's for token masks and
// NEFTune), re-seeded at each epoch start; the draws then depend on worker scheduling. Ours depend only on
// (environment.seed, epoch or step, sample or micro-batch), so a resumed run repeats them exactly:
//   - parents of training sample i in epoch e: numpy's legacy RandomState seeded with
//     augmentation_seed(seed, Parents, e, i) & 0xffffffff, called exactly as H2O calls np.random
//     (random() per parent, random(), randint(rows)); NumpyRandom re-implements RandomState bit for bit;
//   - token mask of micro-batch a of optimizer step s (0-based): torch's CPU generator seeded with
//     augmentation_seed(seed, TokenMask, s, a), drawing torch.bernoulli(torch.full([B, max_length], p));
//   - NEFTune: the device's default torch generator, which the trainer seeds at every optimizer step.
// augmentation_seed is a splitmix64 chain (documented at its definition), easy to re-implement in a test.
//
// Per-epoch samples. H2O re-draws parents at every __getitem__, i.e. once per sample per epoch. We rebuild the
// training samples at the start of each epoch (ParentAugmenter::epoch_samples): the number of samples, hence
// steps per epoch, does not change (one sample per conversation chain), only their content. Packing
// (training.packing, not an H2O setting) fixes rows once from the sample lengths, so it is refused together
// with parent augmentation.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "llmstudio/experiment/experiment_config.h"
#include "llmstudio/tokenizer/prompt_format.h"
#include "llmstudio/tokenizer/tokenizer.h"
#include "llmstudio/train/batching.h"

namespace llmstudio::train {

enum class AugmentStream : std::uint64_t { TokenMask = 1, Parents = 2 };

// splitmix64(splitmix64(splitmix64(splitmix64(seed) ^ stream) ^ a) ^ b), 63 bits (a valid torch seed).
std::uint64_t augmentation_seed(std::uint64_t seed, AugmentStream stream, std::uint64_t a, std::uint64_t b);

// numpy.random.RandomState(seed) for a 32-bit seed (MT19937, init_genrand), with its legacy random() (53-bit
// double from two 32-bit draws) and randint(high) (masked rejection sampling on 32-bit draws, high <= 2^32).
class NumpyRandom {
 public:
  explicit NumpyRandom(std::uint32_t seed) : mt_(seed) {}
  double random();
  std::int64_t randint(std::int64_t high);

 private:
  std::mt19937 mt_;
};

// Mirrors H2O's CustomDataset.augment_data (text_causal_language_modeling_ds.py) on a chain of row indices
// (oldest round first, the sample's own row last): each parent is kept when random() > skip_probability (one
// draw per parent, in order); then, when random() < random_parent_probability, a row drawn with
// randint(num_rows) (any row of the training data, a single round) replaces the first kept parent, or is put in
// front when none is left. The last round is never touched. The chain's system prompt is then the first
// round's, as in H2O (system_encoding = encodings[0][0]).
std::vector<std::size_t> augment_parents(const std::vector<std::size_t>& chain, std::size_t num_rows,
                                         double skip_probability, double random_parent_probability, NumpyRandom& rng);

// Builds the sample of one chain of rows (oldest first): tokenizer::PromptFormatter::build.
using SampleBuilder = std::function<tokenizer::PromptSample(const std::vector<const tokenizer::ConversationRow*>&)>;

// The training samples of each epoch with parent augmentation (see the file comment).
class ParentAugmenter {
 public:
  // `rows` are the training rows and `build` their formatter's build, as PromptFormatter::build_all uses them.
  ParentAugmenter(SampleBuilder build, std::vector<tokenizer::ConversationRow> rows, bool limit_chained_samples,
                  double skip_probability, double random_parent_probability, std::uint64_t seed);
  bool active() const { return skip_ > 0 || random_ > 0; }
  double skip_probability() const { return skip_; }
  double random_parent_probability() const { return random_; }
  // The augmented chains (row indices) of `epoch`, one per sample, in the order of formatter.build_all.
  std::vector<std::vector<std::size_t>> epoch_chains(std::int64_t epoch) const;
  std::vector<tokenizer::PromptSample> epoch_samples(std::int64_t epoch) const;

 private:
  SampleBuilder build_;
  std::vector<tokenizer::ConversationRow> rows_;
  std::vector<std::vector<std::size_t>> chains_;
  double skip_, random_;
  std::uint64_t seed_;
};

// H2O's cfg.tokenizer._tokenizer_mask_token_id (text_utils.get_tokenizer): the unk token, else the pad token,
// else eos (H2O sets a missing pad token to eos first), else the last id. H2O also tries tokenizer.mask_token_id
// between unk and pad; causal-LM tokenizers have none, and ours does not read one.
std::int32_t h2o_mask_token_id(const tokenizer::Tokenizer& tok);

// torch.bernoulli(torch.full([rows, max_length], probability)) > 0 on the CPU generator seeded with gen_seed.
at::Tensor draw_token_mask(std::int64_t rows, std::int64_t max_length, double probability, std::uint64_t gen_seed);

// Mirrors H2O's BaseNLPAug.forward (augmentations/nlp_aug.py) on a collated batch: where `mask` is true the
// input id becomes mask_token_id, the token is hidden as a key (H2O: attention_mask 0) and its label is -100.
// `mask` is [B, max_length] as H2O draws it on samples left-padded to max_length; a batch cut to T columns
// (padding quantile) uses its last T columns, as H2O's batch_padding cuts after the augmentation. Padding
// positions are drawn and replaced too (no effect: already unattended and -100). The batch leaves with a bool
// [B, 1, T, T] attention mask (causal, or the packed block-diagonal one, minus the masked keys) in which a query
// left without any key keeps its own: a 2-d mask would let such a row attend to every key, later ones included
// (our SDPA fallback for padding rows, and HF's eager softmax over an all-masked row), a leak H2O has there.
// Positions stay those of the unmasked batch (HF's training forward counts positions regardless of the
// attention mask, so masking shifts none; H2O's batch_padding may also cut leading columns whose tokens are
// all masked, which changes nothing but HF's absolute positions: not mirrored).
void mask_tokens(Batch& batch, const at::Tensor& mask, std::int32_t mask_token_id);

// Token masking of micro-batch `micro` of optimizer step `step` (0-based): draw_token_mask([B, max(max_length, T)],
// seeded with augmentation_seed(seed, TokenMask, step, micro)), then mask_tokens. No-op for probability 0.
void mask_batch_tokens(Batch& batch, double probability, std::int64_t max_length, std::int32_t mask_token_id,
                       std::uint64_t seed, std::int64_t step, std::int64_t micro);

// The four keys, as the trainer uses them.
class Augmentation {
 public:
  // Throws llmstudio::Error for combinations we cannot honour (parent augmentation with training.packing).
  Augmentation(const experiment::ExperimentConfig& cfg, const tokenizer::Tokenizer& tok, SampleBuilder build,
               std::vector<tokenizer::ConversationRow> train_rows, std::uint64_t seed);
  bool parents_active() const { return parents_.active(); }
  std::vector<tokenizer::PromptSample> epoch_samples(std::int64_t epoch) const { return parents_.epoch_samples(epoch); }
  // Token masking of micro-batch `micro` of optimizer step `step` (mask_batch_tokens).
  void mask_batch(Batch& batch, std::int64_t step, std::int64_t micro) const {
    mask_batch_tokens(batch, token_mask_p_, max_length_, mask_token_id_, seed_, step, micro);
  }
  double neftune_noise_alpha() const { return neftune_alpha_; }
  // One log line listing what is on ("" when nothing).
  std::string summary() const;

 private:
  double token_mask_p_, neftune_alpha_;
  std::int64_t max_length_;
  std::int32_t mask_token_id_;
  std::uint64_t seed_;
  ParentAugmenter parents_;
};

}  // namespace llmstudio::train
