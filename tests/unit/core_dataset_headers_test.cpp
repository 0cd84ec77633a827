// Dataset headers (data/table.h, csv_reader, jsonl_reader): pandas' renaming of repeated names, linear in the
// header size, the column cap, and JSONL lines nested too deep. Expected names were produced by pandas 3.1's
// read_csv (tests/parity/test_dataset_readers.py compares with pandas itself).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "llmstudio/core/error.h"
#include "llmstudio/data/csv_reader.h"
#include "llmstudio/data/jsonl_reader.h"
#include "llmstudio/data/table.h"

using llmstudio::Error;
using namespace llmstudio::data;
using Names = std::vector<std::string>;

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

Names csv_header(const std::string& header) { return parse_csv(header + "\n", "h.csv").column_names(); }

// How much longer `run(n)` takes for 16x the size: about 16 when the work is linear (more with hash-map growth and
// a working set that outgrows the caches: 23-25 measured for 2,500 -> 40,000 names), 256 when it is
// quadratic. The best of three runs per size; a ratio, not a time, so that slow machines (qemu in test-arm64) pass as
// well; callers bound it at 96, far from both.
double growth_for_16x(const std::function<void(int)>& run, int n) {
  auto best = [&](int size) {
    double t = 1e9;
    for (int i = 0; i < 3; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      run(size);
      t = std::min(t, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return t;
  };
  const double small = best(n / 16), large = best(n);
  std::printf("  size %d: %.4f s, size %d: %.4f s, ratio %.1f (linear 16, n log n ~20, quadratic 256)\n", n / 16, small,
              n, large, large / small);
  return large / small;
}

}  // namespace

TEST(DatasetHeaders, RepeatedNamesAreRenamedLikePandas) {
  EXPECT_EQ(csv_header("a,a,a.1"), (Names{"a", "a.2", "a.1"}));
  EXPECT_EQ(csv_header("a,a.1,a"), (Names{"a", "a.1", "a.2"}));
  EXPECT_EQ(csv_header("a.1,a,a"), (Names{"a.1", "a", "a.2"}));
  EXPECT_EQ(csv_header("a,a,a.1,a.1"), (Names{"a", "a.2", "a.1", "a.1.1"}));
  EXPECT_EQ(csv_header("a.2,a,a,a"), (Names{"a.2", "a", "a.1", "a.3"}));
  EXPECT_EQ(csv_header("a,a.1,a.1,a,a"), (Names{"a", "a.1", "a.1.1", "a.2", "a.3"}));
  EXPECT_EQ(csv_header("a.1,a.1,a,a,a.1.1"), (Names{"a.1", "a.1.2", "a", "a.2", "a.1.1"}));
  EXPECT_EQ(csv_header("x.1,x,x,x.1"), (Names{"x.1", "x", "x.2", "x.1.1"}));
  EXPECT_EQ(csv_header("a.2,a.1,a,a,a"), (Names{"a.2", "a.1", "a", "a.3", "a.4"}));
  // Empty names: "Unnamed: <i>", renamed after the named columns.
  EXPECT_EQ(csv_header(",a,"), (Names{"Unnamed: 0", "a", "Unnamed: 2"}));
  EXPECT_EQ(csv_header("Unnamed: 2,x,"), (Names{"Unnamed: 2", "x", "Unnamed: 2.1"}));
  EXPECT_EQ(csv_header("b,,b,"), (Names{"b", "Unnamed: 1", "b.1", "Unnamed: 3"}));
  // Parquet's reader calls it without unnamed positions.
  EXPECT_EQ(dedup_column_names({"a", "a", "a.1"}), (Names{"a", "a.2", "a.1"}));
}

TEST(DatasetHeaders, ManyIdenticalNamesAreLinear) {
  auto identical = [](int n) {
    std::string header = "q";
    for (int i = 1; i < n; ++i) header += ",q";
    return header;
  };
  Names names = csv_header(identical(10000));
  ASSERT_EQ(names.size(), 10000u);
  EXPECT_EQ(names[1], "q.1");
  EXPECT_EQ(names[9999], "q.9999");
  std::printf("renaming n identical names:\n");  // the renaming alone: the readers cap a file at 10,000 columns
  const double growth = growth_for_16x([](int n) { dedup_column_names(Names(static_cast<std::size_t>(n), "q")); }, 40000);
  EXPECT_LT(growth, 96.0);  // the quadratic/cubic renaming took minutes for 10,000 names
}

TEST(DatasetHeaders, TooManyColumnsAreRefusedNamingTheFile) {
  std::string header = "c";
  for (int i = 1; i < 200000; ++i) header += ",c";
  const std::string msg = error_of([&] { parse_csv(header + "\n", "wide.csv"); });
  EXPECT_NE(msg.find("wide.csv"), std::string::npos) << msg;
  EXPECT_NE(msg.find("200000 columns"), std::string::npos) << msg;
  EXPECT_NE(msg.find("limit of 10000"), std::string::npos) << msg;
  // Exactly at the cap is fine.
  std::string at_cap = "c0";
  for (int i = 1; i < 10000; ++i) at_cap += ",c" + std::to_string(i);
  EXPECT_EQ(parse_csv(at_cap + "\n", "ok.csv").num_columns(), 10000u);
  // JSONL discovers columns line by line: the cap applies there too.
  std::string keys = "{";
  for (int i = 0; i <= 10000; ++i) keys += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":1";
  keys += "}\n";
  EXPECT_NE(error_of([&] { parse_jsonl(keys, "wide.jsonl"); }).find("limit of 10000"), std::string::npos);
}

TEST(DatasetHeaders, DeeplyNestedJsonlLineIsRefused) {
  const std::string deep = "{\"a\":" + std::string(200000, '[') + std::string(200000, ']') + "}";
  std::string msg = error_of([&] { parse_jsonl("{\"a\": 1}\n" + deep + "\n", "deep.jsonl"); });
  EXPECT_NE(msg.find("deep.jsonl: line 2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("nested deeper than the limit of 64"), std::string::npos) << msg;
  msg = error_of([&] { parse_jsonl("[" + deep + "]", "deep.json"); });
  EXPECT_NE(msg.find("nested deeper"), std::string::npos) << msg;
  // Nested values within the limit become compact JSON cells, as before.
  Table t = parse_jsonl("{\"a\": [[1, {\"b\": \"[x]\"}]]}\n", "ok.jsonl");
  EXPECT_EQ(*t.cell(0, 0), "[[1,{\"b\":\"[x]\"}]]");
  // A syntax error keeps the JSON Lines hint.
  msg = error_of([&] { parse_jsonl("{\"a\": 1}\n{\"a\": 2\n", "b.jsonl"); });
  EXPECT_NE(msg.find("b.jsonl: line 2: not valid JSON"), std::string::npos) << msg;
  EXPECT_NE(msg.find("one complete JSON object per line"), std::string::npos) << msg;
}

TEST(DatasetHeaders, JsonlRowsAreLinearInTheirKeysAndKeepFileOrder) {
  // 20 lines of n keys: ordered_json's linear key search made each line n^2/2 comparisons.
  auto wide = [](int n) {
    std::string line = "{";
    for (int i = 0; i < n; ++i) line += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":" + std::to_string(i);
    line += "}\n";
    std::string text;
    for (int r = 0; r < 20; ++r) text += line;
    return text;
  };
  Table t = parse_jsonl(wide(10000), "wide.jsonl");
  ASSERT_EQ(t.num_columns(), 10000u);
  ASSERT_EQ(t.num_rows(), 20u);
  EXPECT_EQ(*t.cell(19, 9999), "9999");
  std::printf("JSONL of 20 lines of n keys:\n");
  const double growth = growth_for_16x([&](int n) { parse_jsonl(wide(n), "wide.jsonl"); }, 10000);
  EXPECT_LT(growth, 96.0);
  // Nested values: compact JSON in file order; a repeated top-level key keeps the last value at the first place.
  t = parse_jsonl(R"({"a": {"z": 1, "b": [1.0, 1e-05, true, {"y": null, "x": "s\"q"}], "e": {}}, "n": 2, "a2": [], "n": 3})",
                  "n.jsonl");
  EXPECT_EQ(t.column_names(), (Names{"a", "n", "a2"}));
  EXPECT_EQ(*t.cell(0, 0), R"({"z":1,"b":[1.0,1e-05,true,{"y":null,"x":"s\"q"}],"e":{}})");
  EXPECT_EQ(*t.cell(0, 1), "3");
  EXPECT_EQ(*t.cell(0, 2), "[]");
  // Records that are not objects, in either layout.
  EXPECT_NE(error_of([] { parse_jsonl("[{\"a\": 1}, [2, {\"b\": 1}]]", "r.json"); }).find("array element 1 is a JSON array"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_jsonl("[{\"a\": 1}, {\"a\": 2}, \"x\"]", "r.json"); }).find("array element 2 is a JSON string"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_jsonl("{\"a\": 1}\n\n5\n", "l.jsonl"); }).find("l.jsonl: line 3: expected a JSON object, found a JSON number"),
            std::string::npos);
  // A syntax error wins over the record type.
  EXPECT_NE(error_of([] { parse_jsonl("[1, 2\n", "l.jsonl"); }).find("not valid JSON"), std::string::npos);
}
