// Unit tests of the tokenizer building blocks: split behaviours, pre-tokenizers (Metaspace prepend schemes,
// Digits, Whitespace, Punctuation, ByteLevel), normalizers, decoders and UTF-8 repair. Expected values come from
// the Python `tokenizers` library (0.23).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "llmstudio/core/error.h"
#include "llmstudio/tokenizer/decoders.h"
#include "llmstudio/tokenizer/normalizers.h"
#include "llmstudio/tokenizer/pre_tokenizers.h"
#include "llmstudio/tokenizer/unicode.h"

using namespace llmstudio::tokenizer;
using nlohmann::json;

namespace {

std::vector<std::string> pre_tokenize(const json& j, const std::string& text) {
  auto pt = make_pre_tokenizer(j, "test.json");
  std::vector<Piece> pieces{Piece{text, -1, true}};
  pt->pre_tokenize(pieces);
  std::vector<std::string> out;
  for (auto& p : pieces) out.push_back(p.text);
  return out;
}

json split_json(const std::string& behavior, bool invert) {
  return json{{"type", "Split"}, {"pattern", {{"String", "-"}}}, {"behavior", behavior}, {"invert", invert}};
}

using V = std::vector<std::string>;

}  // namespace

TEST(TokenizerSplit, Behaviours) {
  const std::string text = "the-final--countdown";
  EXPECT_EQ(pre_tokenize(split_json("Removed", false), text), (V{"the", "final", "countdown"}));
  EXPECT_EQ(pre_tokenize(split_json("Isolated", false), text), (V{"the", "-", "final", "-", "-", "countdown"}));
  EXPECT_EQ(pre_tokenize(split_json("MergedWithPrevious", false), text), (V{"the-", "final-", "-", "countdown"}));
  EXPECT_EQ(pre_tokenize(split_json("MergedWithNext", false), text), (V{"the", "-final", "-", "-countdown"}));
  EXPECT_EQ(pre_tokenize(split_json("Contiguous", false), text), (V{"the", "-", "final", "--", "countdown"}));
}

TEST(TokenizerSplit, Inverted) {
  const std::string text = "the-final--countdown";
  EXPECT_EQ(pre_tokenize(split_json("Removed", true), text), (V{"-", "-", "-"}));
  EXPECT_EQ(pre_tokenize(split_json("MergedWithPrevious", true), text), (V{"the", "-final", "-", "-countdown"}));
  EXPECT_EQ(pre_tokenize(split_json("MergedWithNext", true), text), (V{"the-", "final-", "-", "countdown"}));
}

TEST(TokenizerSplit, RegexPatternAndBadBehaviour) {
  json j{{"type", "Split"}, {"pattern", {{"Regex", R"(\p{N}+)"}}}, {"behavior", "Isolated"}, {"invert", false}};
  EXPECT_EQ(pre_tokenize(j, "ab١٢3c"), (V{"ab", "١٢3", "c"}));
  j["behavior"] = "Sideways";
  EXPECT_THROW(make_pre_tokenizer(j, "test.json"), llmstudio::Error);
  j["behavior"] = "Isolated";
  j["pattern"] = {{"Regex", "(unclosed"}};
  try {
    make_pre_tokenizer(j, "bad.json");
    FAIL() << "expected an error";
  } catch (const llmstudio::Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.json"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("(unclosed"), std::string::npos) << e.what();
  }
}

TEST(TokenizerMetaspace, PrependSchemes) {
  auto ms = [](const char* scheme, bool split) {
    return json{{"type", "Metaspace"}, {"replacement", "\u2581"}, {"prepend_scheme", scheme}, {"split", split}};
  };
  const std::string text = "hey  friend ";
  EXPECT_EQ(pre_tokenize(ms("always", true), text), (V{"▁hey", "▁", "▁friend", "▁"}));
  EXPECT_EQ(pre_tokenize(ms("always", false), text), (V{"▁hey▁▁friend▁"}));
  EXPECT_EQ(pre_tokenize(ms("first", true), text), (V{"▁hey", "▁", "▁friend", "▁"}));
  EXPECT_EQ(pre_tokenize(ms("never", true), text), (V{"hey", "▁", "▁friend", "▁"}));
  EXPECT_EQ(pre_tokenize(ms("never", false), text), (V{"hey▁▁friend▁"}));
  // "first" only prepends to the piece at the start of the input.
  json seq{{"type", "Sequence"},
           {"pretokenizers",
            {json{{"type", "Split"}, {"pattern", {{"String", " "}}}, {"behavior", "Isolated"}, {"invert", false}},
             ms("first", true)}}};
  EXPECT_EQ(pre_tokenize(seq, "a b"), (V{"▁a", "▁", "b"}));
  EXPECT_THROW(make_pre_tokenizer(ms("sometimes", true), "t.json"), llmstudio::Error);
}

TEST(TokenizerPreTokenizers, DigitsWhitespacePunctuation) {
  EXPECT_EQ(pre_tokenize(json{{"type", "Digits"}, {"individual_digits", false}}, "ab123c4"), (V{"ab", "123", "c", "4"}));
  EXPECT_EQ(pre_tokenize(json{{"type", "Digits"}, {"individual_digits", true}}, "ab123c4"),
            (V{"ab", "1", "2", "3", "c", "4"}));
  EXPECT_EQ(pre_tokenize(json{{"type", "Whitespace"}}, "Hey, you! é_x"), (V{"Hey", ",", "you", "!", "é_x"}));
  EXPECT_EQ(pre_tokenize(json{{"type", "Punctuation"}}, "Hey, you!!"), (V{"Hey", ",", " you", "!", "!"}));
  EXPECT_EQ(pre_tokenize(json{{"type", "WhitespaceSplit"}}, " a\tb\u3000c "), (V{"a", "b", "c"}));
}

TEST(TokenizerPreTokenizers, ByteLevelRegexAndPrefixSpace) {
  json bl{{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
  EXPECT_EQ(pre_tokenize(bl, "Hello world's  x\n"), (V{"Hello", "Ġworld", "'s", "Ġ", "Ġx", "Ċ"}));
  bl["add_prefix_space"] = true;
  EXPECT_EQ(pre_tokenize(bl, "a b"), (V{"Ġa", "Ġb"}));
  EXPECT_THROW(make_pre_tokenizer(json{{"type", "UnicodeScripts"}}, "t.json"), llmstudio::Error);
}

TEST(TokenizerNormalizers, Basic) {
  auto norm = [](const json& j, std::string s) {
    make_normalizer(j, "t.json")->normalize(s);
    return s;
  };
  EXPECT_EQ(norm(json{{"type", "Lowercase"}}, "ΑΣ İ"), "ασ i̇");
  EXPECT_EQ(norm(json{{"type", "NFKC"}}, "ﬁ ①"), "fi 1");
  EXPECT_EQ(norm(json{{"type", "NFC"}}, "e\u0301"), "\u00e9");
  EXPECT_EQ(norm(json{{"type", "NFD"}}, "\u00e9"), "e\u0301");
  EXPECT_EQ(norm(json{{"type", "Strip"}, {"strip_left", true}, {"strip_right", true}}, "  x \u3000"), "x");
  EXPECT_EQ(norm(json{{"type", "Prepend"}, {"prepend", "▁"}}, "x"), "▁x");
  EXPECT_EQ(norm(json{{"type", "Prepend"}, {"prepend", "▁"}}, ""), "");
  EXPECT_EQ(norm(json{{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "▁"}}, "a b  c"), "a▁b▁▁c");
  json seq{{"type", "Sequence"},
           {"normalizers", {json{{"type", "NFD"}}, json{{"type", "StripAccents"}}, json{{"type", "Lowercase"}}}}};
  EXPECT_EQ(norm(seq, "Éé"), "ee");
  try {
    make_normalizer(json{{"type", "Precompiled"}, {"precompiled_charsmap", "AAAA"}}, "model/tokenizer.json");
    FAIL() << "expected an error";
  } catch (const llmstudio::Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("Precompiled"), std::string::npos) << msg;
    EXPECT_NE(msg.find("model/tokenizer.json"), std::string::npos) << msg;
  }
}

TEST(TokenizerDecoders, ByteFallbackFuseStripMetaspace) {
  auto run = [](const json& j, std::vector<std::string> toks) {
    make_decoder(j, "t.json")->decode_chain(toks);
    std::string s;
    for (auto& t : toks) s += t;
    return s;
  };
  EXPECT_EQ(run(json{{"type", "ByteFallback"}}, {"<0xE6>", "<0x97>", "a", "<0xE6>", "<0x97>", "<0xA5>", "<0xFF>"}),
            "\uFFFD\uFFFDa\uFFFD\uFFFD\uFFFD\uFFFD");
  EXPECT_EQ(run(json{{"type", "ByteFallback"}}, {"<0xE6>", "<0x97>", "<0xA5>", "x"}), "日x");
  EXPECT_EQ(run(json{{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 1}}, {"  a  ", " b "}), " a b");
  json ms{{"type", "Metaspace"}, {"replacement", "▁"}, {"prepend_scheme", "always"}, {"split", true}};
  EXPECT_EQ(run(ms, {"▁a▁b", "▁c", "x▁"}), "ab cx ");
  ms["prepend_scheme"] = "never";
  EXPECT_EQ(run(ms, {"▁a▁b", "▁c"}), " a b c");
  EXPECT_EQ(run(json{{"type", "ByteLevel"}}, {"Hello", "Ġworld", "Ċ"}), "Hello world\n");
  EXPECT_THROW(make_decoder(json{{"type", "CTC"}}, "t.json"), llmstudio::Error);
}

TEST(TokenizerUnicode, RepairMatchesPythonReplace) {
  using unicode::repair_utf8;
  EXPECT_EQ(repair_utf8("abc"), "abc");
  // b"abc\xe2\x82 x".decode("utf-8", "replace") == "abc\ufffd x"
  EXPECT_EQ(repair_utf8("abc\xe2\x82 x"), "abc\uFFFD x");
  EXPECT_EQ(repair_utf8("\xed\xa0\x80"), "\uFFFD\uFFFD\uFFFD");
  EXPECT_EQ(repair_utf8("\xf0\x82\x82\xac"), "\uFFFD\uFFFD\uFFFD\uFFFD");
  EXPECT_EQ(repair_utf8("\xf0\x9f\x99"), "\uFFFD");
  EXPECT_EQ(repair_utf8("\xc3\x28"), "\uFFFD(");
  EXPECT_TRUE(unicode::is_valid_utf8("日本🙂"));
  EXPECT_FALSE(unicode::is_valid_utf8("\xc0\xaf"));
}
