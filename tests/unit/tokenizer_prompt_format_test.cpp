// Unit tests of H2O LLM Studio's causal-LM sample construction (prompt_format.h). Each expectation is derived
// by hand from H2O's implementation (llm_studio/src/datasets/text_causal_language_modeling_ds.py:
// parse_prompt/parse_answer/parse_system, _get_sample_encoding, get_encodings, get_labels, pad_tokens; and
// conversation_chain_handler.py), using a fake tokenizer: one id per character (its code point), except the
// eos text "</s>" which is the single id 2 (as a Hugging Face tokenizer maps special-token text).
#include <gtest/gtest.h>

#include "llmstudio/core/error.h"
#include "llmstudio/tokenizer/chat_template.h"
#include "llmstudio/tokenizer/prompt_format.h"

using namespace llmstudio::tokenizer;

namespace {

constexpr int32_t kEos = 2;
constexpr int32_t M = kIgnoreIndex;

std::vector<int32_t> fake_encode(std::string_view s) {
  std::vector<int32_t> out;
  for (std::size_t i = 0; i < s.size();) {
    if (s.compare(i, 4, "</s>") == 0) {
      out.push_back(kEos);
      i += 4;
    } else {
      out.push_back(static_cast<unsigned char>(s[i]));  // tests use ASCII text
      ++i;
    }
  }
  return out;
}

std::vector<int32_t> ids(std::string_view s) { return fake_encode(s); }
std::vector<int32_t> cat(std::initializer_list<std::vector<int32_t>> parts) {
  std::vector<int32_t> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}
std::vector<int32_t> masked(std::size_t n) { return std::vector<int32_t>(n, M); }

// Short markers keep the hand-written expectations readable.
PromptFormatConfig short_markers() {
  PromptFormatConfig c;
  c.text_system_start = "S:";
  c.text_prompt_start = "P:";
  c.text_answer_separator = "A:";
  return c;
}

PromptFormatter formatter(const PromptFormatConfig& c) { return PromptFormatter(c, fake_encode, "</s>"); }

ConversationRow row(std::string id, std::string parent, std::string prompt, std::string answer, std::string system = "") {
  ConversationRow r;
  r.id = std::move(id);
  if (!parent.empty()) r.parent_id = std::move(parent);
  r.prompt = std::move(prompt);
  r.answer = std::move(answer);
  r.system = std::move(system);
  return r;
}

}  // namespace

TEST(PromptFormat, DefaultsAreH2OsAndTextsFollowParsePrompt) {
  PromptFormatConfig c;  // H2O ConfigNLPCausalLMDataset defaults
  EXPECT_EQ(c.text_system_start, "<|system|>");
  EXPECT_EQ(c.text_prompt_start, "<|prompt|>");
  EXPECT_EQ(c.text_answer_separator, "<|answer|>");
  EXPECT_TRUE(c.add_eos_token_to_system && c.add_eos_token_to_prompt && c.add_eos_token_to_answer);
  EXPECT_TRUE(c.mask_prompt_labels);
  EXPECT_FALSE(c.limit_chained_samples || c.only_last_answer);
  auto f = formatter(c);
  // parse_prompt: prompt_start + prompt + eos + answer_separator; parse_answer: answer + eos.
  EXPECT_EQ(f.format_prompt("hi"), "<|prompt|>hi</s><|answer|>");
  EXPECT_EQ(f.format_answer("yo"), "yo</s>");
  // parse_system: empty system gets no tokens at all, otherwise system_start + system + eos.
  EXPECT_EQ(f.format_system(""), "");
  EXPECT_EQ(f.format_system("be nice"), "<|system|>be nice</s>");
  c.add_eos_token_to_prompt = c.add_eos_token_to_answer = c.add_eos_token_to_system = false;
  auto g = formatter(c);
  EXPECT_EQ(g.format_prompt("hi"), "<|prompt|>hi<|answer|>");
  EXPECT_EQ(g.format_answer("yo"), "yo");
  EXPECT_EQ(g.format_system("s"), "<|system|>s");
}

TEST(PromptFormat, MarkersAreDecodedLikePythonUnicodeEscape) {
  // codecs.decode(s, "unicode_escape"): escapes are decoded; literal non-ASCII turns into Latin-1 mojibake.
  EXPECT_EQ(decode_marker("<|prompt|>\\n"), "<|prompt|>\n");
  EXPECT_EQ(decode_marker("\\u00e9\\x41\\t"), "é" "A\t");
  EXPECT_EQ(decode_marker("é"), "Ã©");
  PromptFormatConfig c = short_markers();
  c.text_prompt_start = "### Q:\\n";
  c.text_answer_separator = "\\n### A:\\n";
  EXPECT_EQ(formatter(c).format_prompt("x"), "### Q:\nx</s>\n### A:\n");
  c.text_answer_separator = "\\x4";  // Python: "truncated \xXX escape"
  EXPECT_THROW(c.validate(), llmstudio::Error);
  c.text_answer_separator = "A:";
  c.max_length = 0;
  EXPECT_THROW(c.validate(), llmstudio::Error);
}

TEST(PromptFormat, SingleRoundMasksPromptLabels) {
  auto f = formatter(short_markers());
  ConversationRow r = row("1", "", "hi", "yo");
  PromptSample s = f.build({&r});
  auto prompt = ids("P:hi</s>A:");  // 7 tokens: P : h i </s> A :
  auto answer = ids("yo</s>");
  EXPECT_EQ(s.input_ids, cat({prompt, answer}));
  EXPECT_EQ(s.labels, cat({masked(prompt.size()), answer}));
  EXPECT_EQ(s.attention_mask, std::vector<int32_t>(s.input_ids.size(), 1));
  EXPECT_EQ(s.prompt_input_ids, prompt);
  EXPECT_EQ(s.answer_input_ids, answer);
}

TEST(PromptFormat, UnmaskedLabelsEqualInputIds) {
  PromptFormatConfig c = short_markers();
  c.mask_prompt_labels = false;
  ConversationRow r = row("1", "", "hi", "yo", "sys");
  PromptSample s = formatter(c).build({&r});
  EXPECT_EQ(s.labels, s.input_ids);
}

TEST(PromptFormat, OnlyTheFirstRoundsSystemIsUsedAndItIsMasked) {
  // get_encodings keeps encodings[0][0] (the root's system) and prepends it to the first prompt.
  auto f = formatter(short_markers());
  ConversationRow a = row("a", "", "q1", "r1", "SYS"), b = row("b", "a", "q2", "r2", "OTHER");
  PromptSample s = f.build({&a, &b});
  auto p1 = ids("S:SYS</s>P:q1</s>A:"), a1 = ids("r1</s>"), p2 = ids("P:q2</s>A:"), a2 = ids("r2</s>");
  EXPECT_EQ(s.input_ids, cat({p1, a1, p2, a2}));
  // Every answer is trained on unless only_last_answer.
  EXPECT_EQ(s.labels, cat({masked(p1.size()), a1, masked(p2.size()), a2}));
  EXPECT_EQ(s.prompt_input_ids, cat({p1, a1, p2}));
  EXPECT_EQ(s.answer_input_ids, a2);
}

TEST(PromptFormat, OnlyLastAnswerMasksEarlierAnswers) {
  PromptFormatConfig c = short_markers();
  c.only_last_answer = true;
  ConversationRow a = row("a", "", "q1", "r1"), b = row("b", "a", "q2", "r2");
  PromptSample s = formatter(c).build({&a, &b});
  auto p1 = ids("P:q1</s>A:"), a1 = ids("r1</s>"), p2 = ids("P:q2</s>A:"), a2 = ids("r2</s>");
  EXPECT_EQ(s.labels, cat({masked(p1.size() + a1.size() + p2.size()), a2}));
  // H2O applies only_last_answer inside the mask_prompt_labels branch: without masking it changes nothing.
  c.mask_prompt_labels = false;
  PromptSample u = formatter(c).build({&a, &b});
  EXPECT_EQ(u.labels, u.input_ids);
}

TEST(PromptFormat, TruncationKeepsTheEndOfTheChainAndCutsEachPart) {
  PromptFormatConfig c = short_markers();
  c.add_eos_token_to_prompt = false;
  c.max_length = 6;
  // Each part is cut to max_length first: the prompt "P:abcdefA:" (10) keeps its last 6 "defA:" -> "cdefA:",
  // the answer "0123456789</s>" (11 tokens) keeps its first 6 "012345".
  ConversationRow r = row("1", "", "abcdef", "0123456789");
  PromptSample s = formatter(c).build({&r});
  auto prompt = ids("cdefA:"), answer = ids("012345");
  EXPECT_EQ(s.prompt_input_ids, prompt);
  EXPECT_EQ(s.answer_input_ids, answer);
  // Then the concatenation (12 tokens) keeps its last 6, labels likewise (the prompt part is gone entirely).
  EXPECT_EQ(s.input_ids, answer);
  EXPECT_EQ(s.labels, answer);
  EXPECT_EQ(s.attention_mask, std::vector<int32_t>(6, 1));

  c.max_length = 8;
  ConversationRow r2 = row("1", "", "ab", "xyz");  // prompt "P:abA:" (6) + answer "xyz</s>" (4) = 10 > 8
  PromptSample t = formatter(c).build({&r2});
  EXPECT_EQ(t.input_ids, cat({ids("abA:"), ids("xyz</s>")}));
  EXPECT_EQ(t.labels, cat({masked(4), ids("xyz</s>")}));
}

TEST(PromptFormat, PadSampleFollowsH2OsPadTokens) {
  auto f = formatter(short_markers());
  ConversationRow r = row("1", "", "hi", "yo");
  PromptSample p = pad_sample(f.build({&r}), 12, 0);  // 7 prompt + 3 answer = 10 tokens
  EXPECT_EQ(p.input_ids, cat({{0, 0}, ids("P:hi</s>A:"), ids("yo</s>")}));
  EXPECT_EQ(p.attention_mask, cat({{0, 0}, std::vector<int32_t>(10, 1)}));
  EXPECT_EQ(p.labels, cat({masked(2 + 7), ids("yo</s>")}));
  EXPECT_EQ(p.prompt_input_ids, cat({std::vector<int32_t>(5, 0), ids("P:hi</s>A:")}));
  EXPECT_EQ(p.answer_input_ids, cat({ids("yo</s>"), std::vector<int32_t>(9, 0)}));  // answers pad on the right
}

TEST(ConversationChains, FollowParentIdsLikeConversationChainHandler) {
  std::vector<ConversationRow> rows = {row("a", "", "1", ""), row("b", "a", "2", ""), row("c", "b", "3", ""),
                                       row("d", "", "4", ""), row("e", "zz", "5", "")};
  ChainStats stats;
  // limit_chained_samples=False: every row ends a sample holding its ancestors.
  auto all = build_conversation_chains(rows, false, &stats);
  std::vector<std::vector<std::size_t>> want_all = {{0}, {0, 1}, {0, 1, 2}, {3}, {4}};
  EXPECT_EQ(all, want_all);
  EXPECT_EQ(stats.dangling_parent_ids, 1u);  // "zz" names no row: e starts its own conversation
  // limit_chained_samples=True: only rows that are nobody's parent end a sample (complete conversations).
  auto ends = build_conversation_chains(rows, true);
  std::vector<std::vector<std::size_t>> want_ends = {{0, 1, 2}, {3}, {4}};
  EXPECT_EQ(ends, want_ends);
  // A branching conversation yields one complete chain per leaf.
  std::vector<ConversationRow> branch = {row("r", "", "q", "a"), row("x", "r", "q", "a"), row("y", "r", "q", "a")};
  std::vector<std::vector<std::size_t>> want_branch = {{0, 1}, {0, 2}};
  EXPECT_EQ(build_conversation_chains(branch, true), want_branch);
  // Without ids/parents each row is its own sample.
  std::vector<ConversationRow> flat(2);
  std::vector<std::vector<std::size_t>> want_flat = {{0}, {1}};
  EXPECT_EQ(build_conversation_chains(flat, true), want_flat);
}

TEST(ConversationChains, BrokenChainsAreErrors) {
  std::vector<ConversationRow> cycle = {row("a", "c", "", ""), row("b", "a", "", ""), row("c", "b", "", ""),
                                        row("d", "", "", "")};
  try {
    build_conversation_chains(cycle, true);  // H2O's sanity check rejects it even when no sample would use it
    ADD_FAILURE() << "expected an error";
  } catch (const llmstudio::Error& e) {
    EXPECT_NE(std::string(e.what()).find("circular parent_id chain"), std::string::npos) << e.what();
  }
  std::vector<ConversationRow> dup = {row("a", "", "", ""), row("a", "", "", "")};
  EXPECT_THROW(build_conversation_chains(dup, false), llmstudio::Error);
  std::vector<ConversationRow> self = {row("a", "a", "", "")};
  EXPECT_THROW(build_conversation_chains(self, false), llmstudio::Error);
}

TEST(PromptFormat, BuildAllMakesOneSamplePerChain) {
  PromptFormatConfig c = short_markers();
  c.limit_chained_samples = true;
  std::vector<ConversationRow> rows = {row("a", "", "q1", "r1"), row("b", "a", "q2", "r2"), row("c", "", "q3", "r3")};
  auto samples = formatter(c).build_all(rows);
  ASSERT_EQ(samples.size(), 2u);
  EXPECT_EQ(samples[0].input_ids, cat({ids("P:q1</s>A:"), ids("r1</s>"), ids("P:q2</s>A:"), ids("r2</s>")}));
  EXPECT_EQ(samples[1].input_ids, cat({ids("P:q3</s>A:"), ids("r3</s>")}));
}

TEST(PromptFormat, ChatTemplateLayoutSplitsAtTheAssistantTurns) {
  ChatTemplate tmpl("{% for m in messages %}<{{ m.role }}>{{ m.content }}</s>{% endfor %}"
                    "{% if add_generation_prompt %}<assistant>{% endif %}");
  PromptFormatConfig c;
  c.use_chat_template = true;
  PromptFormatter f(c, fake_encode, "</s>", &tmpl);
  ConversationRow a = row("a", "", "q1", "r1", "S"), b = row("b", "a", "q2", "r2");
  PromptSample s = f.build({&a, &b});
  // Round 1 prompt = render([system, user], generation prompt); answer = what the assistant message adds.
  auto p1 = ids("<system>S</s><user>q1</s><assistant>"), a1 = ids("r1</s>");
  auto p2 = ids("<user>q2</s><assistant>"), a2 = ids("r2</s>");
  EXPECT_EQ(s.input_ids, cat({p1, a1, p2, a2}));
  EXPECT_EQ(s.labels, cat({masked(p1.size()), a1, masked(p2.size()), a2}));
  EXPECT_THROW(PromptFormatter(c, fake_encode, "</s>"), llmstudio::Error);  // no template given
}
