// BLEU (llmstudio/train/bleu.h). Expected values were computed with sacrebleu 2.6.0 and checked by hand
// (n-gram counts, brevity penalty, geometric mean); tests/parity/test_bleu_parity.py compares many more.
#include <gtest/gtest.h>

#include <cmath>

#include "llmstudio/core/error.h"
#include "llmstudio/train/bleu.h"

using namespace llmstudio;
using namespace llmstudio::train;

TEST(Bleu, Tokenize13aLikeMteval) {
  EXPECT_EQ(tokenize_13a("Hello, world!"), "Hello , world !");
  // Period and comma stay inside numbers; dash splits after a digit only; apostrophes stay.
  EXPECT_EQ(tokenize_13a("It costs $3.50, or 3,000 yen."), "It costs $ 3.50 , or 3,000 yen .");
  EXPECT_EQ(tokenize_13a("a-b 1-2 x.y"), "a-b 1 - 2 x . y");
  EXPECT_EQ(tokenize_13a("don't stop"), "don't stop");
  EXPECT_EQ(tokenize_13a("wait..."), "wait . . .");
  // HTML entities, <skipped>, hyphenated line breaks.
  EXPECT_EQ(tokenize_13a("&quot;hi&quot; &amp; <skipped>bye"), "\" hi \" & bye");
  EXPECT_EQ(tokenize_13a("line-\nbreak\nnext"), "linebreak next");
  // Multi-byte characters before a period; U+3000 (ideographic space) separates words as in Python.
  EXPECT_EQ(tokenize_13a("na\xC3\xAFve caf\xC3\xA9."), "na\xC3\xAFve caf\xC3\xA9 .");
  EXPECT_EQ(tokenize_13a("a\xE3\x80\x80" "b"), "a b");
}

TEST(Bleu, CorpusScoreAndStatistics) {
  auto s = corpus_bleu({"the cat sat on a mat", "hello there"}, {{"the cat sat on the mat", "hello there friend"}});
  EXPECT_EQ(s.stats.sys_len, 8);
  EXPECT_EQ(s.stats.ref_len, 9);
  EXPECT_EQ(s.stats.correct, (std::array<std::int64_t, 4>{7, 4, 2, 1}));
  EXPECT_EQ(s.stats.total, (std::array<std::int64_t, 4>{8, 6, 4, 3}));
  EXPECT_NEAR(s.bp, std::exp(1.0 - 9.0 / 8.0), 1e-15);
  EXPECT_NEAR(s.score, 49.27817047811719, 1e-12);
  EXPECT_NEAR(corpus_bleu({"the cat sat on the mat"}, {{"the cat sat on the mat"}}).score, 100.0, 1e-12);
}

TEST(Bleu, EmptyAndNoMatches) {
  EXPECT_EQ(corpus_bleu({"", "x"}, {{"a b", "y"}}).score, 0.0);
  EXPECT_EQ(corpus_bleu({}, {{}}).score, 0.0);
  EXPECT_EQ(corpus_bleu({""}, {{""}}).score, 0.0);
}

TEST(Bleu, SentenceWithEffectiveOrder) {
  // 3-token hypothesis, all 1..3-grams match, 6-token reference: 100 * exp(1 - 6/3).
  EXPECT_NEAR(sentence_bleu("the cat sat", {"the cat sat on the mat"}).score, 100.0 * std::exp(-1.0), 1e-12);
  // Without effective order the missing 4-grams floor the score to 0.
  EXPECT_EQ(sentence_bleu("the cat sat", {"the cat sat on the mat"}, false).score, 0.0);
}

TEST(Bleu, MismatchedStreamsAreAnError) {
  EXPECT_THROW(corpus_bleu({"a", "b"}, {{"a"}}), Error);
  EXPECT_THROW(corpus_bleu({"a"}, {}), Error);
}

TEST(Bleu, StripLikePython) {
  EXPECT_EQ(strip_whitespace(" \t\xC2\xA0" "ab c\n\xE3\x80\x80"), "ab c");
  EXPECT_EQ(strip_whitespace("   "), "");
  EXPECT_EQ(strip_whitespace(""), "");
}
