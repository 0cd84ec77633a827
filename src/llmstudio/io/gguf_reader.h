// GGUF file reading (llama.cpp's single-file model format, versions 2 and 3). Torch-free.
//
// Layout: magic "GGUF", u32 version, u64 tensor count, u64 metadata count; then the metadata key/values
// (string key, u32 value type, value; arrays are u32 element type + u64 count + elements; strings are u64
// length + UTF-8 bytes), then the tensor infos (name, u32 n_dims, u64 dims[n_dims] with dims[0] the fastest
// varying, u32 ggml type, u64 offset relative to the data section), then padding to `general.alignment`
// (default 32) and the data section. Everything little-endian.
//
// parse_gguf() validates everything against the byte count before use: counts that cannot fit the file,
// strings longer than the file, unknown value / tensor types, element-count overflow, tensors that are
// misaligned, overlap the end of the file or each other. Each defect is an llmstudio::Error naming the
// source file, the item and the byte offset.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "llmstudio/io/gguf_dequant.h"
#include "llmstudio/io/mapped_file.h"

namespace llmstudio::io {

enum class GgufValueType : std::uint32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7, STRING = 8,
  ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};
const char* gguf_value_type_name(GgufValueType type);

// One metadata value. Integers keep their sign in `i` (signed types) or `u` (unsigned types and bool);
// floats in `f`; strings in `s`; arrays in `array` with `element_type`.
struct GgufValue {
  GgufValueType type = GgufValueType::UINT8;
  GgufValueType element_type = GgufValueType::UINT8;  // arrays only
  std::int64_t i = 0;
  std::uint64_t u = 0;
  double f = 0.0;
  std::string s;
  std::vector<GgufValue> array;

  bool is_integer() const;
  bool is_number() const { return is_integer() || type == GgufValueType::FLOAT32 || type == GgufValueType::FLOAT64; }
  // Typed access; `key` names the value in errors (wrong type, out of range).
  std::int64_t as_int(std::string_view key) const;
  double as_double(std::string_view key) const;
  bool as_bool(std::string_view key) const;
  const std::string& as_string(std::string_view key) const;
  const std::vector<GgufValue>& as_array(std::string_view key) const;
  std::string to_display() const;  // short human-readable form (arrays summarised)
};

struct GgufTensorInfo {
  std::string name;
  std::vector<std::uint64_t> dims;  // ggml order: dims[0] varies fastest (a torch shape is the reverse)
  std::uint32_t type = 0;           // GgmlType id
  std::uint64_t offset = 0;         // relative to the data section
  std::uint64_t n_elements = 0;
  std::uint64_t n_bytes = 0;
  GgmlType ggml_type() const { return static_cast<GgmlType>(type); }
  std::vector<std::int64_t> torch_shape() const;  // dims reversed
};

struct GgufHeader {
  std::uint32_t version = 0;
  std::vector<std::pair<std::string, GgufValue>> metadata;  // file order
  std::vector<GgufTensorInfo> tensors;                      // file order
  std::uint64_t alignment = 32;
  std::uint64_t data_offset = 0;  // absolute start of the data section

  const GgufValue* find(std::string_view key) const;
  const GgufTensorInfo* find_tensor(std::string_view name) const;
};

// Parses and validates the header of a GGUF image of `bytes`; `source` names the file in errors.
GgufHeader parse_gguf(std::span<const std::byte> bytes, const std::string& source);

// A GGUF file mapped read-only (io::MappedFile) with its parsed header.
class GgufFile {
 public:
  static std::shared_ptr<const GgufFile> open(const std::filesystem::path& path);

  const GgufHeader& header() const { return header_; }
  const std::filesystem::path& path() const { return mapping_->path(); }
  const GgufValue* find(std::string_view key) const { return header_.find(key); }
  const GgufValue& get(std::string_view key) const;  // throws naming file and key when absent
  const std::vector<GgufTensorInfo>& tensors() const { return header_.tensors; }
  const GgufTensorInfo* find_tensor(std::string_view name) const { return header_.find_tensor(name); }
  std::span<const std::byte> tensor_bytes(const GgufTensorInfo& info) const;
  // Dequantises a tensor to float32 values (ggml order: dims[0] fastest, i.e. row-major in torch_shape()).
  std::vector<float> dequantize_tensor(const GgufTensorInfo& info) const;

 private:
  GgufFile() = default;
  std::shared_ptr<const MappedFile> mapping_;
  GgufHeader header_;
};

}  // namespace llmstudio::io
