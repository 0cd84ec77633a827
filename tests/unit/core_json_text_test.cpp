// Depth-limited JSON parsing and bounded previews (io/json_text.h).
#include <gtest/gtest.h>

#include <string>

#include "llmstudio/core/error.h"
#include "llmstudio/io/json_text.h"

using llmstudio::Error;
using llmstudio::io::find_json_depth_excess;
using llmstudio::io::json_preview;
using llmstudio::io::parse_json;
using llmstudio::io::parse_ordered_json;
using llmstudio::io::try_parse_json;

namespace {

std::string nested_arrays(std::size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

std::string error_of(const std::string& text, const std::string& source, int max_depth = 64) {
  try {
    parse_json(text, source, max_depth);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(JsonText, DepthAtTheLimitIsAccepted) {
  auto j = parse_json(nested_arrays(64), "body");
  int depth = 0;
  const nlohmann::json* p = &j;
  while (p->is_array()) {
    ++depth;
    if (p->empty()) break;
    p = &(*p)[0];
  }
  EXPECT_EQ(depth, 64);
  // Objects count like arrays.
  std::string objects;
  for (int i = 0; i < 63; ++i) objects += "{\"k\":";
  objects += "{}" + std::string(63, '}');
  EXPECT_NO_THROW(parse_json(objects, "body"));
}

TEST(JsonText, OneLevelPastTheLimitIsRefusedWithSourceOffsetAndLimit) {
  const std::string msg = error_of(nested_arrays(65), "request body");
  EXPECT_NE(msg.find("request body"), std::string::npos) << msg;
  EXPECT_NE(msg.find("limit of 64"), std::string::npos) << msg;
  EXPECT_NE(msg.find("byte offset 64"), std::string::npos) << msg;  // the 65th '[' is at offset 64
  EXPECT_LT(msg.size(), 300u) << msg;
  // Another limit.
  EXPECT_NO_THROW(parse_json(nested_arrays(128), "tokenizer.json", 128));
  EXPECT_NE(error_of(nested_arrays(129), "tokenizer.json", 128).find("limit of 128"), std::string::npos);
}

TEST(JsonText, VeryDeepTextIsRefusedWithoutCrashing) {
  const std::string deep = nested_arrays(100000);
  const std::string msg = error_of(deep, "request body");
  EXPECT_NE(msg.find("nested deeper"), std::string::npos) << msg;
  // Inside a field value, as objects, and unterminated.
  EXPECT_NE(error_of("{\"model\":" + deep + "}", "b").find("byte offset 72"), std::string::npos);
  std::string objs;
  for (int i = 0; i < 100000; ++i) objs += "{\"a\":";
  EXPECT_NE(error_of(objs, "b").find("nested deeper"), std::string::npos);
  EXPECT_NE(error_of(std::string(100000, '['), "b").find("nested deeper"), std::string::npos);
  EXPECT_FALSE(try_parse_json(deep).has_value());
  EXPECT_THROW(parse_ordered_json(deep, "x.jsonl: line 1"), Error);
}

TEST(JsonText, BracketsAndEscapedQuotesInsideStringsAreNotCounted) {
  // 64 real levels, plus strings full of brackets, escaped quotes and backslashes.
  const std::string noise = R"("[[[{{{ \" [[[ \\" )";
  std::string text;
  for (int i = 0; i < 63; ++i) text += "[" + noise + ",";
  const std::size_t innermost = text.size();  // the 64th '[' outside strings
  text += "[" + std::string(R"("\\\"[{")") + "]";
  for (int i = 0; i < 63; ++i) text += "]";
  auto j = parse_json(text, "body");
  EXPECT_TRUE(j.is_array());
  EXPECT_EQ(j[0].get<std::string>(), "[[[{{{ \" [[[ \\");
  EXPECT_FALSE(find_json_depth_excess(text, 64).has_value());
  EXPECT_EQ(find_json_depth_excess(text, 63).value(), innermost);
  // A key with brackets.
  EXPECT_NO_THROW(parse_json(R"({"[[[[": {"}}}}": 1}})", "body", 2));
}

TEST(JsonText, InvalidJsonNamesTheSourceAndStaysShort) {
  std::string msg = error_of("{\"a\": ", "config.json");
  EXPECT_NE(msg.find("config.json: not valid JSON"), std::string::npos) << msg;
  EXPECT_NE(msg.find("byte offset"), std::string::npos) << msg;
  // A long bad token is not echoed whole.
  msg = error_of("[\"" + std::string(100000, 'x') + "\x01\"]", "body");
  EXPECT_NE(msg.find("not valid JSON"), std::string::npos) << msg;
  EXPECT_LT(msg.size(), 400u) << msg;
  // A number out of range is the parser's other exception type: still our Error (found by the fuzzer).
  for (const char* text : {"5e080189", "[1, -1e999]", "{\"a\": 1e400}"}) {
    msg = error_of(text, "body");
    EXPECT_NE(msg.find("body: not valid JSON"), std::string::npos) << msg;
    EXPECT_NE(msg.find("number overflow"), std::string::npos) << msg;
    EXPECT_FALSE(try_parse_json(text).has_value());
  }
  // Keys keep their order in the ordered variant.
  auto o = parse_ordered_json(R"({"b": 1, "a": 2})", "x");
  EXPECT_EQ(o.begin().key(), "b");
}

TEST(JsonText, PreviewIsBoundedAndTruncated) {
  EXPECT_EQ(json_preview(nlohmann::json(12)), "12");
  EXPECT_EQ(json_preview(nlohmann::json("hi")), "\"hi\"");
  EXPECT_EQ(json_preview(nlohmann::json::parse(R"({"a":[1,true,null],"b":"x"})")), R"({"a":[1,true,null],"b":"x"})");
  const std::string long_string(10000, 'y');
  std::string p = json_preview(nlohmann::json(long_string));
  EXPECT_EQ(p.size(), 123u) << p;
  EXPECT_EQ(p.substr(0, 4), "\"yyy");
  EXPECT_EQ(p.substr(p.size() - 3), "...");
  nlohmann::json arr = nlohmann::json::array();
  for (int i = 0; i < 10000; ++i) arr.push_back(i);
  p = json_preview(arr, 20);
  EXPECT_EQ(p, "[0,1,2,3,4,5,6,7,8,9...") << p;
  // A value nested 100,000 deep (built, not parsed): the preview does not recurse through it all.
  nlohmann::json deep = nlohmann::json::array();
  for (int i = 0; i < 100000; ++i) deep = nlohmann::json::array({std::move(deep)});
  p = json_preview(deep);
  EXPECT_EQ(p, std::string(120, '[') + "...");
  // Multi-byte text is cut on a character boundary; invalid UTF-8 is replaced, not thrown.
  p = json_preview(nlohmann::json(std::string(200, '\xC3') + ""), 10);
  EXPECT_LE(p.size(), 40u);
  std::string accents;
  for (int i = 0; i < 100; ++i) accents += "\xC3\xA9";
  p = json_preview(nlohmann::json(accents), 10);
  EXPECT_EQ(p, "\"\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9..."); // 1 + 4*2 = 9 bytes, the next character does not fit
  nlohmann::ordered_json o = nlohmann::ordered_json::parse(R"({"z":1,"a":2})");
  EXPECT_EQ(json_preview(o), R"({"z":1,"a":2})");
}
