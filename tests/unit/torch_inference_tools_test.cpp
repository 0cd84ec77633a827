// Unit tests of the inference helpers that need no model: stop-string search and hold-back, export size
// parsing, chat history trimming, prediction CSV quoting and prompt format names.
#include <gtest/gtest.h>

#include "llmstudio/core/error.h"
#include "llmstudio/infer/export.h"
#include "llmstudio/infer/prediction_io.h"
#include "llmstudio/infer/prompting.h"
#include "llmstudio/infer/text_generation.h"

using namespace llmstudio;
using namespace llmstudio::infer;

TEST(StopStrings, FindsEarliestStopFromTheNewText) {
  std::vector<std::string> stops = {"User:", "\n\n"};
  EXPECT_EQ(find_stop("hello User: x", stops), 6u);
  EXPECT_EQ(find_stop("a\n\nb User:", stops), 1u);
  EXPECT_EQ(find_stop("hello", stops), std::string::npos);
  // A stop straddling the boundary of the already-checked text is found.
  EXPECT_EQ(find_stop("abcUse" "r:", stops, 5), 3u);
  EXPECT_EQ(find_stop("anything", {}), std::string::npos);
}

TEST(StopStrings, HoldsBackAPossibleStart) {
  std::vector<std::string> stops = {"User:"};
  EXPECT_EQ(stop_prefix_suffix("hello Us", stops), 2u);
  EXPECT_EQ(stop_prefix_suffix("hello U", stops), 1u);
  EXPECT_EQ(stop_prefix_suffix("hello", stops), 0u);
  EXPECT_EQ(stop_prefix_suffix("User", stops), 4u);
  EXPECT_EQ(stop_prefix_suffix("", stops), 0u);
}

TEST(ExportSize, ParsesTransformersUnits) {
  EXPECT_EQ(parse_size("2GB"), 2'000'000'000u);
  EXPECT_EQ(parse_size("500MB"), 500'000'000u);
  EXPECT_EQ(parse_size("10kb"), 10'000u);
  EXPECT_EQ(parse_size("1GiB"), 1073741824u);
  EXPECT_EQ(parse_size("4096"), 4096u);
  EXPECT_EQ(parse_size("1.5GB"), 1'500'000'000u);
  EXPECT_THROW(parse_size("2XB"), Error);
  EXPECT_THROW(parse_size("GB"), Error);
  EXPECT_THROW(parse_size("0"), Error);
}

TEST(Conversation, TrimKeepsTheLastTurns) {
  Conversation c;
  for (int i = 0; i < 5; ++i) c.turns.push_back({"u" + std::to_string(i), "a" + std::to_string(i)});
  Conversation all = c;
  all.trim_history(-1);
  EXPECT_EQ(all.turns.size(), 5u);
  c.trim_history(2);
  ASSERT_EQ(c.turns.size(), 3u);
  EXPECT_EQ(c.turns.front().user, "u2");
  c.trim_history(0);
  ASSERT_EQ(c.turns.size(), 1u);
  EXPECT_EQ(c.turns.front().user, "u4");
}

TEST(PredictionIo, CsvQuoting) {
  EXPECT_EQ(csv_field("plain"), "plain");
  EXPECT_EQ(csv_field("a,b"), "\"a,b\"");
  EXPECT_EQ(csv_field("say \"hi\"\n"), "\"say \"\"hi\"\"\n\"");
}

TEST(Prompting, FormatNames) {
  EXPECT_EQ(parse_prompt_format("chat-template"), PromptFormat::chat_template);
  EXPECT_EQ(parse_prompt_format("h2o"), PromptFormat::h2o);
  EXPECT_EQ(parse_prompt_format("raw"), PromptFormat::raw);
  try {
    parse_prompt_format("alpaca");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("raw, chat-template, h2o"), std::string::npos);
  }
}
