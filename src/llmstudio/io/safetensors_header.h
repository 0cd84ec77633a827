// The safetensors container format without tensors (torch-free): dtypes, parsing + full validation of
// the 8-byte length + JSON header against the file size, and building a header for the writer.
//
// File layout: u64 little-endian N | N bytes of JSON header | data section. The header is an object
// {"__metadata__": {str: str}?, "<tensor>": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}, ...};
// offsets are relative to the data section. Validation follows the reference (huggingface/safetensors
// `Metadata::validate` + `read_metadata`): header <= 100 MB and inside the file, JSON object, tensors sorted
// by offsets cover the data section exactly (first begins at 0, each begins where the previous ended, the
// last ends at the end of the file), and each byte range equals numel * dtype size (no overflow).
// Stricter than the reference: duplicate top-level keys are rejected (the reference keeps the last one),
// dimensions must fit int64, and dtypes newer than this list (C64, F4, ...) are reported as unknown.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace llmstudio::io {

// Every dtype of the format (reference order = increasing alignment).
enum class StDtype { BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64 };

std::string_view dtype_name(StDtype dtype);            // "F32", "BF16", ...
std::size_t dtype_size(StDtype dtype);                 // bytes per element
std::optional<StDtype> parse_dtype(std::string_view);  // nullopt for an unknown name

// Largest header accepted (the reference's MAX_HEADER_SIZE).
inline constexpr std::uint64_t kMaxSafetensorsHeaderBytes = 100'000'000;

struct SafetensorsTensorInfo {
  std::string name;
  StDtype dtype = StDtype::F32;
  std::vector<std::int64_t> shape;  // [] is a scalar
  std::uint64_t data_begin = 0;     // byte offsets relative to the data section, [begin, end)
  std::uint64_t data_end = 0;

  std::uint64_t numel() const;  // product of shape (1 for a scalar); validated not to overflow
  std::uint64_t nbytes() const { return data_end - data_begin; }
};

struct SafetensorsHeader {
  std::map<std::string, std::string> metadata;   // "__metadata__" (empty if absent)
  std::vector<SafetensorsTensorInfo> tensors;    // sorted by data offsets (file order)
  std::uint64_t header_size = 0;                 // N, the JSON length including padding
  std::uint64_t data_section_offset() const { return 8 + header_size; }  // file offset of data section

  // Lookup by name; nullptr if absent.
  const SafetensorsTensorInfo* find(std::string_view name) const;

  // Rebuilds the name index (parse_safetensors_header does it; call after editing `tensors` by hand).
  void reindex();

 private:
  std::unordered_map<std::string, std::size_t> index_;
};

// Parses and validates the header of a whole safetensors file held in `file` (e.g. a mapping).
// `source` names the file in error messages. Throws llmstudio::Error on any defect; never reads outside
// `file`.
SafetensorsHeader parse_safetensors_header(std::span<const std::byte> file, std::string_view source);

// One tensor for build_safetensors_header: data is laid out in the order given.
struct SafetensorsEntry {
  std::string name;
  StDtype dtype = StDtype::F32;
  std::vector<std::int64_t> shape;
};

// Builds the 8-byte length prefix + JSON header (padded with spaces to a multiple of 8 bytes, as the
// reference does) for tensors whose data follow back to back in the given order.
// Also returns each tensor's [begin, end) offsets via `offsets` when non-null, and the data size.
std::string build_safetensors_header(const std::vector<SafetensorsEntry>& tensors,
                                     const std::map<std::string, std::string>& metadata,
                                     std::vector<std::pair<std::uint64_t, std::uint64_t>>* offsets = nullptr,
                                     std::uint64_t* data_size = nullptr);

}  // namespace llmstudio::io
