// Token masking on a packed batch (train/augmentation.h; the 2-d path and the parent/NEFTune formulas are checked
// against Python re-implementations of H2O's code in tests/parity/test_augmentation_parity.py): masked ids and
// labels replaced, masked keys removed from the block-diagonal mask, a query left without keys keeps its own;
// the seeded mask is a pure function of (seed, step, micro-batch).
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "llmstudio/train/augmentation.h"
#include "llmstudio/train/packing.h"

using namespace llmstudio;
using namespace llmstudio::train;

namespace {

tokenizer::PromptSample sample(std::vector<std::int32_t> ids) {
  tokenizer::PromptSample s;
  s.input_ids = ids;
  s.labels = ids;
  s.attention_mask.assign(ids.size(), 1);
  return s;
}

}  // namespace

TEST(TokenMasking, PackedBatchLosesMaskedKeysAndKeepsOwnKey) {
  const std::vector<tokenizer::PromptSample> samples = {sample({11, 12, 13}), sample({21, 22, 23, 24})};
  Batch b = collate_packed(samples, {{0, 1}}, {0}, 8, /*pad=*/0);
  const std::int64_t L = b.input_ids.size(1);
  ASSERT_EQ(L, 7);
  const at::Tensor before = b.attention_mask.clone();
  const at::Tensor labels_before = b.labels.clone();
  // Mask the first token of the second sample (position 3) and the token after it (position 4): query 3 then has
  // no key left in its segment and keeps its own (so does 4); 3 and 4 are hidden from every other query.
  at::Tensor m = at::zeros({1, 10}, at::kBool);  // wider than the batch: the last L columns apply
  m.index_put_({0, 10 - L + 3}, true);
  m.index_put_({0, 10 - L + 4}, true);
  mask_tokens(b, m, /*mask_token_id=*/99);
  EXPECT_EQ(b.input_ids[0][3].item<std::int64_t>(), 99);
  EXPECT_EQ(b.input_ids[0][4].item<std::int64_t>(), 99);
  EXPECT_EQ(b.input_ids[0][5].item<std::int64_t>(), 23);
  EXPECT_EQ(b.labels[0][3].item<std::int64_t>(), -100);
  EXPECT_EQ(b.labels[0][4].item<std::int64_t>(), -100);
  EXPECT_TRUE(b.labels[0][5].equal(labels_before[0][5]));
  const at::Tensor a = b.attention_mask[0][0];
  for (std::int64_t q = 0; q < L; ++q)
    for (std::int64_t k = 0; k < L; ++k) {
      bool expect = before[0][0][q][k].item<bool>() && k != 3 && k != 4;
      if (q == 3 && k == 3) expect = true;  // query 3 had only key 3 (itself) and keeps it
      if (q == 4 && k == 4) expect = true;  // query 4 had keys 3, 4: both masked
      EXPECT_EQ(a[q][k].item<bool>(), expect) << "query " << q << " key " << k;
    }
}

TEST(TokenMasking, SeededDrawIsAPureFunctionOfSeedStepMicro) {
  auto draw = [](std::uint64_t seed, std::int64_t step, std::int64_t micro) {
    return draw_token_mask(4, 32, 0.3, augmentation_seed(seed, AugmentStream::TokenMask, step, micro));
  };
  EXPECT_TRUE(draw(5, 7, 0).equal(draw(5, 7, 0)));
  EXPECT_FALSE(draw(5, 7, 0).equal(draw(5, 8, 0)));
  EXPECT_FALSE(draw(5, 7, 0).equal(draw(5, 7, 1)));
  EXPECT_FALSE(draw(5, 7, 0).equal(draw(6, 7, 0)));
  const double frac = draw(1, 2, 3).to(at::kFloat).mean().item<double>();
  EXPECT_GT(frac, 0.15);
  EXPECT_LT(frac, 0.45);
}
