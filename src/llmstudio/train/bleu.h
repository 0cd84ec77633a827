// Corpus and sentence BLEU equal to sacrebleu's (2.x) BLEU metric with its defaults: the '13a' tokenizer
// (mteval-v13a as used by WMT), 'exp' smoothing (mteval's NIST smoothing), n-grams up to 4, case-sensitive,
// no effective order for corpus BLEU (sentence BLEU takes effective_order, true as sacrebleu recommends).
// Scores are on sacrebleu's 0-100 scale and match sacrebleu.corpus_bleu(hyps, [refs]).score to rounding
// (tests/parity/test_bleu_parity.py). Torch-free: part of llmstudio_core.
//
// Text is UTF-8; ill-formed sequences are first replaced by U+FFFD (as Python's decode(errors="replace")).
// Whitespace (line splitting, rstrip) is Python's str.isspace set, as in sacrebleu.
// Deliberate differences: an empty corpus scores 0 (sacrebleu raises), and every reference stream must have
// as many segments as there are hypotheses (sacrebleu silently truncates to the shortest).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace llmstudio::train {

inline constexpr int kBleuMaxOrder = 4;

// Sufficient statistics of one segment or of a corpus (sums over segments).
struct BleuStats {
  std::int64_t sys_len = 0;  // hypothesis tokens
  std::int64_t ref_len = 0;  // closest reference length (ties: the shorter)
  std::array<std::int64_t, kBleuMaxOrder> correct{};  // clipped matching n-grams, n = 1..4
  std::array<std::int64_t, kBleuMaxOrder> total{};    // hypothesis n-grams, n = 1..4

  BleuStats& operator+=(const BleuStats& o);
};

struct BleuScore {
  double score = 0;  // 0..100
  std::array<double, kBleuMaxOrder> precisions{};  // 0..100, smoothed
  double bp = 1;     // brevity penalty
  BleuStats stats;
};

// sacrebleu's Tokenizer13a: the tokenised line, tokens separated by single spaces.
std::string tokenize_13a(std::string_view line);

// Statistics of one hypothesis against its references (at least one).
BleuStats bleu_segment_stats(std::string_view hypothesis, const std::vector<std::string_view>& references);

// BLEU from (summed) statistics with 'exp' smoothing (sacrebleu BLEU.compute_bleu).
BleuScore bleu_from_stats(const BleuStats& stats, bool effective_order = false);

// sacrebleu.corpus_bleu(hypotheses, references): `references` holds one or more reference streams, each with
// one segment per hypothesis. Throws llmstudio::Error when a stream's length differs from the hypotheses'.
BleuScore corpus_bleu(const std::vector<std::string>& hypotheses, const std::vector<std::vector<std::string>>& references);

// sacrebleu BLEU(effective_order=...).sentence_score(hypothesis, references).
BleuScore sentence_bleu(std::string_view hypothesis, const std::vector<std::string>& references, bool effective_order = true);

// Python's str.strip() (the str.isspace set), on UTF-8 text.
std::string_view strip_whitespace(std::string_view s);

}  // namespace llmstudio::train
