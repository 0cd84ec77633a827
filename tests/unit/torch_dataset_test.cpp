// Dataset readers and preparation (data/): CSV edge cases, JSONL, dispatch by extension, column checks,
// parent-id chains, validation split and data_sample. Bad files are written by the tests.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "llmstudio/core/error.h"
#include "llmstudio/io/atomic_file.h"
#include "llmstudio/data/csv_reader.h"
#include "llmstudio/data/dataset_reader.h"
#include "llmstudio/data/dataset_split.h"
#include "llmstudio/data/jsonl_reader.h"
#include "llmstudio/data/parquet_reader.h"

namespace fs = std::filesystem;
using llmstudio::Error;
using namespace llmstudio::data;

namespace {

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

#define EXPECT_ERROR_HAS(expr, ...)                                                   \
  do {                                                                                \
    std::string msg_ = error_of([&] { (void)(expr); });                               \
    ASSERT_FALSE(msg_.empty()) << "no llmstudio::Error from " #expr;                  \
    for (std::string part_ : {__VA_ARGS__}) EXPECT_NE(msg_.find(part_), std::string::npos) << part_ << " in: " << msg_; \
  } while (0)

class DatasetFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("llms_dataset_test_" + std::to_string(std::random_device{}()));
    fs::create_directories(dir_);
  }
  void TearDown() override { llmstudio::io::remove_tree(dir_); }
  fs::path write(const std::string& name, const std::string& content) {
    auto p = dir_ / name;
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }
  fs::path dir_;
};

std::string cell(const Table& t, std::size_t r, const std::string& col) {
  const Cell& c = t.cell(r, t.column_index(col));
  return c ? *c : "<null>";
}

// A chained conversation dataset: two conversations (1 -> 2 -> 3, and 4 -> 5 / 4 -> 6 siblings) + 4 singles.
const char* kChained =
    "id,parent_id,instruction,output\n"
    "1,,hi,hello\n2,1,how are you,fine\n3,2.0,bye,see you\n"
    "4,,q4,a4\n5,4,q5,a5\n6,4,q6,a6\n"
    "7,,q7,a7\n8,,q8,a8\n9,,q9,a9\n10,,q10,a10\n";

}  // namespace

// ---- CSV ----------------------------------------------------------------------------------------------------

TEST(DatasetCsv, QuotedFieldsWithCommasNewlinesAndQuotes) {
  auto t = parse_csv("a,b,c\n\"x, y\",\"line1\nline2\",\"say \"\"hi\"\"\"\nplain,,\"\"\n", "t.csv");
  ASSERT_EQ(t.num_rows(), 2u);
  EXPECT_EQ(t.column_names(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(cell(t, 0, "a"), "x, y");
  EXPECT_EQ(cell(t, 0, "b"), "line1\nline2");
  EXPECT_EQ(cell(t, 0, "c"), "say \"hi\"");
  EXPECT_EQ(cell(t, 1, "a"), "plain");
  EXPECT_EQ(cell(t, 1, "b"), "<null>");  // empty cell
  EXPECT_EQ(cell(t, 1, "c"), "<null>");  // quoted empty cell, as pandas
}

TEST(DatasetCsv, BomCrlfBlankLinesAndNoTrailingNewline) {
  auto t = parse_csv("\xEF\xBB\xBFid,text\r\n1,\"a\r\nb\"\r\n\r\n2,caf\xC3\xA9 \xE2\x9C\x93", "t.csv");
  EXPECT_EQ(t.column_names()[0], "id");  // BOM stripped
  ASSERT_EQ(t.num_rows(), 2u);
  EXPECT_EQ(cell(t, 0, "text"), "a\r\nb");  // line ends inside quotes are kept
  EXPECT_EQ(cell(t, 1, "text"), "caf\xC3\xA9 \xE2\x9C\x93");
  EXPECT_EQ(cell(t, 1, "id"), "2");
}

TEST(DatasetCsv, HeaderNamesLikePandas) {
  auto t = parse_csv(",a,a,b\n0,1,2,3\n", "t.csv");
  EXPECT_EQ(t.column_names(), (std::vector<std::string>{"Unnamed: 0", "a", "a.1", "b"}));
  EXPECT_EQ(parse_csv("a,b\n", "t.csv").num_rows(), 0u);
  EXPECT_EQ(parse_csv("a,b\n", "t.csv").num_columns(), 2u);
}

TEST(DatasetCsv, RaggedRowsAreErrorsWithLineNumbers) {
  // the bad row is on line 5: the quoted field of row 1 spans lines 2-3
  EXPECT_ERROR_HAS(parse_csv("a,b\n\"x\ny\",1\n2,3\n4,5,6\n", "bad.csv"), "bad.csv", "line 5", "expected 2 fields",
                   "found 3");
  EXPECT_ERROR_HAS(parse_csv("a,b,c\n1,2\n", "bad.csv"), "line 2", "found 2");
}

TEST(DatasetCsv, BrokenQuotesAreErrors) {
  EXPECT_ERROR_HAS(parse_csv("a,b\n1,2\n3,\"open\nnever closed\n", "q.csv"), "q.csv", "line 3", "not closed");
  EXPECT_ERROR_HAS(parse_csv("a,b\n\"x\"y,2\n", "q.csv"), "line 2", "after the closing quote");
}

TEST(DatasetCsv, EmptyFileIsAnError) {
  EXPECT_ERROR_HAS(parse_csv("", "e.csv"), "e.csv", "empty file");
  EXPECT_ERROR_HAS(parse_csv("\xEF\xBB\xBF\n\n", "e.csv"), "empty file");
}

TEST_F(DatasetFiles, NonUtf8IsAnErrorNamingFileLineAndOffset) {
  auto p = write("latin1.csv", "a,b\n1,ok\n2,caf\xE9\n");  // Latin-1 é
  EXPECT_ERROR_HAS(read_dataset(p), "latin1.csv", "not valid UTF-8", "line 3", "byte offset 14", "0xE9");
  auto j = write("latin1.jsonl", "{\"a\": \"ok\"}\n{\"a\": \"caf\xE9\"}\n");
  EXPECT_ERROR_HAS(read_dataset(j), "latin1.jsonl", "not valid UTF-8", "line 2");
  // overlong encodings and surrogates are not UTF-8 either
  EXPECT_TRUE(find_invalid_utf8("\xC0\xAF").has_value());
  EXPECT_TRUE(find_invalid_utf8("\xED\xA0\x80").has_value());
  EXPECT_FALSE(find_invalid_utf8("\xF0\x9F\x98\x80 ok").has_value());
}

// ---- JSONL --------------------------------------------------------------------------------------------------

TEST(DatasetJsonl, ValuesBecomeTextLikePandas) {
  auto t = parse_jsonl(
      "{\"q\": \"x\\ny\", \"n\": 3, \"f\": 0.5, \"b\": true, \"z\": null, \"l\": [1, 2]}\n\n"
      "{\"q\": \"caf\\u00e9\", \"f\": 1e-05, \"extra\": \"e\"}\n",
      "t.jsonl");
  EXPECT_EQ(t.column_names(), (std::vector<std::string>{"q", "n", "f", "b", "z", "l", "extra"}));
  ASSERT_EQ(t.num_rows(), 2u);
  EXPECT_EQ(cell(t, 0, "q"), "x\ny");
  EXPECT_EQ(cell(t, 0, "n"), "3");
  EXPECT_EQ(cell(t, 0, "f"), "0.5");
  EXPECT_EQ(cell(t, 0, "b"), "True");
  EXPECT_EQ(cell(t, 0, "z"), "<null>");
  EXPECT_EQ(cell(t, 0, "l"), "[1,2]");
  EXPECT_EQ(cell(t, 0, "extra"), "<null>");  // key missing on that line
  EXPECT_EQ(cell(t, 1, "q"), "caf\xC3\xA9");
  EXPECT_EQ(cell(t, 1, "f"), "1e-05");
  EXPECT_EQ(cell(t, 1, "n"), "<null>");
}

TEST(DatasetJsonl, BadLinesAreErrorsWithLineNumbers) {
  EXPECT_ERROR_HAS(parse_jsonl("{\"a\": 1}\n{\"a\": 2\n", "b.jsonl"), "b.jsonl", "line 2", "not valid JSON");
  EXPECT_ERROR_HAS(parse_jsonl("{\"a\": 1}\n\n[1, 2]\n", "b.jsonl"), "line 3", "expected a JSON object");
  EXPECT_ERROR_HAS(parse_jsonl("  \n", "b.jsonl"), "empty file");
}

TEST(DatasetJsonl, JsonArrayOfRecords) {
  auto t = parse_jsonl("[{\"a\": \"x\"}, {\"a\": \"y\", \"b\": 2}]", "t.json");
  ASSERT_EQ(t.num_rows(), 2u);
  EXPECT_EQ(cell(t, 1, "b"), "2");
  EXPECT_ERROR_HAS(parse_jsonl("[{\"a\": 1}, 5]", "t.json"), "array element 1");
}

TEST(DatasetTable, PythonFloatFormatting) {
  EXPECT_EQ(format_python_float(1.0), "1.0");
  EXPECT_EQ(format_python_float(0.1), "0.1");
  EXPECT_EQ(format_python_float(1e-05), "1e-05");
  EXPECT_EQ(format_python_float(0.0001), "0.0001");
  EXPECT_EQ(format_python_float(123456789.0), "123456789.0");
  EXPECT_EQ(format_python_float(1e16), "1e+16");
  EXPECT_EQ(format_python_float(-2.5e-7), "-2.5e-07");
  EXPECT_EQ(format_python_float(1.0 / 3), "0.3333333333333333");
  EXPECT_EQ(canonical_id("12.0"), "12");
  EXPECT_EQ(canonical_id(" 7 "), "7");
  EXPECT_EQ(canonical_id("1.5"), "1.5");
  EXPECT_EQ(canonical_id("a.0"), "a.0");
}

// ---- dispatch -----------------------------------------------------------------------------------------------

TEST_F(DatasetFiles, DispatchByExtension) {
  EXPECT_EQ(read_dataset(write("a.CSV", "x\n1\n")).num_rows(), 1u);
  EXPECT_EQ(read_dataset(write("a.jsonl", "{\"x\": 1}\n")).num_rows(), 1u);
  EXPECT_EQ(read_dataset(write("a.json", "{\"x\": 1}\n{\"x\": 2}\n")).num_rows(), 2u);
  EXPECT_ERROR_HAS(read_dataset(write("a.xlsx", "x")), "a.xlsx", "unsupported", ".csv", ".jsonl", ".parquet");
  EXPECT_ERROR_HAS(read_dataset(dir_ / "missing.csv"), "missing.csv", "not found");
}

TEST_F(DatasetFiles, ParquetErrorsAreClear) {
  auto p = write("bad.parquet", "this is not parquet");
  if (parquet_supported()) {
    EXPECT_ERROR_HAS(read_dataset(p), "bad.parquet", "Parquet");
    EXPECT_ERROR_HAS(read_dataset(write("empty.parquet", "")), "empty.parquet", "empty file");
  } else {
    EXPECT_ERROR_HAS(read_dataset(p), "bad.parquet", "Parquet support was not built", "LLMS_WITH_PARQUET=ON", "pyarrow");
  }
}

// ---- columns and chains -------------------------------------------------------------------------------------

TEST(DatasetColumns, MissingColumnsListTheColumnsFound) {
  auto t = parse_csv("question,response\nq,a\n", "qa.csv");
  std::vector<std::string> w;
  ColumnSpec spec;  // H2O defaults: instruction + input -> output
  EXPECT_ERROR_HAS(resolve_columns(t, spec, "train", w), "train data qa.csv", "\"instruction\"", "dataset.prompt_column",
                   "\"question\", \"response\"");
  spec.prompt_columns = {"question"};
  EXPECT_ERROR_HAS(resolve_columns(t, spec, "train", w), "\"output\"", "dataset.answer_column");
  spec.answer_column = "response";
  auto cols = resolve_columns(t, spec, "train", w);
  EXPECT_FALSE(cols.system);
  EXPECT_FALSE(cols.chained());
  ASSERT_EQ(w.size(), 2u);  // default system and parent_id columns are absent: warnings, as in H2O
  EXPECT_NE(w[0].find("system column \"system\""), std::string::npos);
  EXPECT_NE(w[1].find("parent id column \"parent_id\""), std::string::npos);

  auto chained = parse_csv("parent_id,question,response\n,q,a\n", "c.csv");
  EXPECT_ERROR_HAS(resolve_columns(chained, spec, "train", w), "id column \"id\"", "dataset.id_column");
}

TEST(DatasetColumns, EmptyPromptsAreDroppedAndCounted) {
  auto t = parse_csv("instruction,input,output\nq1,,a1\n,,a2\n,ctx,a3\n\"\",,a4\n", "t.csv");
  std::vector<std::string> w;
  ColumnSpec spec;
  auto cols = resolve_columns(t, spec, "train", w);
  EXPECT_EQ(drop_empty_prompts(t, cols), 2u);
  ASSERT_EQ(t.num_rows(), 2u);
  EXPECT_EQ(cell(t, 1, "output"), "a3");
  // H2O joins the prompt columns with the decoded separator, nulls as ""
  EXPECT_EQ(prompt_text(t, cols, 0, "\n\n"), "q1\n\n");
  auto rows = to_conversation_rows(t, spec);
  EXPECT_EQ(rows[1].prompt, "\n\nctx");
  EXPECT_EQ(rows[1].answer, "a3");
}

TEST(DatasetColumns, ConversationsGroupChainsAndSiblings) {
  auto t = parse_csv(kChained, "c.csv");
  std::vector<std::string> w;
  ColumnSpec spec;
  spec.prompt_columns = {"instruction"};
  auto conv = find_conversations(t, resolve_columns(t, spec, "train", w));
  ASSERT_EQ(conv.groups.size(), 6u);
  EXPECT_EQ(conv.groups[0], (std::vector<std::size_t>{0, 1, 2}));  // "2.0" matches id 2
  EXPECT_EQ(conv.groups[1], (std::vector<std::size_t>{3, 4, 5}));  // siblings share their parent's group
  EXPECT_EQ(conv.chained_rows, 4u);
  EXPECT_EQ(conv.dangling_parent_ids, 0u);
  auto rows = to_conversation_rows(t, spec);
  EXPECT_EQ(rows[2].parent_id, std::optional<std::string>("2"));
  EXPECT_FALSE(rows[0].parent_id);
  // the prompt formatter accepts the rows as they are
  auto chains = llmstudio::tokenizer::build_conversation_chains(rows, true);
  EXPECT_EQ(chains.size(), 7u);  // conversation ends: 3, 5, 6, 7, 8, 9, 10
}

TEST(DatasetColumns, BrokenChainsAreErrorsOrCountedWarnings) {
  std::vector<std::string> w;
  ColumnSpec spec;
  spec.prompt_columns = {"instruction"};
  auto check = [&](const std::string& csv) {
    auto t = parse_csv(csv, "chain.csv");
    return find_conversations(t, resolve_columns(t, spec, "train", w));
  };
  EXPECT_ERROR_HAS(check("id,parent_id,instruction,output\n1,,a,b\n1,,c,d\n"), "duplicate id \"1\"", "rows 1 and 2");
  EXPECT_ERROR_HAS(check("id,parent_id,instruction,output\n1,,a,b\n2,2,c,d\n"), "data row 2", "names itself");
  EXPECT_ERROR_HAS(check("id,parent_id,instruction,output\n0,,r,r\n1,3,a,b\n2,1,c,d\n3,2,e,f\n"), "circular parent chain",
                   "3 rows", "\"1\"", "\"2\"", "\"3\"");
  auto conv = check("id,parent_id,instruction,output\n1,,a,b\n2,99,c,d\n3,2,e,f\n4,98,g,h\n");
  EXPECT_EQ(conv.dangling_parent_ids, 2u);
  EXPECT_EQ(conv.groups.size(), 3u);  // {1}, {2,3}, {4}
}

// ---- split and sampling -------------------------------------------------------------------------------------

TEST(DatasetSplit, SeededSizesAndDeterminism) {
  std::vector<std::vector<std::size_t>> groups;
  for (std::size_t i = 0; i < 200; ++i) groups.push_back({i});
  auto [tr, va] = split_groups(groups, 0.1, 1337);
  EXPECT_EQ(va.size(), 20u);
  EXPECT_EQ(tr.size(), 180u);
  EXPECT_TRUE(std::is_sorted(va.begin(), va.end()));
  auto again = split_groups(groups, 0.1, 1337);
  EXPECT_EQ(again.second, va);
  EXPECT_NE(split_groups(groups, 0.1, 1338).second, va);
  std::set<std::size_t> all(tr.begin(), tr.end());
  all.insert(va.begin(), va.end());
  EXPECT_EQ(all.size(), 200u);  // a partition
  EXPECT_EQ(split_groups(groups, 0.011, 1).second.size(), 3u);  // ceil, like sklearn
  EXPECT_EQ(split_groups({{0}, {1}}, 0.01, 1).second.size(), 1u);
  EXPECT_ERROR_HAS(split_groups({{0, 1, 2}}, 0.5, 1), "need at least 2");
}

TEST(DatasetSplit, SamplingKeepsH2OsMinimumAndWholeGroups) {
  std::vector<std::vector<std::size_t>> rows;
  for (std::size_t i = 0; i < 100; ++i) rows.push_back({i});
  EXPECT_EQ(sample_groups(rows, 0.5, 7331, false).size(), 50u);
  EXPECT_EQ(sample_groups(rows, 0.01, 7331, false).size(), 10u);  // at least 10 rows
  EXPECT_EQ(sample_groups(rows, 1.0, 7331, false).size(), 100u);
  EXPECT_EQ(sample_groups(rows, 0.5, 7331, false), sample_groups(rows, 0.5, 7331, false));
  std::vector<std::vector<std::size_t>> convs = {{0, 1, 2}, {3, 4}, {5}, {6, 7}};
  auto kept = sample_groups(convs, 0.5, 7331, true);  // 2 of 4 conversations, whole
  std::set<std::size_t> k(kept.begin(), kept.end());
  for (const auto& g : convs) {
    std::size_t in = 0;
    for (auto r : g) in += k.count(r);
    EXPECT_TRUE(in == 0 || in == g.size());
  }
  EXPECT_EQ(sample_groups(convs, 0.1, 7331, true).size() > 0, true);
}

TEST_F(DatasetFiles, AutomaticSplitKeepsConversationsTogether) {
  DatasetSpec spec;
  spec.train_dataframe = write("train.csv", kChained).string();
  spec.columns.prompt_columns = {"instruction"};
  spec.columns.system_column = "None";
  spec.validation_size = 0.5;  // 3 of 6 conversations
  auto d = prepare_datasets(spec);
  EXPECT_EQ(d.report.train_file_rows, 10u);
  EXPECT_EQ(d.report.conversations, 6u);
  EXPECT_EQ(d.train.num_rows() + d.validation.num_rows(), 10u);
  auto ids = [](const Table& t) {
    std::set<std::string> s;
    for (std::size_t r = 0; r < t.num_rows(); ++r) s.insert(*t.cell(r, t.column_index("id")));
    return s;
  };
  auto tr = ids(d.train), va = ids(d.validation);
  for (auto conv : {std::vector<std::string>{"1", "2", "3"}, std::vector<std::string>{"4", "5", "6"}}) {
    std::size_t in_train = 0;
    for (const auto& id : conv) in_train += tr.count(id);
    EXPECT_TRUE(in_train == 0 || in_train == 3) << "conversation " << conv[0] << " straddles the split";
  }
  auto again = prepare_datasets(spec);
  EXPECT_EQ(ids(again.validation), va);
  EXPECT_TRUE(d.report.warnings.empty()) << d.report.warnings[0];
}

TEST_F(DatasetFiles, CustomValidationSampleAndWarnings) {
  DatasetSpec spec;
  spec.train_dataframe = "train.csv";
  write("train.csv", "instruction,output\nq1,a1\n,a2\nq3,\n" + [] {
    std::string s;
    for (int i = 4; i <= 40; ++i) s += "q" + std::to_string(i) + ",a" + std::to_string(i) + "\n";
    return s;
  }());
  write("val.jsonl", "{\"instruction\": \"v1\", \"output\": \"w1\"}\n{\"instruction\": \"v2\", \"output\": \"w2\"}\n");
  spec.validation_strategy = "custom";
  spec.validation_dataframe = "val.jsonl";
  spec.columns.prompt_columns = {"instruction"};
  spec.columns.system_column = "None";
  spec.columns.parent_id_column = "None";
  spec.data_sample = 0.5;
  spec.sample_validation = false;
  auto d = prepare_datasets(spec, dir_);  // relative paths from dir_
  EXPECT_EQ(d.report.train_file_rows, 40u);
  EXPECT_EQ(d.report.dropped_empty_prompts, 1u);
  EXPECT_EQ(d.report.empty_answers, 1u);
  EXPECT_EQ(d.train.num_rows(), 19u);  // floor(0.5 * 39)
  EXPECT_EQ(d.validation.num_rows(), 2u);  // not sampled
  ASSERT_EQ(d.report.warnings.size(), 2u);
  EXPECT_NE(d.report.warnings[0].find("dropped 1 row(s) with an empty prompt"), std::string::npos);

  spec.train_validation_data = true;
  spec.data_sample = 1.0;
  EXPECT_EQ(prepare_datasets(spec, dir_).train.num_rows(), 41u);

  spec.validation_dataframe = "None";
  EXPECT_ERROR_HAS(prepare_datasets(spec, dir_), "validation_dataframe is not set");
  spec.validation_strategy = "kfold";
  EXPECT_ERROR_HAS(prepare_datasets(spec, dir_), "kfold", "automatic, custom");
  spec.validation_strategy = "automatic";
  spec.train_dataframe = write("header_only.csv", "instruction,output\n").string();
  EXPECT_ERROR_HAS(prepare_datasets(spec, dir_), "header_only.csv", "no data rows");
  spec.train_dataframe = write("all_empty.csv", "instruction,output\n,a\n,b\n").string();
  EXPECT_ERROR_HAS(prepare_datasets(spec, dir_), "no rows left");
}

TEST(DatasetSplit, ExampleDatasetSplits) {
  auto root = fs::path(LLMS_SHARED_FIXTURES).parent_path().parent_path().parent_path();
  DatasetSpec spec;
  spec.train_dataframe = (root / "examples" / "data" / "train.csv").string();
  spec.columns.prompt_columns = {"instruction"};
  spec.columns.system_column = "None";
  spec.validation_size = 0.1;
  auto d = prepare_datasets(spec);
  EXPECT_GE(d.report.train_file_rows, 180u);
  EXPECT_GT(d.validation.num_rows(), 0u);
  EXPECT_LT(d.report.conversations, d.report.train_file_rows);  // some rows are chained
  EXPECT_EQ(d.train.num_rows() + d.validation.num_rows(), d.report.train_file_rows);
  EXPECT_TRUE(d.report.warnings.empty()) << d.report.warnings[0];
}
