// End-to-end tests of llmstudio::tokenizer::Tokenizer: tiny in-memory tokenizer.json files (BPE merges, byte
// fallback, unk fusing, added tokens with lstrip/rstrip/single_word), error messages, the shared real
// tokenizers (skipped when ../shared/fixtures is absent) and concurrent encode().
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "llmstudio/core/error.h"
#include "llmstudio/tokenizer/tokenizer.h"
#include "shared_fixtures.h"

using llmstudio::tokenizer::Tokenizer;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

using Ids = std::vector<int32_t>;

// Characters a b c, space, merges a+b -> ab, ab+c -> abc; <unk>; byte tokens for "é" (C3 A9).
json tiny_bpe() {
  return json{{"version", "1.0"},
              {"added_tokens", json::array()},
              {"normalizer", nullptr},
              {"pre_tokenizer", nullptr},
              {"post_processor", nullptr},
              {"decoder", nullptr},
              {"model",
               {{"type", "BPE"},
                {"unk_token", "<unk>"},
                {"fuse_unk", false},
                {"byte_fallback", false},
                {"vocab", {{"<unk>", 0}, {"a", 1}, {"b", 2}, {"c", 3}, {" ", 4}, {"ab", 5}, {"abc", 6}, {"<0xC3>", 7}, {"<0xA9>", 8}}},
                {"merges", {"a b", json::array({"ab", "c"})}}}}};
}

Tokenizer load(const json& j) { return Tokenizer::from_json(j.dump(), {}, "tiny.json"); }

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const llmstudio::Error& e) {
    return e.what();
  }
  return "<no error>";
}

fs::path temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("llms_tok_" + name + "_" + std::to_string(::getpid()));
  fs::create_directories(p);
  return p;
}

}  // namespace

TEST(Tokenizer, MergesBothFormats) {
  auto tok = load(tiny_bpe());
  EXPECT_EQ(tok.encode("abc"), (Ids{6}));
  EXPECT_EQ(tok.encode("abab c"), (Ids{5, 5, 4, 3}));
  EXPECT_EQ(tok.vocab_size(), 9u);
  EXPECT_EQ(tok.token_to_id("abc"), 6);
  EXPECT_EQ(tok.id_to_token(5), "ab");
  EXPECT_FALSE(tok.id_to_token(99).has_value());
  EXPECT_TRUE(tok.encode("").empty());
}

TEST(Tokenizer, UnknownAndFuseUnk) {
  json j = tiny_bpe();
  EXPECT_EQ(load(j).encode("axyb"), (Ids{1, 0, 0, 2}));
  j["model"]["fuse_unk"] = true;
  EXPECT_EQ(load(j).encode("axyb"), (Ids{1, 0, 2}));
}

TEST(Tokenizer, ByteFallback) {
  json j = tiny_bpe();
  j["model"]["byte_fallback"] = true;
  j["decoder"] = {{"type", "Sequence"}, {"decoders", {json{{"type", "ByteFallback"}}, json{{"type", "Fuse"}}}}};
  auto tok = load(j);
  // "é" is not in the vocab but its bytes are; "日" has no byte tokens -> <unk>.
  EXPECT_EQ(tok.encode("aé日"), (Ids{1, 7, 8, 0}));
  EXPECT_EQ(tok.decode(Ids{1, 7, 8}), "aé");
  EXPECT_EQ(tok.decode(Ids{1, 7}), "a\uFFFD");
}

TEST(Tokenizer, AddedTokensStripAndSingleWord) {
  json j = tiny_bpe();
  j["added_tokens"] = json::array(
      {json{{"id", 10}, {"content", "<m>"}, {"lstrip", true}, {"rstrip", false}, {"single_word", false},
            {"normalized", false}, {"special", true}},
       json{{"id", 11}, {"content", "<r>"}, {"lstrip", false}, {"rstrip", true}, {"single_word", false},
            {"normalized", false}, {"special", false}},
       json{{"id", 12}, {"content", "cab"}, {"lstrip", false}, {"rstrip", false}, {"single_word", true},
            {"normalized", true}, {"special", false}}});
  auto tok = load(j);
  EXPECT_EQ(tok.encode("a  <m> b"), (Ids{1, 10, 4, 2}));   // lstrip eats the spaces before
  EXPECT_EQ(tok.encode("a <r>  b"), (Ids{1, 4, 11, 2}));   // rstrip eats the spaces after
  EXPECT_EQ(tok.encode("a cab b"), (Ids{1, 4, 12, 4, 2}));  // a whole word
  EXPECT_EQ(tok.encode("acab"), (Ids{1, 3, 5}));           // inside a word: not matched
  EXPECT_TRUE(tok.is_special(10));
  EXPECT_FALSE(tok.is_special(11));
  EXPECT_EQ(tok.vocab_size(), 12u);
  EXPECT_EQ(tok.decode(Ids{1, 10, 2}), "a <m> b");  // no decoder: tokens joined by spaces
  EXPECT_EQ(tok.decode(Ids{1, 10, 2}, true), "a b");
}

TEST(Tokenizer, NormalizedAddedTokenMatchesAfterNormalizer) {
  // Reference (tokenizers 0.23): encode("a CAB cab") == [0, 3, 7, 3, 7]; id_to_token(7) == "cab" (normalized
  // content); token_to_id("CaB") == 7 and token_to_id("cab") is None.
  json j = tiny_bpe();
  j["normalizer"] = {{"type", "Lowercase"}};
  j["added_tokens"] = json::array({json{{"id", 9}, {"content", "CaB"}, {"normalized", true}, {"special", false}}});
  auto tok = load(j);
  EXPECT_EQ(tok.encode("a CAB cab"), (Ids{1, 4, 9, 4, 9}));
  EXPECT_EQ(tok.id_to_token(9), "cab");
  EXPECT_EQ(tok.decode(Ids{9}), "cab");
  EXPECT_EQ(tok.token_to_id("CaB"), 9);
  EXPECT_FALSE(tok.token_to_id("cab").has_value());
}

TEST(Tokenizer, TemplatePostProcessor) {
  json j = tiny_bpe();
  j["added_tokens"] = json::array({json{{"id", 9}, {"content", "<s>"}, {"special", true}, {"normalized", false}}});
  j["post_processor"] = {{"type", "TemplateProcessing"},
                         {"single", {json{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                                     json{{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
                         {"pair", json::array()},
                         {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {9}}, {"tokens", {"<s>"}}}}}}};
  auto tok = load(j);
  EXPECT_EQ(tok.encode("ab"), (Ids{9, 5}));
  EXPECT_EQ(tok.encode("ab", false), (Ids{5}));
  EXPECT_EQ(tok.encode(""), (Ids{9}));
}

TEST(Tokenizer, InvalidUtf8BecomesReplacementChar) {
  json j = tiny_bpe();
  j["model"]["vocab"]["\xEF\xBF\xBD"] = 20;
  auto tok = load(j);
  EXPECT_EQ(tok.encode("a\xff" "b"), (Ids{1, 20, 2}));
}

TEST(Tokenizer, UnsupportedComponentsNameTypeAndFile) {
  json j = tiny_bpe();
  j["model"] = {{"type", "Unigram"}, {"unk_id", 0}, {"vocab", json::array()}};
  std::string msg = error_of([&] { load(j); });
  EXPECT_NE(msg.find("Unigram"), std::string::npos) << msg;
  EXPECT_NE(msg.find("tiny.json"), std::string::npos) << msg;

  j = tiny_bpe();
  j["normalizer"] = {{"type", "Frobnicate"}};
  msg = error_of([&] { load(j); });
  EXPECT_NE(msg.find("normalizer"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Frobnicate"), std::string::npos) << msg;

  j = tiny_bpe();
  j["model"]["merges"] = {"a zz"};
  msg = error_of([&] { load(j); });
  EXPECT_NE(msg.find("zz"), std::string::npos) << msg;
  EXPECT_NE(msg.find("merge 1"), std::string::npos) << msg;

  j = tiny_bpe();
  j["model"]["dropout"] = 0.1;
  EXPECT_NE(error_of([&] { load(j); }).find("dropout"), std::string::npos);
}

TEST(Tokenizer, MalformedJsonNamesTheFile) {
  fs::path dir = temp_dir("malformed");
  {
    std::ofstream(dir / "tokenizer.json") << "{\"model\": {\"type\": \"BPE\", ";
  }
  std::string msg = error_of([&] { Tokenizer::from_path(dir); });
  EXPECT_NE(msg.find((dir / "tokenizer.json").string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("not valid JSON"), std::string::npos) << msg;
  // Missing folder / file.
  msg = error_of([&] { Tokenizer::from_path(dir / "nope"); });
  EXPECT_NE(msg.find("nope"), std::string::npos) << msg;
  fs::remove(dir / "tokenizer.json");
  msg = error_of([&] { Tokenizer::from_path(dir); });
  EXPECT_NE(msg.find("no tokenizer.json"), std::string::npos) << msg;
  fs::remove_all(dir);
}

TEST(Tokenizer, ConfigSpecialTokensAndChatTemplate) {
  fs::path dir = temp_dir("config");
  json j = tiny_bpe();
  j["added_tokens"] = json::array({json{{"id", 9}, {"content", "<s>"}, {"special", true}, {"normalized", false}}});
  std::ofstream(dir / "tokenizer.json") << j.dump();
  std::ofstream(dir / "tokenizer_config.json")
      << json{{"bos_token", {{"content", "<s>"}, {"lstrip", false}}}, {"eos_token", "abc"}, {"pad_token", nullptr},
              {"add_bos_token", true}, {"chat_template", "{{ messages }}"}}
             .dump();
  auto tok = Tokenizer::from_path(dir);
  EXPECT_EQ(tok.bos_token(), "<s>");
  EXPECT_EQ(tok.bos_id(), 9);
  EXPECT_EQ(tok.eos_token(), "abc");
  EXPECT_EQ(tok.eos_id(), 6);
  EXPECT_EQ(tok.pad_token(), "");
  EXPECT_FALSE(tok.pad_id().has_value());
  EXPECT_EQ(tok.unk_token(), "<unk>");
  EXPECT_EQ(tok.unk_id(), 0);
  EXPECT_TRUE(tok.add_bos_token());
  EXPECT_FALSE(tok.add_eos_token());
  EXPECT_EQ(tok.chat_template(), "{{ messages }}");
  auto tok2 = Tokenizer::from_path(dir / "tokenizer.json");
  EXPECT_EQ(tok2.bos_id(), 9);
  fs::remove_all(dir);
}

TEST(TokenizerFixtures, Llama3) {
  fs::path dir = llms_test::shared_fixtures_dir() / "tokenizers" / "llama3";
  LLMS_SHARED_FIXTURE_OR_SKIP(dir / "tokenizer.json");
  auto tok = Tokenizer::from_path(dir);
  // Reference ids from tokenizers 0.23.
  EXPECT_EQ(tok.encode("Hello world! It's 12345 times, <|begin_of_text|>hi</s> héllo 日本語 🙂"),
            (Ids{9906, 1917, 0, 1102, 596, 220, 4513, 1774, 3115, 11, 220, 128000, 6151, 524, 82, 29, 305, 19010, 385,
                 105180, 102158, 28584}));
  EXPECT_EQ(tok.vocab_size(), 128256u);
  EXPECT_EQ(tok.bos_id(), 128000);
  EXPECT_EQ(tok.eos_id(), 128001);
  EXPECT_FALSE(tok.chat_template().empty());
  EXPECT_EQ(tok.decode(Ids{128000, 9906, 1917}, true), "Hello world");
}

TEST(TokenizerFixtures, Mistral) {
  fs::path dir = llms_test::shared_fixtures_dir() / "tokenizers" / "mistral-v0.1";
  LLMS_SHARED_FIXTURE_OR_SKIP(dir / "tokenizer.json");
  auto tok = Tokenizer::from_path(dir);
  EXPECT_EQ(tok.encode("Hello world! 日本語 🙂</s>"),
            (Ids{1, 22557, 1526, 28808, 28705, 29142, 29119, 30321, 28705, 29340, 2}));
  EXPECT_EQ(tok.decode(Ids{1, 22557, 1526, 28808, 28705, 29340, 2}), "<s> Hello world! 🙂</s>");
  EXPECT_TRUE(tok.add_bos_token());
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.unk_id(), 0);
}

TEST(TokenizerFixtures, ConcurrentEncodeIsConsistent) {
  fs::path dir = llms_test::shared_fixtures_dir() / "tokenizers" / "gpt2";
  LLMS_SHARED_FIXTURE_OR_SKIP(dir / "tokenizer.json");
  auto tok = Tokenizer::from_path(dir);
  std::vector<std::string> texts;
  for (int i = 0; i < 200; ++i) texts.push_back("sample " + std::to_string(i * 7919) + " text with words #" + std::to_string(i));
  std::vector<Ids> expected;
  for (auto& t : texts) expected.push_back(tok.encode(t));
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int k = 0; k < 4; ++k)
    threads.emplace_back([&, k] {
      Tokenizer copy = tok;  // cheap shared handle
      for (int r = 0; r < 20; ++r)
        for (std::size_t i = 0; i < texts.size(); ++i)
          if (copy.encode(texts[(i + k) % texts.size()]) != expected[(i + k) % texts.size()]) ++mismatches;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}
