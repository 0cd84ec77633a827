// sacrebleu-equal BLEU (see bleu.h). Each step names the sacrebleu 2.x code it mirrors.
#include "llmstudio/train/bleu.h"

#include <cmath>
#include <unordered_map>

#include "llmstudio/core/error.h"
#include "llmstudio/tokenizer/unicode.h"

namespace llmstudio::train {
namespace {

namespace uni = tokenizer::unicode;

using uni::is_python_space;

// Valid UTF-8 (ill-formed input repaired as Python's errors="replace").
std::string valid_utf8(std::string_view s) { return uni::is_valid_utf8(s) ? std::string(s) : uni::repair_utf8(s); }

// Python's str.split() with no arguments (s valid UTF-8).
std::vector<std::string_view> split_words(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t i = 0, start = std::string_view::npos;
  while (i < s.size()) {
    const std::size_t at = i;
    const char32_t c = uni::next_code_point(s, i);
    if (is_python_space(c)) {
      if (start != std::string_view::npos) out.push_back(s.substr(start, at - start));
      start = std::string_view::npos;
    } else if (start == std::string_view::npos) {
      start = at;
    }
  }
  if (start != std::string_view::npos) out.push_back(s.substr(start));
  return out;
}

// End of s after Python's str.rstrip() (s valid UTF-8).
std::size_t rstrip_end(std::string_view s) {
  std::size_t i = 0, end = 0;
  while (i < s.size()) {
    const char32_t c = uni::next_code_point(s, i);
    if (!is_python_space(c)) end = i;
  }
  return end;
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  if (s.find(from) == std::string::npos) return;
  std::string out;
  std::size_t pos = 0;
  for (std::size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
    out.append(s, pos, hit - pos);
    out.append(to);
  }
  out.append(s, pos, std::string::npos);
  s = std::move(out);
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// TokenizerRegexp's first rule: [\{-\~\[-\` -\&\(-\+\:-\@\/] (ASCII punctuation and symbols except ' , - .,
// plus space) is surrounded by spaces.
bool is_split_symbol(char c) {
  return (c >= '{' && c <= '~') || (c >= '[' && c <= '`') || (c >= ' ' && c <= '&') || (c >= '(' && c <= '+') ||
         (c >= ':' && c <= '@') || c == '/';
}

// The 13a tokenisation (Tokenizer13a.__call__ then TokenizerRegexp.__call__) of valid UTF-8, as a token list
// whose views point into `buffer`.
// The regexes of TokenizerRegexp match one character on each side of '.', ',' or '-' and only test ASCII
// classes, so scanning bytes finds the same non-overlapping left-to-right matches as Python's re.sub on code
// points: a multi-byte character's lead and continuation bytes never take part in a match, and its last byte
// stands for the character where it precedes a match.
std::vector<std::string_view> tokens_13a(std::string_view input, std::string& buffer) {
  std::string line(input);
  replace_all(line, "<skipped>", "");
  replace_all(line, "-\n", "");
  replace_all(line, "\n", " ");
  if (line.find('&') != std::string::npos) {
    replace_all(line, "&quot;", "\"");
    replace_all(line, "&amp;", "&");
    replace_all(line, "&lt;", "<");
    replace_all(line, "&gt;", ">");
  }
  line = " " + line + " ";
  // r'([\{-\~\[-\` -\&\(-\+\:-\@\/])' -> r' \1 '
  std::string a;
  a.reserve(line.size() * 2);
  for (char c : line) {
    if (is_split_symbol(c)) {
      a += ' ';
      a += c;
      a += ' ';
    } else {
      a += c;
    }
  }
  // r'([^0-9])([\.,])' -> r'\1 \2 '
  std::string b;
  b.reserve(a.size() * 2);
  for (std::size_t i = 0; i < a.size();) {
    if (i + 1 < a.size() && !is_digit(a[i]) && (a[i + 1] == '.' || a[i + 1] == ',')) {
      b += a[i];
      b += ' ';
      b += a[i + 1];
      b += ' ';
      i += 2;
    } else {
      b += a[i++];
    }
  }
  // r'([\.,])([^0-9])' -> r' \1 \2'
  std::string c;
  c.reserve(b.size() * 2);
  for (std::size_t i = 0; i < b.size();) {
    if (i + 1 < b.size() && (b[i] == '.' || b[i] == ',') && !is_digit(b[i + 1])) {
      c += ' ';
      c += b[i];
      c += ' ';
      c += b[i + 1];
      i += 2;
    } else {
      c += b[i++];
    }
  }
  // r'([0-9])(-)' -> r'\1 \2 '
  buffer.clear();
  buffer.reserve(c.size() * 2);
  for (std::size_t i = 0; i < c.size();) {
    if (i + 1 < c.size() && is_digit(c[i]) && c[i + 1] == '-') {
      buffer += c[i];
      buffer += ' ';
      buffer += '-';
      buffer += ' ';
      i += 2;
    } else {
      buffer += c[i++];
    }
  }
  return split_words(buffer);
}

// BLEU._preprocess_segment (lowercase off): rstrip, then 13a.
std::vector<std::string_view> preprocess(const std::string& valid, std::string& buffer) {
  return tokens_13a(std::string_view(valid).substr(0, rstrip_end(valid)), buffer);
}

// extract_all_word_ngrams(line, 1, 4): n-gram -> count. Tokens hold no whitespace, so the n-gram's tokens
// joined by ' ' identify it (and its order) uniquely.
std::unordered_map<std::string, std::int64_t> ngram_counts(const std::vector<std::string_view>& tokens) {
  std::unordered_map<std::string, std::int64_t> counts;
  for (int n = 1; n <= kBleuMaxOrder; ++n) {
    for (std::size_t i = 0; i + static_cast<std::size_t>(n) <= tokens.size(); ++i) {
      std::string key(tokens[i]);
      for (int k = 1; k < n; ++k) {
        key += ' ';
        key += tokens[i + static_cast<std::size_t>(k)];
      }
      ++counts[key];
    }
  }
  return counts;
}

int order_of(const std::string& ngram) {
  int n = 1;
  for (char ch : ngram) n += ch == ' ';
  return n;
}

// Python's math.log with sacrebleu's floor for 0 (utils.my_log).
double my_log(double x) { return x == 0.0 ? -9999999999.0 : std::log(x); }

}  // namespace

BleuStats& BleuStats::operator+=(const BleuStats& o) {
  sys_len += o.sys_len;
  ref_len += o.ref_len;
  for (int n = 0; n < kBleuMaxOrder; ++n) {
    correct[n] += o.correct[n];
    total[n] += o.total[n];
  }
  return *this;
}

std::string tokenize_13a(std::string_view line) {
  std::string buffer, out;
  for (auto t : tokens_13a(valid_utf8(line), buffer)) {
    if (!out.empty()) out += ' ';
    out += t;
  }
  return out;
}

std::string_view strip_whitespace(std::string_view s) { return uni::python_strip(s); }

BleuStats bleu_segment_stats(std::string_view hypothesis, const std::vector<std::string_view>& references) {
  LLMS_CHECK(!references.empty(), "BLEU: a hypothesis needs at least one reference");
  // BLEU._extract_reference_info: per-reference lengths, n-gram counts maxed over the references.
  std::unordered_map<std::string, std::int64_t> ref_ngrams;
  std::vector<std::int64_t> ref_lens;
  std::string buffer;
  for (auto ref : references) {
    const auto tokens = preprocess(valid_utf8(ref), buffer);
    ref_lens.push_back(static_cast<std::int64_t>(tokens.size()));
    for (auto& [g, c] : ngram_counts(tokens)) {
      auto& m = ref_ngrams[g];
      if (c > m) m = c;
    }
  }
  // BLEU._compute_segment_statistics.
  const auto hyp_tokens = preprocess(valid_utf8(hypothesis), buffer);
  BleuStats s;
  s.sys_len = static_cast<std::int64_t>(hyp_tokens.size());
  // _get_closest_ref_len: the reference length closest to the hypothesis length, the shorter on ties.
  std::int64_t best_diff = -1;
  for (std::int64_t len : ref_lens) {
    const std::int64_t diff = std::abs(s.sys_len - len);
    if (best_diff == -1 || diff < best_diff) {
      best_diff = diff;
      s.ref_len = len;
    } else if (diff == best_diff && len < s.ref_len) {
      s.ref_len = len;
    }
  }
  for (const auto& [g, c] : ngram_counts(hyp_tokens)) {
    const int n = order_of(g) - 1;
    s.total[n] += c;
    if (auto it = ref_ngrams.find(g); it != ref_ngrams.end()) s.correct[n] += std::min(c, it->second);
  }
  return s;
}

BleuScore bleu_from_stats(const BleuStats& stats, bool effective_order) {
  // BLEU.compute_bleu with smooth_method='exp', the arithmetic in sacrebleu's order.
  BleuScore r;
  r.stats = stats;
  if (stats.sys_len < stats.ref_len)
    r.bp = stats.sys_len > 0 ? std::exp(1.0 - static_cast<double>(stats.ref_len) / static_cast<double>(stats.sys_len)) : 0.0;
  bool any_correct = false;
  for (auto c : stats.correct) any_correct = any_correct || c != 0;
  if (!any_correct) return r;  // score 0
  double smooth_mteval = 1.0;
  int eff_order = kBleuMaxOrder;
  for (int n = 1; n <= kBleuMaxOrder; ++n) {
    const auto correct = static_cast<double>(stats.correct[n - 1]), total = static_cast<double>(stats.total[n - 1]);
    if (stats.total[n - 1] == 0) break;
    if (effective_order) eff_order = n;
    if (stats.correct[n - 1] == 0) {
      smooth_mteval *= 2;
      r.precisions[n - 1] = 100.0 / (smooth_mteval * total);
    } else {
      r.precisions[n - 1] = 100.0 * correct / total;
    }
  }
  double sum = 0.0;
  for (int n = 0; n < eff_order; ++n) sum += my_log(r.precisions[n]);
  r.score = r.bp * std::exp(sum / eff_order);
  return r;
}

BleuScore corpus_bleu(const std::vector<std::string>& hypotheses, const std::vector<std::vector<std::string>>& references) {
  LLMS_CHECK(!references.empty(), "BLEU: no reference stream given (expected at least one, with ", hypotheses.size(),
             " segments)");
  for (std::size_t k = 0; k < references.size(); ++k)
    LLMS_CHECK(references[k].size() == hypotheses.size(), "BLEU: reference stream ", k + 1, " has ",
               references[k].size(), " segments but there are ", hypotheses.size(), " hypotheses; they must match");
  BleuStats total;
  std::vector<std::string_view> refs(references.size());
  for (std::size_t i = 0; i < hypotheses.size(); ++i) {
    for (std::size_t k = 0; k < references.size(); ++k) refs[k] = references[k][i];
    total += bleu_segment_stats(hypotheses[i], refs);
  }
  return bleu_from_stats(total, false);
}

BleuScore sentence_bleu(std::string_view hypothesis, const std::vector<std::string>& references, bool effective_order) {
  std::vector<std::string_view> refs(references.begin(), references.end());
  return bleu_from_stats(bleu_segment_stats(hypothesis, refs), effective_order);
}

}  // namespace llmstudio::train
