// Safetensors header parser: every malformed case is an llmstudio::Error naming the file and the defect;
// valid headers (incl. ones built by build_safetensors_header) parse to the right tensors and metadata.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "llmstudio/core/error.h"
#include "llmstudio/io/safetensors_header.h"

using namespace llmstudio;
using namespace llmstudio::io;

namespace {

std::string le64(std::uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return s;
}

// 8-byte length + header + data.
std::string file_of(const std::string& header, const std::string& data = "") {
  return le64(header.size()) + header + data;
}

SafetensorsHeader parse(const std::string& bytes) {
  return parse_safetensors_header(std::as_bytes(std::span(bytes.data(), bytes.size())), "t.safetensors");
}

// Parses `bytes`, expects an Error whose message contains every fragment (and the file name).
void expect_error(const std::string& bytes, std::initializer_list<std::string> fragments) {
  try {
    parse(bytes);
    ADD_FAILURE() << "no error for: " << bytes.substr(std::min<std::size_t>(8, bytes.size()));
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("t.safetensors"), std::string::npos) << msg;
    for (const auto& f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << "missing '" << f << "' in: " << msg;
  }
}

std::string u8(const char* name, int begin, int end, const char* shape = nullptr) {
  std::string s = std::string("\"") + name + "\":{\"dtype\":\"U8\",\"shape\":" +
                  (shape ? shape : "[" + std::to_string(end - begin) + "]") + ",\"data_offsets\":[" +
                  std::to_string(begin) + "," + std::to_string(end) + "]}";
  return s;
}

}  // namespace

TEST(SafetensorsHeader, ParsesValidFileSortedByOffsets) {
  std::string h =
      R"({"__metadata__":{"format":"pt","x":""},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},)"
      R"("a":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,8]},"s":{"dtype":"I64","shape":[],"data_offsets":[16,24]}})";
  auto hdr = parse(file_of(h, std::string(24, 'x')));
  ASSERT_EQ(hdr.tensors.size(), 3u);
  EXPECT_EQ(hdr.tensors[0].name, "a");
  EXPECT_EQ(hdr.tensors[0].dtype, StDtype::BF16);
  EXPECT_EQ(hdr.tensors[0].shape, (std::vector<std::int64_t>{2, 2}));
  EXPECT_EQ(hdr.tensors[1].name, "b");
  EXPECT_EQ(hdr.tensors[2].name, "s");
  EXPECT_TRUE(hdr.tensors[2].shape.empty());
  EXPECT_EQ(hdr.tensors[2].numel(), 1u);
  EXPECT_EQ(hdr.metadata.at("format"), "pt");
  EXPECT_EQ(hdr.metadata.at("x"), "");
  EXPECT_EQ(hdr.header_size, h.size());
  EXPECT_EQ(hdr.data_section_offset(), 8 + h.size());
  ASSERT_NE(hdr.find("b"), nullptr);
  EXPECT_EQ(hdr.find("b")->data_begin, 8u);
  EXPECT_EQ(hdr.find("nope"), nullptr);
}

TEST(SafetensorsHeader, EmptyAndZeroSizedTensors) {
  EXPECT_TRUE(parse(file_of("{}")).tensors.empty());
  EXPECT_TRUE(parse(file_of("{}      ")).tensors.empty());  // space padding as the reference writes
  EXPECT_TRUE(parse(file_of(R"({"__metadata__":null})")).metadata.empty());
  // Two empty tensors at the same offset, then a 1-byte tensor.
  auto hdr = parse(file_of("{" + u8("e1", 0, 0, "[0]") + "," + u8("e2", 0, 0, "[3,0]") + "," + u8("x", 0, 1) + "}", "z"));
  ASSERT_EQ(hdr.tensors.size(), 3u);
  EXPECT_EQ(hdr.tensors.back().name, "x");
}

TEST(SafetensorsHeader, AllDtypesHaveSizes) {
  const std::pair<const char*, std::size_t> rows[] = {{"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1},
                                                      {"F8_E4M3", 1}, {"I16", 2}, {"U16", 2}, {"F16", 2},
                                                      {"BF16", 2}, {"I32", 4}, {"U32", 4}, {"F32", 4},
                                                      {"F64", 8},  {"I64", 8}, {"U64", 8}};
  for (auto [name, size] : rows) {
    auto d = parse_dtype(name);
    ASSERT_TRUE(d.has_value()) << name;
    EXPECT_EQ(dtype_size(*d), size) << name;
    EXPECT_EQ(dtype_name(*d), name);
    std::string h = std::string(R"({"t":{"dtype":")") + name + R"(","shape":[3],"data_offsets":[0,)" +
                    std::to_string(3 * size) + "]}}";
    EXPECT_EQ(parse(file_of(h, std::string(3 * size, '\0'))).tensors[0].dtype, *d);
  }
  EXPECT_FALSE(parse_dtype("F128").has_value());
}

TEST(SafetensorsHeader, TooShortFile) {
  expect_error("", {"0 bytes", "shorter than the 8-byte"});
  expect_error("abc", {"3 bytes"});
  expect_error(std::string(7, '\0'), {"7 bytes"});
}

TEST(SafetensorsHeader, HeaderLengthBeyondFileOrAbsurd) {
  expect_error(le64(100) + "{}", {"header length 100", "past the end", "10 bytes"});
  expect_error(le64(kMaxSafetensorsHeaderBytes + 1) + "{}", {"exceeds the limit", "100000000"});
  expect_error(le64(~0ull) + "{}", {"exceeds the limit"});
  expect_error(le64(~0ull - 3) + "{}", {"exceeds the limit"});
  expect_error(le64(0), {"too small"});
}

TEST(SafetensorsHeader, InvalidJsonOrNotAnObject) {
  expect_error(file_of("{\"a\":"), {"not valid JSON"});
  expect_error(file_of("{} x"), {"not valid JSON"});
  expect_error(file_of(std::string("{}\0\0", 4)), {"not valid JSON"});  // NUL padding is not JSON whitespace
  expect_error(file_of("[1,2]"), {"must be a JSON object", "array"});
  expect_error(file_of("\"str\""), {"must be a JSON object"});
  expect_error(file_of("{\"a\":\"\xff\xfe\"}"), {"not valid JSON"});  // invalid UTF-8
}

TEST(SafetensorsHeader, WrongFieldTypes) {
  expect_error(file_of(R"({"t":5})"), {"tensor 't'", "must be an object"});
  expect_error(file_of(R"({"t":{"shape":[1],"data_offsets":[0,1]}})", "x"), {"tensor 't'", "missing \"dtype\""});
  expect_error(file_of(R"({"t":{"dtype":3,"shape":[1],"data_offsets":[0,1]}})", "x"), {"\"dtype\" must be a string"});
  expect_error(file_of(R"({"t":{"dtype":"U8","data_offsets":[0,1]}})", "x"), {"missing \"shape\""});
  expect_error(file_of(R"({"t":{"dtype":"U8","shape":"1","data_offsets":[0,1]}})", "x"), {"\"shape\" must be an array"});
  expect_error(file_of(R"({"t":{"dtype":"U8","shape":[1.0],"data_offsets":[0,1]}})", "x"), {"non-integer number"});
  expect_error(file_of(R"({"t":{"dtype":"U8","shape":[1]}})", "x"), {"missing \"data_offsets\""});
  expect_error(file_of(R"({"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1,2]}})", "x"), {"must be [begin, end]"});
  expect_error(file_of(R"({"t":{"dtype":"U8","shape":[1],"data_offsets":[0]}})", "x"), {"must be [begin, end]"});
  expect_error(file_of(R"({"t":{"dtype":"U8","shape":[1],"data_offsets":{"a":1}}})", "x"), {"must be [begin, end]"});
  expect_error(file_of(R"({"t":{"dtype":"U8","shape":[1],"data_offsets":[-1,1]}})", "x"), {"two non-negative integers"});
  expect_error(file_of(R"({"t":{"dtype":"U8","shape":[1],"data_offsets":["0",1]}})", "x"), {"two non-negative integers"});
}

TEST(SafetensorsHeader, MetadataMustBeStrings) {
  expect_error(file_of(R"({"__metadata__":{"a":1}})"), {"__metadata__ value for 'a'", "must be a string"});
  expect_error(file_of(R"({"__metadata__":{"a":null}})"), {"__metadata__ value for 'a'"});
  expect_error(file_of(R"({"__metadata__":{"a":{"b":"c"}}})"), {"__metadata__ value for 'a'"});
  expect_error(file_of(R"({"__metadata__":["a"]})"), {"__metadata__ must be an object"});
  expect_error(file_of(R"({"__metadata__":"x"})"), {"__metadata__ must be an object"});
}

TEST(SafetensorsHeader, UnknownDtype) {
  expect_error(file_of(R"({"w":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}})", std::string(16, 'x')),
               {"tensor 'w'", "unknown dtype \"F128\""});
  expect_error(file_of(R"({"w":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}})", "xxxx"), {"unknown dtype \"f32\""});
}

TEST(SafetensorsHeader, NegativeOrOverflowingShape) {
  expect_error(file_of(R"({"w":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}})", "x"), {"tensor 'w'", "negative integer -1"});
  expect_error(file_of(R"({"w":{"dtype":"U8","shape":[18446744073709551615],"data_offsets":[0,1]}})", "x"),
               {"does not fit a signed 64-bit"});
  expect_error(file_of(R"({"w":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,1]}})", "x"),
               {"element count overflows"});
  expect_error(file_of(R"({"w":{"dtype":"F64","shape":[4294967296,1073741824],"data_offsets":[0,1]}})", "x"),
               {"byte size overflows"});
}

TEST(SafetensorsHeader, OffsetsNotBeginEnd) {
  expect_error(file_of(R"({"w":{"dtype":"U8","shape":[0],"data_offsets":[1,0]}})", "x"), {"tensor 'w'", "end before they begin"});
}

TEST(SafetensorsHeader, ByteSizeDoesNotMatchShape) {
  expect_error(file_of(R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}})", std::string(20, 'x')),
               {"tensor 'w'", "span 20 bytes", "needs 24 bytes"});
  expect_error(file_of(R"({"w":{"dtype":"F16","shape":[],"data_offsets":[0,4]}})", "xxxx"), {"needs 2 bytes"});
}

TEST(SafetensorsHeader, OffsetsOutOfRange) {
  expect_error(file_of("{" + u8("w", 0, 10) + "}", "xxxx"), {"tensor 'w'", "run past the data section (4 bytes"});
  expect_error(file_of("{" + u8("w", 0, 1) + "," + u8("v", 1, 3) + "}", "xx"), {"tensor 'v'", "run past"});
  expect_error(file_of(R"({"w":{"dtype":"U8","shape":[0],"data_offsets":[18446744073709551615,18446744073709551615]}})"),
               {"tensor 'w'", "should begin at 0"});
}

TEST(SafetensorsHeader, HolesAndOverlapsAreRejected) {
  // Hole at the start.
  expect_error(file_of("{" + u8("w", 2, 4) + "}", "xxxx"), {"tensor 'w'", "should begin at 0", "hole"});
  // Hole between tensors.
  expect_error(file_of("{" + u8("a", 0, 2) + "," + u8("b", 3, 4) + "}", "xxxx"),
               {"tensor 'b'", "should begin at 2", "end of tensor 'a'", "hole"});
  // Overlap.
  expect_error(file_of("{" + u8("a", 0, 3) + "," + u8("b", 2, 4) + "}", "xxxx"), {"tensor 'b'", "overlap"});
  // Two tensors over the same bytes (aliasing).
  expect_error(file_of("{" + u8("a", 0, 4) + "," + u8("b", 0, 4) + "}", "xxxx"), {"overlap"});
  // Trailing bytes nobody uses.
  expect_error(file_of("{" + u8("a", 0, 2) + "}", "xxxx"), {"cover 2 bytes", "data section has 4", "2 trailing"});
  expect_error(file_of("{}", "x"), {"cover 0 bytes", "1 trailing"});
}

TEST(SafetensorsHeader, DuplicateNamesAreRejected) {
  expect_error(file_of("{" + u8("a", 0, 1) + "," + u8("a", 0, 1) + "}", "x"), {"'a' twice"});
}

TEST(SafetensorsHeader, BuildThenParseRoundTrip) {
  std::vector<SafetensorsEntry> entries = {
      {"w", StDtype::F32, {2, 3}}, {"scalar", StDtype::I64, {}}, {"e", StDtype::BF16, {0, 5}}, {"b", StDtype::BOOL, {3}}};
  std::vector<std::pair<std::uint64_t, std::uint64_t>> offsets;
  std::uint64_t data_size = 0;
  std::string bytes = build_safetensors_header(entries, {{"format", "pt"}, {"k", "v\"q"}}, &offsets, &data_size);
  EXPECT_EQ(bytes.size() % 8, 0u) << "data section must start at a multiple of 8";
  EXPECT_EQ(data_size, 24u + 8u + 0u + 3u);
  ASSERT_EQ(offsets.size(), 4u);
  EXPECT_EQ(offsets[1], (std::pair<std::uint64_t, std::uint64_t>{24, 32}));
  // Padding is spaces after the JSON.
  EXPECT_EQ(bytes.back() == ' ' || bytes.back() == '}', true);
  auto hdr = parse(bytes + std::string(data_size, '\0'));
  EXPECT_EQ(hdr.metadata.at("k"), "v\"q");
  ASSERT_EQ(hdr.tensors.size(), 4u);
  EXPECT_EQ(hdr.find("w")->shape, (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(hdr.find("scalar")->data_begin, 24u);
  EXPECT_EQ(hdr.find("e")->nbytes(), 0u);
  EXPECT_EQ(hdr.find("b")->dtype, StDtype::BOOL);
  // The reference's empty-file serialisation: {} padded to 8 bytes.
  EXPECT_EQ(build_safetensors_header({}, {}), le64(8) + "{}      ");
}

TEST(SafetensorsHeader, BuildRejectsBadInput) {
  EXPECT_THROW(build_safetensors_header({{"__metadata__", StDtype::U8, {1}}}, {}), Error);
  EXPECT_THROW(build_safetensors_header({{"a", StDtype::U8, {1}}, {"a", StDtype::U8, {1}}}, {}), Error);
  EXPECT_THROW(build_safetensors_header({{"a", StDtype::U8, {-1}}}, {}), Error);
  EXPECT_THROW(build_safetensors_header({{"bad\xff", StDtype::U8, {1}}}, {}), Error);
}

TEST(SafetensorsHeader, TruncationAtEveryLengthIsAnError) {
  std::string full = build_safetensors_header({{"w", StDtype::F32, {4}}, {"b", StDtype::U8, {3}}}, {{"a", "b"}});
  full += std::string(19, '\1');
  EXPECT_NO_THROW(parse(full));
  for (std::size_t n = 0; n < full.size(); ++n) EXPECT_THROW(parse(full.substr(0, n)), Error) << n;
}
