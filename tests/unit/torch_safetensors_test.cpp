// Safetensors on libtorch: write/read round trips for every dtype, zero-copy views over the mapping,
// misaligned data copied, lazy listing, sharded save + load via the index, and clear errors.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <filesystem>
#include <fstream>

#include "llmstudio/core/error.h"
#include "llmstudio/io/atomic_file.h"
#include "llmstudio/io/safetensors.h"

namespace fs = std::filesystem;
using namespace llmstudio;
using namespace llmstudio::io;

namespace {

fs::path fresh_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("llms_st_" + name + "_" + std::to_string(::getpid()));
  io::remove_tree(d);
  fs::create_directories(d);
  return d;
}

// Deterministic values of any dtype (through a double/int64 arange).
at::Tensor sample(at::ScalarType t, at::IntArrayRef shape, int seed) {
  auto n = c10::multiply_integers(shape);
  at::Tensor base = at::arange(n, at::kLong).add(seed).reshape(shape);
  if (t == at::kBool) return base.remainder(3).eq(0);
  if (at::isFloatingType(t)) return base.to(at::kDouble).mul(0.5).sub(3).to(t);
  if (t == at::kByte || t == at::kUInt16 || t == at::kUInt32 || t == at::kUInt64) return base.remainder(200).to(t);
  return base.sub(5).to(t);
}

bool same_bytes(const at::Tensor& a, const at::Tensor& b) {
  if (a.scalar_type() != b.scalar_type() || a.sizes() != b.sizes()) return false;
  auto ac = a.contiguous(), bc = b.contiguous();
  return std::memcmp(ac.data_ptr(), bc.data_ptr(), ac.nbytes()) == 0;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Safetensors, RoundTripEveryDtypeScalarsAndEmpty) {
  auto dir = fresh_dir("rt");
  const at::ScalarType types[] = {at::kFloat, at::kHalf, at::kBFloat16, at::kDouble, at::kChar, at::kShort,
                                  at::kInt,   at::kLong, at::kByte,     at::kBool,   at::kFloat8_e4m3fn,
                                  at::kFloat8_e5m2, at::kUInt16, at::kUInt32, at::kUInt64};
  NamedTensors in;
  int seed = 0;
  for (auto t : types) {
    in.emplace_back(std::string("t_") + c10::toString(t), sample(t, {3, 5}, seed++));
    in.emplace_back(std::string("s_") + c10::toString(t), sample(t, {}, seed++));
    in.emplace_back(std::string("e_") + c10::toString(t), at::empty({0, 4}, at::TensorOptions().dtype(t)));
  }
  save_safetensors(dir / "a.safetensors", in, {{"format", "pt"}, {"note", "ünïcode"}});

  auto f = SafetensorsFile::open(dir / "a.safetensors");
  EXPECT_EQ(f->metadata().at("format"), "pt");
  EXPECT_EQ(f->metadata().at("note"), "ünïcode");
  EXPECT_EQ(f->tensors().size(), in.size());
  for (const auto& [name, t] : in) {
    at::Tensor r = f->tensor(name);
    EXPECT_TRUE(same_bytes(r, t)) << name;
    EXPECT_EQ(r.device(), at::Device(at::kCPU));
    EXPECT_EQ(f->info(name).shape, std::vector<std::int64_t>(t.sizes().begin(), t.sizes().end()));
    if (t.numel() > 0)
      EXPECT_EQ(reinterpret_cast<std::uintptr_t>(r.data_ptr()) % r.element_size(), 0u) << name << " misaligned";
  }
  // The data section starts at a multiple of 8 and larger elements come first.
  auto hdr_bytes = f->mapping()->bytes();
  std::uint64_t n = 0;
  std::memcpy(&n, hdr_bytes.data(), 8);
  EXPECT_EQ((8 + n) % 8, 0u);
  EXPECT_EQ(dtype_size(f->tensors().front().dtype), 8u);
}

TEST(Safetensors, TensorsViewTheMappingWithoutCopy) {
  auto dir = fresh_dir("zc");
  save_safetensors(dir / "z.safetensors", {{"w", sample(at::kFloat, {64, 64}, 1)}});
  at::Tensor t;
  const std::byte* map_begin = nullptr;
  std::size_t map_size = 0;
  {
    auto f = SafetensorsFile::open(dir / "z.safetensors");
    map_begin = f->mapping()->data();
    map_size = f->mapping()->size();
    t = f->tensor("w");
    auto p = reinterpret_cast<const std::byte*>(t.data_ptr());
    EXPECT_GE(p, map_begin);
    EXPECT_LE(p + t.nbytes(), map_begin + map_size) << "tensor must point into the mapping";
  }
  // The file object is gone; the tensor keeps the mapping alive.
  EXPECT_TRUE(same_bytes(t, sample(at::kFloat, {64, 64}, 1)));
  at::Tensor moved = t.to(at::kDouble);
  EXPECT_NE(moved.data_ptr(), t.data_ptr());
}

TEST(Safetensors, MisalignedDataIsCopiedToAlignedMemory) {
  auto dir = fresh_dir("mis");
  // Header of odd length (no padding) then an F32 tensor: the data starts at an odd address.
  std::string hdr = R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})";
  if ((8 + hdr.size()) % 4 == 0) hdr += " ";
  std::string bytes(8, '\0');
  std::uint64_t n = hdr.size();
  std::memcpy(bytes.data(), &n, 8);
  float vals[3] = {1.5f, -2.0f, 3.25f};
  bytes += hdr + std::string(reinterpret_cast<const char*>(vals), 12);
  write_file_atomic(dir / "m.safetensors", bytes);
  auto f = SafetensorsFile::open(dir / "m.safetensors");
  at::Tensor t = f->tensor("w");
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(t.data_ptr()) % 4, 0u);
  EXPECT_TRUE(at::equal(t, at::tensor({1.5f, -2.0f, 3.25f})));
}

TEST(Safetensors, NonContiguousAndDerivedInputsAreWrittenAsValues) {
  auto dir = fresh_dir("nc");
  at::Tensor base = sample(at::kFloat, {4, 6}, 3);
  at::Tensor tr = base.t();                                    // transposed view
  at::Tensor sl = base.slice(1, 1, 5, 2);                      // strided slice
  at::Tensor ex = at::tensor({7.0f}).expand({3, 2});           // stride-0 broadcast
  save_safetensors(dir / "n.safetensors", {{"tr", tr}, {"sl", sl}, {"ex", ex}});
  auto f = SafetensorsFile::open(dir / "n.safetensors");
  EXPECT_TRUE(at::equal(f->tensor("tr"), tr));
  EXPECT_TRUE(at::equal(f->tensor("sl"), sl));
  EXPECT_TRUE(at::equal(f->tensor("ex"), ex));
}

TEST(Safetensors, LazyListingAndLookups) {
  auto dir = fresh_dir("lazy");
  save_safetensors(dir / "l.safetensors", {{"b", sample(at::kHalf, {2}, 0)}, {"a", sample(at::kLong, {1, 2, 3}, 0)}});
  auto f = SafetensorsFile::open(dir / "l.safetensors");
  auto names = f->names();
  EXPECT_EQ(names.size(), 2u);
  EXPECT_TRUE(f->contains("a"));
  EXPECT_FALSE(f->contains("c"));
  EXPECT_EQ(f->info("a").dtype, StDtype::I64);
  EXPECT_EQ(f->info("a").shape, (std::vector<std::int64_t>{1, 2, 3}));
  EXPECT_EQ(f->info("b").dtype, StDtype::F16);
  auto msg = error_of([&] { f->info("c"); });
  EXPECT_NE(msg.find("no tensor 'c'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("l.safetensors"), std::string::npos) << msg;
}

TEST(Safetensors, ShardedSaveAndLoad) {
  auto dir = fresh_dir("shard");
  NamedTensors in;
  for (int i = 0; i < 7; ++i) in.emplace_back("layer." + std::to_string(i) + ".w", sample(at::kFloat, {10, 10}, i));
  in.emplace_back("big", sample(at::kBFloat16, {40, 40}, 9));  // 3200 bytes > limit: own shard
  auto res = save_sharded(dir, in, 1000, {{"format", "pt"}});
  // 400 bytes each: 2 per shard -> 4 shards for 7 tensors, then 1 for big.
  ASSERT_EQ(res.files.size(), 5u);
  EXPECT_EQ(res.files[0].filename(), "model-00001-of-00005.safetensors");
  EXPECT_EQ(res.files[4].filename(), "model-00005-of-00005.safetensors");
  EXPECT_EQ(res.index, dir / "model.safetensors.index.json");
  EXPECT_EQ(res.total_size, 7u * 400 + 3200);

  auto ck = SafetensorsCheckpoint::open(dir);
  EXPECT_TRUE(ck.sharded());
  EXPECT_EQ(ck.size(), in.size());
  EXPECT_EQ(ck.files().size(), 5u);
  EXPECT_EQ(ck.metadata().at("total_size"), std::to_string(res.total_size));
  EXPECT_EQ(ck.metadata().at("format"), "pt");
  for (const auto& [name, t] : in) EXPECT_TRUE(same_bytes(ck.tensor(name), t)) << name;
  EXPECT_EQ(ck.file_of("big").path().filename(), "model-00005-of-00005.safetensors");
  EXPECT_EQ(ck.info("big").dtype, StDtype::BF16);
  EXPECT_EQ(ck.file_of("big").metadata().at("format"), "pt");

  auto all = load_safetensors_dir(dir / "model.safetensors.index.json");
  EXPECT_EQ(all.size(), in.size());

  // Re-saving into one file replaces the index, so the folder loads the new single file.
  auto res2 = save_sharded(dir, {{"only", sample(at::kInt, {2}, 0)}}, 1000);
  EXPECT_TRUE(res2.index.empty());
  auto ck2 = SafetensorsCheckpoint::open(dir);
  EXPECT_FALSE(ck2.sharded());
  EXPECT_EQ(ck2.names(), std::vector<std::string>{"only"});
}

TEST(Safetensors, BrokenIndexesAreClearErrors) {
  auto dir = fresh_dir("badidx");
  save_safetensors(dir / "s1.safetensors", {{"a", sample(at::kFloat, {2}, 0)}});
  auto idx = dir / "model.safetensors.index.json";
  write_file_atomic(idx, R"({"weight_map": {"a": "s1.safetensors", "b": "s1.safetensors"}})");
  auto msg = error_of([&] { SafetensorsCheckpoint::open(dir); });
  EXPECT_NE(msg.find("maps tensor 'b'"), std::string::npos) << msg;
  write_file_atomic(idx, R"({"weight_map": {"a": "missing.safetensors"}})");
  msg = error_of([&] { SafetensorsCheckpoint::open(dir); });
  EXPECT_NE(msg.find("does not exist"), std::string::npos) << msg;
  write_file_atomic(idx, R"({"weight_map": {"a": "../x.safetensors"}})");
  msg = error_of([&] { SafetensorsCheckpoint::open(dir); });
  EXPECT_NE(msg.find("relative path inside"), std::string::npos) << msg;
  write_file_atomic(idx, R"({"weight_map": [1]})");
  msg = error_of([&] { SafetensorsCheckpoint::open(dir); });
  EXPECT_NE(msg.find("weight_map"), std::string::npos) << msg;
  write_file_atomic(idx, R"({"weight_map": )");
  msg = error_of([&] { SafetensorsCheckpoint::open(dir); });
  EXPECT_NE(msg.find("not valid JSON"), std::string::npos) << msg;
}

TEST(Safetensors, OpenErrorsNameTheFile) {
  auto dir = fresh_dir("err");
  auto msg = error_of([&] { SafetensorsFile::open(dir / "nope.safetensors"); });
  EXPECT_NE(msg.find("nope.safetensors"), std::string::npos) << msg;
  write_file_atomic(dir / "short.safetensors", "abc");
  msg = error_of([&] { SafetensorsFile::open(dir / "short.safetensors"); });
  EXPECT_NE(msg.find("short.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("3 bytes"), std::string::npos) << msg;
  write_file_atomic(dir / "empty.safetensors", "");
  msg = error_of([&] { SafetensorsFile::open(dir / "empty.safetensors"); });
  EXPECT_NE(msg.find("0 bytes"), std::string::npos) << msg;
  msg = error_of([&] { SafetensorsCheckpoint::open(dir / "none"); });
  EXPECT_NE(msg.find("does not exist"), std::string::npos) << msg;
}

TEST(Safetensors, WriterRejectsUnstorableTensors) {
  auto dir = fresh_dir("wr");
  EXPECT_THROW(save_safetensors(dir / "c.safetensors", {{"c", at::zeros({2}, at::kComplexFloat)}}), Error);
  EXPECT_THROW(save_safetensors(dir / "d.safetensors", {{"a", at::zeros({2})}, {"a", at::zeros({2})}}), Error);
  EXPECT_THROW(save_safetensors(dir / "u.safetensors", {{"u", at::Tensor()}}), Error);
  EXPECT_THROW(save_sharded(dir / "s", {{"a", at::zeros({2})}}, 0), Error);
  EXPECT_FALSE(fs::exists(dir / "d.safetensors")) << "failed writes leave nothing behind";
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator{}), 0);
}
