// GGUF reading: a hand-built valid file parses (metadata of every value type, arrays, tensor infos, alignment),
// each kind of malformed file is an Error naming the file and the defect, and block dequantisation of
// hand-built F16/BF16/Q8_0/Q4_0/Q4_1/Q5_0/Q4_K/Q5_K/Q6_K blocks gives the values the block layout defines.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "llmstudio/core/error.h"
#include "llmstudio/io/atomic_file.h"
#include "llmstudio/io/gguf_dequant.h"
#include "llmstudio/io/gguf_reader.h"
#include "llmstudio/io/gguf_tokenizer.h"

namespace fs = std::filesystem;
using namespace llmstudio;
using namespace llmstudio::io;

namespace {

// Little-endian GGUF image builder.
struct Builder {
  std::vector<std::uint8_t> b;
  template <typename T>
  Builder& put(T v) {
    std::uint8_t tmp[sizeof(T)];
    std::memcpy(tmp, &v, sizeof(T));
    b.insert(b.end(), tmp, tmp + sizeof(T));
    return *this;
  }
  Builder& str(const std::string& s) {
    put<std::uint64_t>(s.size());
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  Builder& kv_u32(const std::string& k, std::uint32_t v) { return str(k).put<std::uint32_t>(4).put(v); }
  Builder& kv_str(const std::string& k, const std::string& v) { return str(k).put<std::uint32_t>(8).str(v); }
  Builder& tensor(const std::string& name, std::vector<std::uint64_t> dims, std::uint32_t type, std::uint64_t off) {
    str(name).put<std::uint32_t>(static_cast<std::uint32_t>(dims.size()));
    for (auto d : dims) put(d);
    return put(type).put(off);
  }
  void pad(std::size_t align) {
    while (b.size() % align) b.push_back(0);
  }
  std::span<const std::byte> bytes() const { return {reinterpret_cast<const std::byte*>(b.data()), b.size()}; }
};

Builder header(std::uint64_t n_tensors, std::uint64_t n_kv, std::uint32_t version = 3) {
  Builder g;
  g.b = {'G', 'G', 'U', 'F'};
  g.put(version).put(n_tensors).put(n_kv);
  return g;
}

// A valid file: 2 metadata entries, one 2x32 F32 tensor and one 32-value Q8_0 tensor.
Builder valid_file() {
  Builder g = header(2, 3);
  g.kv_str("general.architecture", "llama").kv_u32("general.alignment", 64);
  g.str("tokenizer.ggml.scores").put<std::uint32_t>(9).put<std::uint32_t>(6).put<std::uint64_t>(2).put(0.5f).put(-1.0f);
  g.tensor("a.weight", {32, 2}, 0, 0).tensor("b.weight", {32}, 8, 256);
  g.pad(64);
  for (int i = 0; i < 64; ++i) g.put(static_cast<float>(i));
  g.put<std::uint16_t>(0x3C00);  // Q8_0 block at 256: d = 1.0
  for (int i = 0; i < 32; ++i) g.put<std::int8_t>(static_cast<std::int8_t>(i - 16));
  return g;
}

void expect_error(const std::function<void()>& f, std::initializer_list<const char*> parts) {
  try {
    f();
    FAIL() << "expected an Error containing " << *parts.begin();
  } catch (const Error& e) {
    for (const char* p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what() << " / " << p;
  }
}

void expect_parse_error(const Builder& g, std::initializer_list<const char*> parts) {
  std::vector<const char*> all(parts);
  expect_error([&] { parse_gguf(g.bytes(), "bad.gguf"); }, parts);
  expect_error([&] { parse_gguf(g.bytes(), "bad.gguf"); }, {"bad.gguf"});
}

}  // namespace

TEST(GgufReader, ParsesValidFile) {
  const Builder g = valid_file();
  fs::path dir = fs::temp_directory_path() / "llms_gguf_test";
  fs::create_directories(dir);
  write_file_atomic(dir / "ok.gguf", std::string(g.b.begin(), g.b.end()));
  auto f = GgufFile::open(dir / "ok.gguf");
  const auto& h = f->header();
  EXPECT_EQ(h.version, 3u);
  EXPECT_EQ(h.alignment, 64u);
  EXPECT_EQ(f->get("general.architecture").as_string("a"), "llama");
  const auto& scores = f->get("tokenizer.ggml.scores").as_array("s");
  ASSERT_EQ(scores.size(), 2u);
  EXPECT_EQ(scores[1].as_double("s"), -1.0);
  ASSERT_EQ(f->tensors().size(), 2u);
  EXPECT_EQ(f->tensors()[0].torch_shape(), (std::vector<std::int64_t>{2, 32}));
  EXPECT_EQ(h.data_offset % 64, 0u);
  auto a = f->dequantize_tensor(f->tensors()[0]);
  EXPECT_EQ(a[63], 63.0f);
  auto b = f->dequantize_tensor(f->tensors()[1]);
  EXPECT_EQ(b[0], -16.0f);
  EXPECT_EQ(b[31], 15.0f);
  expect_error([&] { f->get("missing.key"); }, {"ok.gguf", "missing.key"});
  expect_error([&] { f->get("general.architecture").as_int("general.architecture"); }, {"expected an integer"});
  fs::remove_all(dir);
}

TEST(GgufReader, AllScalarValueTypes) {
  Builder g = header(0, 12);
  g.str("u8").put<std::uint32_t>(0).put<std::uint8_t>(200);
  g.str("i8").put<std::uint32_t>(1).put<std::int8_t>(-5);
  g.str("u16").put<std::uint32_t>(2).put<std::uint16_t>(60000);
  g.str("i16").put<std::uint32_t>(3).put<std::int16_t>(-300);
  g.str("u32").put<std::uint32_t>(4).put<std::uint32_t>(4000000000u);
  g.str("i32").put<std::uint32_t>(5).put<std::int32_t>(-70000);
  g.str("f32").put<std::uint32_t>(6).put(1.5f);
  g.str("bool").put<std::uint32_t>(7).put<std::uint8_t>(1);
  g.str("u64").put<std::uint32_t>(10).put<std::uint64_t>(1ull << 40);
  g.str("i64").put<std::uint32_t>(11).put<std::int64_t>(-(1ll << 40));
  g.str("f64").put<std::uint32_t>(12).put(2.25);
  g.str("nested").put<std::uint32_t>(9).put<std::uint32_t>(9).put<std::uint64_t>(1)  // [[ "x" ]]
      .put<std::uint32_t>(8).put<std::uint64_t>(1).str("x");
  auto h = parse_gguf(g.bytes(), "types.gguf");
  EXPECT_EQ(h.find("u8")->as_int("u8"), 200);
  EXPECT_EQ(h.find("i8")->as_int("i8"), -5);
  EXPECT_EQ(h.find("u16")->as_int("u16"), 60000);
  EXPECT_EQ(h.find("i16")->as_int("i16"), -300);
  EXPECT_EQ(h.find("u32")->as_int("u32"), 4000000000ll);
  EXPECT_EQ(h.find("i32")->as_int("i32"), -70000);
  EXPECT_EQ(h.find("f32")->as_double("f32"), 1.5);
  EXPECT_TRUE(h.find("bool")->as_bool("bool"));
  EXPECT_EQ(h.find("u64")->as_int("u64"), 1ll << 40);
  EXPECT_EQ(h.find("i64")->as_int("i64"), -(1ll << 40));
  EXPECT_EQ(h.find("f64")->as_double("f64"), 2.25);
  EXPECT_EQ(h.find("nested")->array.at(0).array.at(0).s, "x");
}

TEST(GgufReader, MalformedFilesAreClearErrors) {
  Builder bad_magic = valid_file();
  bad_magic.b[0] = 'X';
  expect_parse_error(bad_magic, {"not a GGUF file"});
  expect_parse_error(header(0, 0, 1), {"unsupported GGUF version 1"});
  expect_parse_error(header(0, 0, 4), {"unsupported GGUF version 4"});
  Builder tiny;
  tiny.b = {'G', 'G', 'U', 'F', 3, 0};
  expect_parse_error(tiny, {"truncated"});
  expect_parse_error(header(0, 1ull << 60), {"metadata count"});
  expect_parse_error(header(1ull << 60, 0), {"tensor count"});

  Builder long_str = header(0, 1);
  long_str.put<std::uint64_t>(1ull << 50).put<std::uint64_t>(0).put<std::uint64_t>(0);  // key length beyond the file
  expect_parse_error(long_str, {"metadata key", "length 1125899906842624"});
  Builder val_str = header(0, 1);
  val_str.str("k").put<std::uint32_t>(8).put<std::uint64_t>(100).put<std::uint32_t>(0);
  expect_parse_error(val_str, {"string value", "length 100"});
  Builder bad_type = header(0, 1);
  bad_type.str("k").put<std::uint32_t>(13).put<std::uint32_t>(0);
  expect_parse_error(bad_type, {"metadata 'k'", "unknown value type 13"});
  Builder big_array = header(0, 1);
  big_array.str("k").put<std::uint32_t>(9).put<std::uint32_t>(6).put<std::uint64_t>(1ull << 40);
  expect_parse_error(big_array, {"metadata 'k'", "cannot fit"});
  Builder bad_bool = header(0, 1);
  bad_bool.str("k").put<std::uint32_t>(7).put<std::uint8_t>(7);
  expect_parse_error(bad_bool, {"bool value 7"});
  Builder bad_align = header(0, 1);
  bad_align.kv_u32("general.alignment", 48);
  expect_parse_error(bad_align, {"general.alignment 48", "power of two"});

  auto with_tensor = [](const std::string& name, std::vector<std::uint64_t> dims, std::uint32_t type,
                        std::uint64_t off, std::size_t data) {
    Builder g = header(1, 0);
    g.tensor(name, std::move(dims), type, off);
    g.pad(32);
    g.b.resize(g.b.size() + data, 0);
    return g;
  };
  expect_parse_error(with_tensor("t", {32}, 77, 0, 128), {"tensor 't'", "unknown ggml type 77"});
  expect_parse_error(with_tensor("t", {32}, 0, 0, 64), {"tensor 't'", "extends past the end"});
  expect_parse_error(with_tensor("t", {32}, 0, 1ull << 62, 128), {"tensor 't'", "extends past the end"});
  expect_parse_error(with_tensor("t", {32}, 0, 8, 256), {"tensor 't'", "not a multiple of the alignment 32"});
  expect_parse_error(with_tensor("t", {33}, 8, 0, 256), {"tensor 't'", "block size 32"});
  expect_parse_error(with_tensor("t", {1ull << 32, 1ull << 32, 1ull << 32}, 0, 0, 0), {"tensor 't'", "overflows"});
  expect_parse_error(with_tensor("t", {0}, 0, 0, 0), {"tensor 't'", "invalid dimension 0"});
  Builder dims5 = header(1, 0);
  dims5.str("t").put<std::uint32_t>(5);
  dims5.b.resize(dims5.b.size() + 64, 0);
  expect_parse_error(dims5, {"tensor 't'", "5 dimensions"});
  Builder overlap = header(2, 0);
  overlap.tensor("a", {32}, 0, 0).tensor("b", {32}, 0, 96);
  overlap.pad(32);
  overlap.b.resize(overlap.b.size() + 256, 0);
  expect_parse_error(overlap, {"'a' and 'b' overlap"});
  // The whole-file path names the file too, and a file cut short anywhere is an error, never a crash.
  const Builder ok = valid_file();
  for (std::size_t n = 0; n < ok.b.size(); n += 7) {
    Builder cut;
    cut.b.assign(ok.b.begin(), ok.b.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_THROW(parse_gguf(cut.bytes(), "cut.gguf"), Error) << n;
  }
}

TEST(GgufDequant, HalfAndBfloat) {
  EXPECT_EQ(fp16_to_fp32(0x3C00), 1.0f);
  EXPECT_EQ(fp16_to_fp32(0xC000), -2.0f);
  EXPECT_EQ(fp16_to_fp32(0x7BFF), 65504.0f);
  EXPECT_EQ(fp16_to_fp32(0x0001), 5.9604644775390625e-08f);  // smallest subnormal
  EXPECT_EQ(fp16_to_fp32(0x03FF), 6.097555160522461e-05f);   // largest subnormal
  EXPECT_TRUE(std::isinf(fp16_to_fp32(0x7C00)));
  EXPECT_TRUE(std::isnan(fp16_to_fp32(0x7E00)));
  EXPECT_EQ(bf16_to_fp32(0x3F80), 1.0f);
  EXPECT_EQ(bf16_to_fp32(0xC040), -3.0f);
}

namespace {
std::vector<float> deq(GgmlType t, const std::vector<std::uint8_t>& block, std::size_t n) {
  std::vector<float> out(n);
  dequantize(t, {reinterpret_cast<const std::byte*>(block.data()), block.size()}, out);
  return out;
}
void put_half(std::vector<std::uint8_t>& b, std::size_t at, std::uint16_t h) { std::memcpy(&b[at], &h, 2); }
}  // namespace

TEST(GgufDequant, LegacyBlocks) {
  // Q4_0: d = 0.5; byte j holds value j (low nibble) and value j+16 (high nibble); x = d * (q - 8).
  std::vector<std::uint8_t> q40(18);
  put_half(q40, 0, 0x3800);
  for (int j = 0; j < 16; ++j) q40[2 + j] = static_cast<std::uint8_t>(j | ((15 - j) << 4));
  auto y = deq(GgmlType::Q4_0, q40, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], 0.5f * (j - 8));
    EXPECT_EQ(y[j + 16], 0.5f * (15 - j - 8));
  }
  // Q4_1: d = 2, m = -1: x = d*q + m.
  std::vector<std::uint8_t> q41(20);
  put_half(q41, 0, 0x4000);
  put_half(q41, 2, 0xBC00);
  for (int j = 0; j < 16; ++j) q41[4 + j] = static_cast<std::uint8_t>(j | (3 << 4));
  y = deq(GgmlType::Q4_1, q41, 32);
  EXPECT_EQ(y[5], 2.0f * 5 - 1);
  EXPECT_EQ(y[20], 2.0f * 3 - 1);
  // Q5_0: fifth bits from qh; value 0 has the high bit set, value 16 not: x = d * (q - 16).
  std::vector<std::uint8_t> q50(22);
  put_half(q50, 0, 0x3C00);
  std::uint32_t qh = 1u;
  std::memcpy(&q50[2], &qh, 4);
  q50[6] = 0x21;  // value 0 low nibble 1, value 16 nibble 2
  y = deq(GgmlType::Q5_0, q50, 32);
  EXPECT_EQ(y[0], 1.0f * ((1 | 16) - 16));
  EXPECT_EQ(y[16], 1.0f * (2 - 16));
  // Sizes must match.
  expect_error([&] { deq(GgmlType::Q4_0, q40, 64); }, {"expected 36 bytes"});
  expect_error([&] { deq(GgmlType::IQ2_XXS, std::vector<std::uint8_t>(66), 256); }, {"IQ2_XXS", "not supported"});
}

TEST(GgufDequant, KQuantBlocks) {
  // Q4_K: d = 1, dmin = 0.5; sub-block scales 1..8 and mins 8..1, packed in the 12-byte 6-bit format.
  std::vector<std::uint8_t> b(144, 0);
  put_half(b, 0, 0x3C00);
  put_half(b, 2, 0x3800);
  int sc[8] = {1, 2, 3, 4, 40, 50, 60, 63}, mn[8] = {8, 7, 6, 5, 33, 17, 2, 48};
  std::uint8_t* s = &b[4];
  for (int j = 0; j < 4; ++j) {
    s[j] = static_cast<std::uint8_t>(sc[j] | ((sc[j + 4] >> 4) << 6));
    s[j + 4] = static_cast<std::uint8_t>(mn[j] | ((mn[j + 4] >> 4) << 6));
    s[j + 8] = static_cast<std::uint8_t>((sc[j + 4] & 15) | ((mn[j + 4] & 15) << 4));
  }
  for (int l = 0; l < 128; ++l) b[16 + l] = static_cast<std::uint8_t>((l % 16) | (((l + 3) % 16) << 4));
  auto y = deq(GgmlType::Q4_K, b, 256);
  for (int i = 0; i < 256; ++i) {
    const int chunk = i / 64, within = i % 64, sub = i / 32, l = chunk * 32 + within % 32;
    const int q = within < 32 ? (l % 16) : ((l + 3) % 16);
    EXPECT_FLOAT_EQ(y[i], 1.0f * sc[sub] * q - 0.5f * mn[sub]) << i;
  }
  // Q5_K: same scales, plus the fifth bit of value i (sub-block s, position l) from bit s of qh[l].
  std::vector<std::uint8_t> b5(176, 0);
  std::memcpy(b5.data(), b.data(), 16);
  for (int l = 0; l < 32; ++l) b5[16 + l] = static_cast<std::uint8_t>(l * 37);
  for (int l = 0; l < 128; ++l) b5[48 + l] = b[16 + l];
  y = deq(GgmlType::Q5_K, b5, 256);
  for (int i = 0; i < 256; ++i) {
    const int chunk = i / 64, within = i % 64, sub = i / 32, pos = within % 32, l = chunk * 32 + pos;
    const int lo = within < 32 ? (l % 16) : ((l + 3) % 16);
    const int hi = (static_cast<std::uint8_t>(pos * 37) >> sub) & 1;
    EXPECT_FLOAT_EQ(y[i], 1.0f * sc[sub] * (lo + 16 * hi) - 0.5f * mn[sub]) << i;
  }
  // Q6_K: d = 0.25, int8 scales -8..7; 6-bit codes built from value index, x = d * scale[i/16] * (q - 32).
  std::vector<std::uint8_t> b6(210, 0);
  auto code = [](int i) { return (i * 7 + 3) % 64; };
  for (int i = 0; i < 256; ++i) {
    const int half = i / 128, r = i % 128, quarter = r / 32, l = r % 32;
    const int ql_idx = half * 64 + l + (quarter % 2) * 32, qh_idx = 128 + half * 32 + l;
    const int c = code(i);
    b6[ql_idx] |= static_cast<std::uint8_t>((c & 15) << (quarter >= 2 ? 4 : 0));
    b6[qh_idx] |= static_cast<std::uint8_t>((c >> 4) << (2 * quarter));
  }
  for (int k = 0; k < 16; ++k) b6[192 + k] = static_cast<std::uint8_t>(static_cast<std::int8_t>(k - 8));
  put_half(b6, 208, 0x3400);
  y = deq(GgmlType::Q6_K, b6, 256);
  for (int i = 0; i < 256; ++i) EXPECT_FLOAT_EQ(y[i], 0.25f * (i / 16 - 8) * (code(i) - 32)) << i;
}

TEST(GgufTokenizer, UnsupportedModelsAreClearErrors) {
  GgufHeader h;
  GgufValue m;
  m.type = GgufValueType::STRING;
  m.s = "llama";
  h.metadata.emplace_back("tokenizer.ggml.model", m);
  expect_error([&] { build_gguf_tokenizer(h, "x.gguf"); }, {"x.gguf", "tokenizer.ggml.tokens is missing"});
  h.metadata[0].second.s = "bert";
  expect_error([&] { build_gguf_tokenizer(h, "x.gguf"); }, {"x.gguf", "'bert'"});
}
