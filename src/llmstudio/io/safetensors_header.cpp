// Safetensors header parsing/validation and header building (see safetensors_header.h).
#include "llmstudio/io/safetensors_header.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "llmstudio/core/error.h"
#include "llmstudio/io/json_text.h"

namespace llmstudio::io {
namespace {

struct DtypeRow {
  StDtype dtype;
  std::string_view name;
  std::size_t size;
};
constexpr std::array<DtypeRow, 15> kDtypes{{
    {StDtype::BOOL, "BOOL", 1},  {StDtype::U8, "U8", 1},   {StDtype::I8, "I8", 1},
    {StDtype::F8_E5M2, "F8_E5M2", 1}, {StDtype::F8_E4M3, "F8_E4M3", 1}, {StDtype::I16, "I16", 2},
    {StDtype::U16, "U16", 2},    {StDtype::F16, "F16", 2}, {StDtype::BF16, "BF16", 2},
    {StDtype::I32, "I32", 4},    {StDtype::U32, "U32", 4}, {StDtype::F32, "F32", 4},
    {StDtype::F64, "F64", 8},    {StDtype::I64, "I64", 8}, {StDtype::U64, "U64", 8},
}};

const DtypeRow& row(StDtype d) {
  for (const auto& r : kDtypes)
    if (r.dtype == d) return r;
  fail("invalid safetensors dtype value ", static_cast<int>(d));
}

std::string shape_str(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// A JSON value's type for messages.
std::string type_of(const nlohmann::json& j) {
  if (j.is_number_integer() && !j.is_number_unsigned()) return "negative integer " + j.dump();
  if (j.is_number_float()) return "non-integer number " + j.dump();
  return std::string(j.type_name());
}

bool checked_mul(std::uint64_t a, std::uint64_t b, std::uint64_t& out) {
  return !__builtin_mul_overflow(a, b, &out);
}

}  // namespace

std::string_view dtype_name(StDtype d) { return row(d).name; }
std::size_t dtype_size(StDtype d) { return row(d).size; }
std::optional<StDtype> parse_dtype(std::string_view name) {
  for (const auto& r : kDtypes)
    if (r.name == name) return r.dtype;
  return std::nullopt;
}

std::uint64_t SafetensorsTensorInfo::numel() const {
  std::uint64_t n = 1;
  for (auto d : shape) {
    LLMS_CHECK(d >= 0 && checked_mul(n, static_cast<std::uint64_t>(d), n), "tensor '", name, "' shape ",
               shape_str(shape), ": invalid or overflowing element count");
  }
  return n;
}

const SafetensorsTensorInfo* SafetensorsHeader::find(std::string_view name) const {
  auto it = index_.find(std::string(name));
  return it == index_.end() ? nullptr : &tensors[it->second];
}

void SafetensorsHeader::reindex() {
  index_.clear();
  for (std::size_t i = 0; i < tensors.size(); ++i) index_.emplace(tensors[i].name, i);
}

SafetensorsHeader parse_safetensors_header(std::span<const std::byte> file, std::string_view source) {
  const std::string where = "safetensors file '" + std::string(source) + "': ";
  const std::uint64_t file_size = file.size();
  LLMS_CHECK(file_size >= 8, where, "file is ", file_size,
             " bytes, shorter than the 8-byte header length prefix (truncated or not a safetensors file)");
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<std::uint8_t>(file[static_cast<std::size_t>(i)]);
  LLMS_CHECK(n <= kMaxSafetensorsHeaderBytes, where, "header length ", n, " exceeds the limit of ",
             kMaxSafetensorsHeaderBytes, " bytes (corrupt length prefix or not a safetensors file)");
  LLMS_CHECK(n <= file_size - 8, where, "header length ", n, " runs past the end of the file (", file_size,
             " bytes, so at most ", file_size - 8, " header bytes; truncated file?)");
  LLMS_CHECK(n >= 2, where, "header length ", n, " is too small for a JSON object");

  const char* text = reinterpret_cast<const char*>(file.data() + 8);
  // A raw NUL is never valid JSON, but the JSON lexer would take it for the end of input.
  if (const void* nul = std::memchr(text, 0, n)) {
    fail(where, "header is not valid JSON: NUL byte at header offset ", static_cast<const char*>(nul) - text,
         " (NUL padding is not allowed; pad with spaces)");
  }
  // Copying or dumping a value recurses per level: deep nesting is refused before parsing (see json_text.h).
  if (auto at = find_json_depth_excess(std::string_view(text, n), kModelJsonMaxDepth))
    fail(where, "header is nested deeper than the limit of ", kModelJsonMaxDepth, " levels (at header offset ", *at, ")");
  // Duplicate top-level keys would silently shadow each other: reject them.
  std::unordered_set<std::string> keys;
  std::string duplicate;
  nlohmann::json::parser_callback_t cb = [&](int depth, nlohmann::json::parse_event_t event,
                                             nlohmann::json& parsed) {
    if (depth == 1 && event == nlohmann::json::parse_event_t::key && parsed.is_string()) {
      const auto& k = parsed.get_ref<const std::string&>();
      if (!keys.insert(k).second && duplicate.empty()) duplicate = k;
    }
    return true;
  };
  nlohmann::json root;
  try {
    root = nlohmann::json::parse(text, text + n, cb);
  } catch (const nlohmann::json::exception& e) {
    fail(where, "header is not valid JSON: ", e.what());
  }
  LLMS_CHECK(duplicate.empty(), where, "header lists '", duplicate, "' twice");
  LLMS_CHECK(root.is_object(), where, "header must be a JSON object, found ", root.type_name());

  SafetensorsHeader h;
  h.header_size = n;
  for (auto& [key, value] : root.items()) {
    if (key == "__metadata__") {
      if (value.is_null()) continue;
      LLMS_CHECK(value.is_object(), where, "__metadata__ must be an object of strings, found ", type_of(value));
      for (auto& [mk, mv] : value.items()) {
        LLMS_CHECK(mv.is_string(), where, "__metadata__ value for '", mk, "' must be a string, found ",
                   type_of(mv));
        h.metadata.emplace(mk, mv.get<std::string>());
      }
      continue;
    }
    const std::string t = where + "tensor '" + key + "': ";
    LLMS_CHECK(value.is_object(), t, "entry must be an object, found ", type_of(value));
    SafetensorsTensorInfo info;
    info.name = key;

    auto dt = value.find("dtype");
    LLMS_CHECK(dt != value.end(), t, "missing \"dtype\"");
    LLMS_CHECK(dt->is_string(), t, "\"dtype\" must be a string, found ", type_of(*dt));
    auto parsed = parse_dtype(dt->get_ref<const std::string&>());
    LLMS_CHECK(parsed.has_value(), t, "unknown dtype \"", dt->get_ref<const std::string&>(),
               "\" (expected one of BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, U16, F16, BF16, I32, U32, F32, F64, "
               "I64, U64)");
    info.dtype = *parsed;

    auto sh = value.find("shape");
    LLMS_CHECK(sh != value.end(), t, "missing \"shape\"");
    LLMS_CHECK(sh->is_array(), t, "\"shape\" must be an array of non-negative integers, found ", type_of(*sh));
    std::uint64_t numel = 1;
    for (const auto& d : *sh) {
      LLMS_CHECK(d.is_number_unsigned(), t, "\"shape\" entries must be non-negative integers, found ",
                 type_of(d));
      const auto v = d.get<std::uint64_t>();
      LLMS_CHECK(v <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()), t, "dimension ",
                 v, " does not fit a signed 64-bit size");
      info.shape.push_back(static_cast<std::int64_t>(v));
      LLMS_CHECK(checked_mul(numel, v, numel), t, "shape ", sh->dump(), ": element count overflows 64 bits");
    }
    std::uint64_t expected_bytes = 0;
    LLMS_CHECK(checked_mul(numel, dtype_size(info.dtype), expected_bytes), t, "shape ", sh->dump(), " x ",
               dtype_name(info.dtype), ": byte size overflows 64 bits");

    auto off = value.find("data_offsets");
    LLMS_CHECK(off != value.end(), t, "missing \"data_offsets\"");
    LLMS_CHECK(off->is_array() && off->size() == 2, t,
               "\"data_offsets\" must be [begin, end], found ", off->dump());
    LLMS_CHECK((*off)[0].is_number_unsigned() && (*off)[1].is_number_unsigned(), t,
               "\"data_offsets\" must be two non-negative integers, found ", off->dump());
    info.data_begin = (*off)[0].get<std::uint64_t>();
    info.data_end = (*off)[1].get<std::uint64_t>();
    LLMS_CHECK(info.data_begin <= info.data_end, t, "data_offsets ", off->dump(), " end before they begin");
    LLMS_CHECK(info.data_end - info.data_begin == expected_bytes, t, "data_offsets ", off->dump(), " span ",
               info.data_end - info.data_begin, " bytes but shape ", sh->dump(), " of ", dtype_name(info.dtype),
               " needs ", expected_bytes, " bytes");
    h.tensors.push_back(std::move(info));
  }

  // Coverage: sorted by offsets, tensors tile the data section exactly, as the reference requires.
  std::stable_sort(h.tensors.begin(), h.tensors.end(), [](const auto& a, const auto& b) {
    return a.data_begin != b.data_begin ? a.data_begin < b.data_begin : a.data_end < b.data_end;
  });
  const std::uint64_t data_size = file_size - 8 - n;
  std::uint64_t pos = 0;
  const SafetensorsTensorInfo* prev = nullptr;
  for (const auto& info : h.tensors) {
    if (info.data_begin != pos) {
      const std::string prev_desc =
          prev ? "the end of tensor '" + prev->name + "'" : std::string("the start of the data section");
      fail(where, "tensor '", info.name, "': data_offsets [", info.data_begin, ", ", info.data_end,
           "] should begin at ", pos, " (", prev_desc, "); ",
           info.data_begin > pos ? "there is a hole of unused bytes" : "the tensors overlap");
    }
    LLMS_CHECK(info.data_end <= data_size, where, "tensor '", info.name, "': data_offsets [", info.data_begin,
               ", ", info.data_end, "] run past the data section (", data_size, " bytes; truncated file?)");
    pos = info.data_end;
    prev = &info;
  }
  LLMS_CHECK(pos == data_size, where, "the tensors cover ", pos, " bytes but the data section has ", data_size,
             " bytes (", data_size - pos, " trailing bytes no tensor uses)");
  h.reindex();
  return h;
}

std::string build_safetensors_header(const std::vector<SafetensorsEntry>& tensors,
                                     const std::map<std::string, std::string>& metadata,
                                     std::vector<std::pair<std::uint64_t, std::uint64_t>>* offsets,
                                     std::uint64_t* data_size) {
  nlohmann::ordered_json root = nlohmann::ordered_json::object();
  if (!metadata.empty()) root["__metadata__"] = metadata;
  std::uint64_t pos = 0;
  if (offsets) offsets->clear();
  std::unordered_set<std::string> seen;
  for (const auto& t : tensors) {
    LLMS_CHECK(t.name != "__metadata__", "cannot save a tensor named '__metadata__' (reserved by safetensors)");
    LLMS_CHECK(seen.insert(t.name).second, "cannot save two tensors named '", t.name, "'");
    std::uint64_t numel = 1, bytes = 0;
    for (auto d : t.shape)
      LLMS_CHECK(d >= 0 && checked_mul(numel, static_cast<std::uint64_t>(d), numel), "tensor '", t.name,
                 "' has an invalid shape ", shape_str(t.shape));
    LLMS_CHECK(checked_mul(numel, dtype_size(t.dtype), bytes) && !__builtin_add_overflow(pos, bytes, &bytes),
               "tensor '", t.name, "' is too large");
    const std::uint64_t begin = pos;
    pos = bytes;
    nlohmann::ordered_json e = nlohmann::ordered_json::object();
    e["dtype"] = std::string(dtype_name(t.dtype));
    e["shape"] = t.shape;
    e["data_offsets"] = {begin, pos};
    root[t.name] = std::move(e);
    if (offsets) offsets->emplace_back(begin, pos);
  }
  std::string json;
  try {
    json = root.dump();
  } catch (const nlohmann::json::exception& e) {
    fail("cannot write safetensors header (tensor names and metadata must be valid UTF-8): ", e.what());
  }
  json.append((8 - json.size() % 8) % 8, ' ');
  LLMS_CHECK(json.size() <= kMaxSafetensorsHeaderBytes, "safetensors header would be ", json.size(),
             " bytes, over the ", kMaxSafetensorsHeaderBytes, "-byte limit readers enforce");
  std::string out(8, '\0');
  std::uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xff);
  out += json;
  if (data_size) *data_size = pos;
  return out;
}

}  // namespace llmstudio::io
