// Safetensors reading (mmap, zero-copy at::Tensor views; single file or sharded index) and writing
// (atomic single file, shards + index). See safetensors.h.
#include "llmstudio/io/safetensors.h"

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>

#include "llmstudio/core/error.h"
#include "llmstudio/io/atomic_file.h"
#include "llmstudio/io/json_text.h"

namespace llmstudio::io {
namespace fs = std::filesystem;

namespace {

void require_little_endian() {
  if constexpr (std::endian::native != std::endian::little) {
    fail("safetensors stores little-endian data; this big-endian host is not supported");
  }
}

constexpr const char* kIndexName = "model.safetensors.index.json";
constexpr const char* kSingleName = "model.safetensors";

}  // namespace

at::ScalarType to_scalar_type(StDtype d) {
  switch (d) {
    case StDtype::BOOL: return at::kBool;
    case StDtype::U8: return at::kByte;
    case StDtype::I8: return at::kChar;
    case StDtype::F8_E5M2: return at::kFloat8_e5m2;
    case StDtype::F8_E4M3: return at::kFloat8_e4m3fn;
    case StDtype::I16: return at::kShort;
    case StDtype::U16: return at::kUInt16;
    case StDtype::F16: return at::kHalf;
    case StDtype::BF16: return at::kBFloat16;
    case StDtype::I32: return at::kInt;
    case StDtype::U32: return at::kUInt32;
    case StDtype::F32: return at::kFloat;
    case StDtype::F64: return at::kDouble;
    case StDtype::I64: return at::kLong;
    case StDtype::U64: return at::kUInt64;
  }
  fail("safetensors dtype ", static_cast<int>(d), " has no torch equivalent");
}

StDtype to_st_dtype(at::ScalarType t) {
  switch (t) {
    case at::kBool: return StDtype::BOOL;
    case at::kByte: return StDtype::U8;
    case at::kChar: return StDtype::I8;
    case at::kFloat8_e5m2: return StDtype::F8_E5M2;
    case at::kFloat8_e4m3fn: return StDtype::F8_E4M3;
    case at::kShort: return StDtype::I16;
    case at::kUInt16: return StDtype::U16;
    case at::kHalf: return StDtype::F16;
    case at::kBFloat16: return StDtype::BF16;
    case at::kInt: return StDtype::I32;
    case at::kUInt32: return StDtype::U32;
    case at::kFloat: return StDtype::F32;
    case at::kDouble: return StDtype::F64;
    case at::kLong: return StDtype::I64;
    case at::kUInt64: return StDtype::U64;
    default: break;
  }
  fail("torch dtype ", c10::toString(t), " cannot be stored in safetensors (no matching dtype)");
}

// ---------------------------------------------------------------------------------------------------
// SafetensorsFile

std::shared_ptr<const SafetensorsFile> SafetensorsFile::open(const fs::path& path) {
  require_little_endian();
  std::shared_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->mapping_ = MappedFile::open(path);
  f->header_ = parse_safetensors_header(f->mapping_->bytes(), path.string());
  return f;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(header_.tensors.size());
  for (const auto& t : header_.tensors) out.push_back(t.name);
  return out;
}

const SafetensorsTensorInfo& SafetensorsFile::info(std::string_view name) const {
  const auto* i = header_.find(name);
  LLMS_CHECK(i != nullptr, "safetensors file ", path(), " has no tensor '", name, "' (it has ",
             header_.tensors.size(), " tensors)");
  return *i;
}

std::span<const std::byte> SafetensorsFile::tensor_bytes(const SafetensorsTensorInfo& info) const {
  // Offsets were validated against the mapping size by parse_safetensors_header.
  LLMS_CHECK(header_.data_section_offset() + info.data_end <= mapping_->size(), "tensor '", info.name,
             "' is not a tensor of ", path());
  return mapping_->bytes().subspan(header_.data_section_offset() + info.data_begin, info.nbytes());
}

at::Tensor SafetensorsFile::tensor(std::string_view name) const { return tensor(info(name)); }

at::Tensor SafetensorsFile::tensor(const SafetensorsTensorInfo& info) const {
  const auto bytes = tensor_bytes(info);
  const auto options = at::TensorOptions().dtype(to_scalar_type(info.dtype)).device(at::kCPU);
  const std::vector<int64_t> sizes(info.shape.begin(), info.shape.end());
  if (bytes.empty()) return at::empty(sizes, options);
  const auto addr = reinterpret_cast<std::uintptr_t>(bytes.data());
  if (addr % dtype_size(info.dtype) != 0) {
    // Misaligned for its element type (a writer that did not pad the header): copy to aligned memory.
    at::Tensor copy = at::empty(sizes, options);
    std::memcpy(copy.data_ptr(), bytes.data(), bytes.size());
    return copy;
  }
  return at::from_blob(const_cast<std::byte*>(bytes.data()), sizes, [keep = mapping_](void*) {}, options);
}

// ---------------------------------------------------------------------------------------------------
// SafetensorsCheckpoint

namespace {

fs::path single_safetensors_in(const fs::path& dir) {
  std::vector<fs::path> found, indexes;
  for (const auto& e : fs::directory_iterator(dir)) {
    const auto name = e.path().filename().string();
    if (name.ends_with(".safetensors")) found.push_back(e.path());
    if (name.ends_with(".safetensors.index.json")) indexes.push_back(e.path());
  }
  if (found.size() == 1 && indexes.empty()) return found[0];
  if (indexes.size() == 1) return indexes[0];
  fail("folder ", dir, " has no ", kIndexName, " nor ", kSingleName, ", and ", found.size(),
       " other .safetensors files and ", indexes.size(), " index files: cannot tell which to load");
}

}  // namespace

SafetensorsCheckpoint SafetensorsCheckpoint::open(const fs::path& path) {
  require_little_endian();
  fs::path target = path;
  if (fs::is_directory(path)) {
    if (fs::exists(path / kIndexName))
      target = path / kIndexName;
    else if (fs::exists(path / kSingleName))
      target = path / kSingleName;
    else
      target = single_safetensors_in(path);
  }
  LLMS_CHECK(fs::exists(target), "safetensors checkpoint ", target, " does not exist");

  SafetensorsCheckpoint c;
  if (target.extension() != ".json") {
    c.files_.push_back(SafetensorsFile::open(target));
    for (const auto& t : c.files_[0]->tensors()) c.where_.emplace(t.name, 0);
    c.metadata_ = c.files_[0]->metadata();
    return c;
  }

  c.sharded_ = true;
  const nlohmann::json index = parse_json(read_file(target), "safetensors index " + target.string(), kModelJsonMaxDepth);
  LLMS_CHECK(index.is_object(), "safetensors index ", target, " must be a JSON object");
  auto wm = index.find("weight_map");
  LLMS_CHECK(wm != index.end() && wm->is_object(), "safetensors index ", target,
             " needs a \"weight_map\" object {tensor name: shard file}");
  if (auto md = index.find("metadata"); md != index.end() && md->is_object()) {
    for (auto& [k, v] : md->items()) c.metadata_[k] = v.is_string() ? v.get<std::string>() : v.dump();
  }
  const fs::path dir = target.parent_path();
  std::map<std::string, std::size_t> file_index;
  for (auto& [name, shard] : wm->items()) {
    LLMS_CHECK(shard.is_string(), "safetensors index ", target, ": weight_map['", name,
               "'] must be a file name, found ", json_preview(shard));
    const fs::path rel(shard.get<std::string>());
    bool escapes = rel.is_absolute() || rel.empty();
    for (const auto& part : rel) escapes = escapes || part == "..";
    LLMS_CHECK(!escapes, "safetensors index ", target, ": shard '", rel.string(), "' for tensor '", name,
               "' must be a relative path inside ", dir);
    auto [it, inserted] = file_index.emplace(rel.string(), c.files_.size());
    if (inserted) {
      LLMS_CHECK(fs::exists(dir / rel), "safetensors index ", target, " lists shard '", rel.string(),
                 "' (for tensor '", name, "'), which does not exist");
      c.files_.push_back(SafetensorsFile::open(dir / rel));
    }
    LLMS_CHECK(c.files_[it->second]->contains(name), "safetensors index ", target, " maps tensor '", name,
               "' to shard '", rel.string(), "', which does not contain it");
    c.where_.emplace(name, it->second);
  }
  return c;
}

std::vector<std::string> SafetensorsCheckpoint::names() const {
  std::vector<std::string> out;
  out.reserve(where_.size());
  for (const auto& [n, _] : where_) out.push_back(n);
  return out;
}

bool SafetensorsCheckpoint::contains(std::string_view name) const { return where_.find(name) != where_.end(); }

const SafetensorsFile& SafetensorsCheckpoint::file_of(std::string_view name) const {
  auto it = where_.find(name);
  LLMS_CHECK(it != where_.end(), "safetensors checkpoint has no tensor '", name, "' (",
             files_.empty() ? std::string("empty") : files_[0]->path().parent_path().string(), ", ",
             where_.size(), " tensors)");
  return *files_[it->second];
}

const SafetensorsTensorInfo& SafetensorsCheckpoint::info(std::string_view name) const {
  return file_of(name).info(name);
}

at::Tensor SafetensorsCheckpoint::tensor(std::string_view name) const { return file_of(name).tensor(name); }

std::map<std::string, at::Tensor> load_safetensors_dir(const fs::path& path) {
  auto c = SafetensorsCheckpoint::open(path);
  std::map<std::string, at::Tensor> out;
  for (const auto& n : c.names()) out.emplace(n, c.tensor(n));
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Writing

namespace {

std::uint64_t tensor_nbytes(const at::Tensor& t) {
  return static_cast<std::uint64_t>(t.numel()) * dtype_size(to_st_dtype(t.scalar_type()));
}

void check_saveable(const std::string& name, const at::Tensor& t) {
  LLMS_CHECK(t.defined(), "cannot save tensor '", name, "': it is undefined");
  LLMS_CHECK(t.layout() == at::kStrided, "cannot save tensor '", name, "': layout ", t.layout(),
             " is not dense (convert with to_dense() first)");
  (void)to_st_dtype(t.scalar_type());
}

}  // namespace

void save_safetensors(const fs::path& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
  require_little_endian();
  // Largest elements first (stable), so every tensor's data is aligned to its element size.
  std::vector<std::size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), 0);
  for (const auto& [name, t] : tensors) check_saveable(name, t);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return tensors[a].second.element_size() > tensors[b].second.element_size();
  });
  std::vector<SafetensorsEntry> entries;
  entries.reserve(tensors.size());
  for (auto i : order) {
    const auto& [name, t] = tensors[i];
    entries.push_back({name, to_st_dtype(t.scalar_type()), std::vector<std::int64_t>(t.sizes().begin(), t.sizes().end())});
  }
  std::vector<std::pair<std::uint64_t, std::uint64_t>> offsets;
  const std::string header = build_safetensors_header(entries, metadata, &offsets);

  AtomicFile out(path);
  out.write(header);
  for (std::size_t k = 0; k < order.size(); ++k) {
    const auto& [name, t] = tensors[order[k]];
    const std::uint64_t nbytes = offsets[k].second - offsets[k].first;
    if (nbytes == 0) continue;
    // One tensor at a time on the host: a device tensor is copied, a strided view made contiguous.
    at::Tensor cpu = t.detach().to(at::kCPU).resolve_conj().resolve_neg().contiguous();
    LLMS_CHECK(tensor_nbytes(cpu) == nbytes, "tensor '", name, "' changed size while being saved");
    out.write(cpu.data_ptr(), nbytes);
  }
  out.commit();
}

ShardedSaveResult save_sharded(const fs::path& dir, const NamedTensors& tensors, std::uint64_t max_shard_bytes,
                               const std::map<std::string, std::string>& metadata, bool single_file_if_fits) {
  LLMS_CHECK(max_shard_bytes > 0, "save_sharded: max_shard_bytes must be positive");
  std::set<std::string> names;
  for (const auto& [name, t] : tensors) {
    check_saveable(name, t);
    LLMS_CHECK(names.insert(name).second, "cannot save two tensors named '", name, "'");
  }
  // Greedy in the given order; a tensor bigger than the limit gets a shard of its own.
  std::vector<NamedTensors> shards;
  std::uint64_t current = 0, total = 0;
  for (const auto& nt : tensors) {
    const std::uint64_t b = tensor_nbytes(nt.second);
    if (shards.empty() || (current > 0 && current + b > max_shard_bytes)) {
      shards.emplace_back();
      current = 0;
    }
    shards.back().push_back(nt);
    current += b;
    total += b;
  }
  if (shards.empty()) shards.emplace_back();
  fs::create_directories(dir);

  ShardedSaveResult result;
  result.total_size = total;
  if (shards.size() == 1 && single_file_if_fits) {
    save_safetensors(dir / kSingleName, shards[0], metadata);
    result.files.push_back(dir / kSingleName);
    // A stale index would take precedence over the new single file when loading the folder.
    std::error_code ec;
    fs::remove(dir / kIndexName, ec);
    return result;
  }
  nlohmann::json weight_map = nlohmann::json::object();
  const std::size_t n = shards.size();
  for (std::size_t i = 0; i < n; ++i) {
    char fname[64];
    std::snprintf(fname, sizeof fname, "model-%05zu-of-%05zu.safetensors", i + 1, n);
    save_safetensors(dir / fname, shards[i], metadata);
    result.files.push_back(dir / fname);
    for (const auto& [name, _] : shards[i]) weight_map[name] = fname;
  }
  nlohmann::json md = nlohmann::json::object();
  for (const auto& [k, v] : metadata) md[k] = v;
  md["total_size"] = total;
  nlohmann::json index = {{"metadata", md}, {"weight_map", weight_map}};
  // Written last: until then a reader of the folder sees the previous checkpoint's index.
  write_file_atomic(dir / kIndexName, index.dump(2) + "\n");
  result.index = dir / kIndexName;
  return result;
}

}  // namespace llmstudio::io
