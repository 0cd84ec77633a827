// GGUF header parsing and validation (see gguf_reader.h).
#include "llmstudio/io/gguf_reader.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <sstream>

#include "llmstudio/core/error.h"

namespace llmstudio::io {
namespace {

constexpr std::uint32_t kMaxDims = 4;  // GGML_MAX_DIMS
constexpr int kMaxArrayDepth = 4;

// Bounds-checked little-endian cursor over the file image.
class Cursor {
 public:
  Cursor(std::span<const std::byte> bytes, const std::string& source) : bytes_(bytes), source_(source) {}

  std::uint64_t pos() const { return pos_; }
  std::uint64_t remaining() const { return bytes_.size() - pos_; }
  const std::string& source() const { return source_; }

  template <typename T>
  T read(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string read_string(const char* what) {
    const std::uint64_t at = pos_;
    const auto n = read<std::uint64_t>(what);
    LLMS_CHECK(n <= remaining(), source_, ": truncated or corrupt GGUF: ", what, " at byte ", at, " has length ", n,
               " but only ", remaining(), " bytes remain in the file");
    std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), static_cast<std::size_t>(n));
    pos_ += n;
    return s;
  }

  void need(std::uint64_t n, const char* what) const {
    LLMS_CHECK(n <= remaining(), source_, ": truncated GGUF: expected ", n, " bytes for ", what, " at byte ", pos_,
               ", the file has ", bytes_.size(), " bytes");
  }

 private:
  std::span<const std::byte> bytes_;
  const std::string& source_;
  std::uint64_t pos_ = 0;
};

bool valid_value_type(std::uint32_t t) { return t <= static_cast<std::uint32_t>(GgufValueType::FLOAT64); }

std::uint64_t scalar_size(GgufValueType t) {
  switch (t) {
    case GgufValueType::UINT8: case GgufValueType::INT8: case GgufValueType::BOOL: return 1;
    case GgufValueType::UINT16: case GgufValueType::INT16: return 2;
    case GgufValueType::UINT32: case GgufValueType::INT32: case GgufValueType::FLOAT32: return 4;
    case GgufValueType::UINT64: case GgufValueType::INT64: case GgufValueType::FLOAT64: return 8;
    case GgufValueType::STRING: return 8;  // at least its length field
    case GgufValueType::ARRAY: return 12;  // at least type + count
  }
  return 1;
}

GgufValue read_value(Cursor& c, GgufValueType type, const std::string& key, int depth) {
  GgufValue v;
  v.type = type;
  switch (type) {
    case GgufValueType::UINT8: v.u = c.read<std::uint8_t>("a uint8 value"); break;
    case GgufValueType::INT8: v.i = c.read<std::int8_t>("an int8 value"); break;
    case GgufValueType::UINT16: v.u = c.read<std::uint16_t>("a uint16 value"); break;
    case GgufValueType::INT16: v.i = c.read<std::int16_t>("an int16 value"); break;
    case GgufValueType::UINT32: v.u = c.read<std::uint32_t>("a uint32 value"); break;
    case GgufValueType::INT32: v.i = c.read<std::int32_t>("an int32 value"); break;
    case GgufValueType::UINT64: v.u = c.read<std::uint64_t>("a uint64 value"); break;
    case GgufValueType::INT64: v.i = c.read<std::int64_t>("an int64 value"); break;
    case GgufValueType::FLOAT32: v.f = c.read<float>("a float32 value"); break;
    case GgufValueType::FLOAT64: v.f = c.read<double>("a float64 value"); break;
    case GgufValueType::BOOL: {
      const auto b = c.read<std::uint8_t>("a bool value");
      LLMS_CHECK(b <= 1, c.source(), ": metadata '", key, "': bool value ", int(b), " at byte ", c.pos() - 1,
                 " is neither 0 nor 1");
      v.u = b;
      break;
    }
    case GgufValueType::STRING: v.s = c.read_string("a string value"); break;
    case GgufValueType::ARRAY: {
      LLMS_CHECK(depth < kMaxArrayDepth, c.source(), ": metadata '", key, "': arrays nested deeper than ",
                 kMaxArrayDepth, " levels");
      const std::uint64_t at = c.pos();
      const auto et = c.read<std::uint32_t>("an array element type");
      LLMS_CHECK(valid_value_type(et), c.source(), ": metadata '", key, "': unknown array element type ", et,
                 " at byte ", at, " (GGUF value types are 0..12)");
      v.element_type = static_cast<GgufValueType>(et);
      const auto n = c.read<std::uint64_t>("an array length");
      LLMS_CHECK(n <= c.remaining() / scalar_size(v.element_type), c.source(), ": metadata '", key,
                 "': array of ", n, " ", gguf_value_type_name(v.element_type), " elements at byte ", at,
                 " cannot fit the ", c.remaining(), " bytes left in the file");
      v.array.reserve(static_cast<std::size_t>(n));
      for (std::uint64_t k = 0; k < n; ++k) v.array.push_back(read_value(c, v.element_type, key, depth + 1));
      break;
    }
  }
  return v;
}

bool mul_overflows(std::uint64_t a, std::uint64_t b, std::uint64_t& out) {
  if (a != 0 && b > std::numeric_limits<std::uint64_t>::max() / a) return true;
  out = a * b;
  return false;
}

}  // namespace

const char* gguf_value_type_name(GgufValueType type) {
  static const char* names[] = {"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
                                "bool",  "string", "array", "uint64", "int64", "float64"};
  const auto t = static_cast<std::uint32_t>(type);
  return t < 13 ? names[t] : "unknown";
}

bool GgufValue::is_integer() const {
  switch (type) {
    case GgufValueType::UINT8: case GgufValueType::INT8: case GgufValueType::UINT16: case GgufValueType::INT16:
    case GgufValueType::UINT32: case GgufValueType::INT32: case GgufValueType::UINT64: case GgufValueType::INT64:
      return true;
    default: return false;
  }
}

namespace {
bool is_unsigned(GgufValueType t) {
  return t == GgufValueType::UINT8 || t == GgufValueType::UINT16 || t == GgufValueType::UINT32 ||
         t == GgufValueType::UINT64 || t == GgufValueType::BOOL;
}
}  // namespace

std::int64_t GgufValue::as_int(std::string_view key) const {
  LLMS_CHECK(is_integer(), "GGUF metadata '", key, "': expected an integer, found ", gguf_value_type_name(type));
  if (is_unsigned(type)) {
    LLMS_CHECK(u <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()), "GGUF metadata '", key,
               "': value ", u, " is out of range");
    return static_cast<std::int64_t>(u);
  }
  return i;
}

double GgufValue::as_double(std::string_view key) const {
  LLMS_CHECK(is_number(), "GGUF metadata '", key, "': expected a number, found ", gguf_value_type_name(type));
  if (type == GgufValueType::FLOAT32 || type == GgufValueType::FLOAT64) return f;
  return is_unsigned(type) ? static_cast<double>(u) : static_cast<double>(i);
}

bool GgufValue::as_bool(std::string_view key) const {
  LLMS_CHECK(type == GgufValueType::BOOL, "GGUF metadata '", key, "': expected a bool, found ",
             gguf_value_type_name(type));
  return u != 0;
}

const std::string& GgufValue::as_string(std::string_view key) const {
  LLMS_CHECK(type == GgufValueType::STRING, "GGUF metadata '", key, "': expected a string, found ",
             gguf_value_type_name(type));
  return s;
}

const std::vector<GgufValue>& GgufValue::as_array(std::string_view key) const {
  LLMS_CHECK(type == GgufValueType::ARRAY, "GGUF metadata '", key, "': expected an array, found ",
             gguf_value_type_name(type));
  return array;
}

std::string GgufValue::to_display() const {
  std::ostringstream os;
  switch (type) {
    case GgufValueType::STRING: os << '"' << (s.size() > 60 ? s.substr(0, 60) + "..." : s) << '"'; break;
    case GgufValueType::BOOL: os << (u ? "true" : "false"); break;
    case GgufValueType::FLOAT32: case GgufValueType::FLOAT64: os << f; break;
    case GgufValueType::ARRAY: os << "[" << array.size() << " x " << gguf_value_type_name(element_type) << "]"; break;
    default: if (is_unsigned(type)) os << u; else os << i;
  }
  return os.str();
}

std::vector<std::int64_t> GgufTensorInfo::torch_shape() const {
  std::vector<std::int64_t> shape(dims.rbegin(), dims.rend());
  return shape;
}

const GgufValue* GgufHeader::find(std::string_view key) const {
  for (const auto& [k, v] : metadata)
    if (k == key) return &v;
  return nullptr;
}

const GgufTensorInfo* GgufHeader::find_tensor(std::string_view name) const {
  for (const auto& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

GgufHeader parse_gguf(std::span<const std::byte> bytes, const std::string& source) {
  Cursor c(bytes, source);
  GgufHeader h;
  LLMS_CHECK(bytes.size() >= 4 && std::memcmp(bytes.data(), "GGUF", 4) == 0, source,
             ": not a GGUF file (expected the magic bytes \"GGUF\" at the start",
             bytes.size() < 4 ? ", the file is shorter than 4 bytes)" : ")");
  c.read<std::uint32_t>("the magic");
  h.version = c.read<std::uint32_t>("the version");
  LLMS_CHECK(h.version == 2 || h.version == 3, source, ": unsupported GGUF version ", h.version,
             (h.version == 1 ? " (version 1 used 32-bit counts; re-convert with a newer llama.cpp)" : ""),
             " (supported: 2, 3)");
  const auto n_tensors = c.read<std::uint64_t>("the tensor count");
  const auto n_kv = c.read<std::uint64_t>("the metadata count");
  // Each metadata entry takes at least 8 (key length) + 4 (type) + 1 bytes, each tensor info 8 + 4 + 4 + 8.
  LLMS_CHECK(n_kv <= c.remaining() / 13, source, ": corrupt GGUF: metadata count ", n_kv,
             " cannot fit the file's ", bytes.size(), " bytes");
  LLMS_CHECK(n_tensors <= c.remaining() / 24, source, ": corrupt GGUF: tensor count ", n_tensors,
             " cannot fit the file's ", bytes.size(), " bytes");

  h.metadata.reserve(static_cast<std::size_t>(n_kv));
  for (std::uint64_t k = 0; k < n_kv; ++k) {
    std::string key = c.read_string("a metadata key");
    const std::uint64_t at = c.pos();
    const auto t = c.read<std::uint32_t>("a metadata value type");
    LLMS_CHECK(valid_value_type(t), source, ": metadata '", key, "': unknown value type ", t, " at byte ", at,
               " (GGUF value types are 0..12)");
    LLMS_CHECK(h.find(key) == nullptr, source, ": duplicate metadata key '", key, "'");
    GgufValue v = read_value(c, static_cast<GgufValueType>(t), key, 0);
    h.metadata.emplace_back(std::move(key), std::move(v));
  }
  if (const auto* a = h.find("general.alignment")) {
    LLMS_CHECK(a->type == GgufValueType::UINT32, source, ": general.alignment must be uint32, found ",
               gguf_value_type_name(a->type));
    LLMS_CHECK(a->u != 0 && (a->u & (a->u - 1)) == 0, source, ": general.alignment ", a->u,
               " is not a power of two");
    h.alignment = a->u;
  }

  h.tensors.reserve(static_cast<std::size_t>(n_tensors));
  for (std::uint64_t k = 0; k < n_tensors; ++k) {
    GgufTensorInfo t;
    t.name = c.read_string("a tensor name");
    LLMS_CHECK(h.find_tensor(t.name) == nullptr, source, ": duplicate tensor '", t.name, "'");
    const auto n_dims = c.read<std::uint32_t>("a tensor's dimension count");
    LLMS_CHECK(n_dims >= 1 && n_dims <= kMaxDims, source, ": tensor '", t.name, "' has ", n_dims,
               " dimensions (expected 1..", kMaxDims, ")");
    t.n_elements = 1;
    for (std::uint32_t d = 0; d < n_dims; ++d) {
      const auto dim = c.read<std::uint64_t>("a tensor dimension");
      LLMS_CHECK(dim > 0 && dim <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()), source,
                 ": tensor '", t.name, "' has invalid dimension ", dim);
      LLMS_CHECK(!mul_overflows(t.n_elements, dim, t.n_elements), source, ": tensor '", t.name,
                 "': element count overflows 64 bits");
      t.dims.push_back(dim);
    }
    const std::uint64_t at = c.pos();
    t.type = c.read<std::uint32_t>("a tensor type");
    const auto* tr = ggml_type_traits(t.type);
    LLMS_CHECK(tr != nullptr, source, ": tensor '", t.name, "' has unknown ggml type ", t.type, " at byte ", at);
    LLMS_CHECK(t.dims[0] % tr->block_size == 0, source, ": tensor '", t.name, "': first dimension ", t.dims[0],
               " is not a multiple of the ", tr->name, " block size ", tr->block_size);
    LLMS_CHECK(!mul_overflows(t.n_elements / tr->block_size, tr->type_size, t.n_bytes), source, ": tensor '",
               t.name, "': byte size overflows 64 bits");
    t.offset = c.read<std::uint64_t>("a tensor offset");
    LLMS_CHECK(t.offset % h.alignment == 0, source, ": tensor '", t.name, "': data offset ", t.offset,
               " is not a multiple of the alignment ", h.alignment);
    h.tensors.push_back(std::move(t));
  }

  const std::uint64_t end_of_header = c.pos();
  h.data_offset = (end_of_header + h.alignment - 1) / h.alignment * h.alignment;
  const std::uint64_t data_size = bytes.size() >= h.data_offset ? bytes.size() - h.data_offset : 0;
  LLMS_CHECK(h.tensors.empty() || bytes.size() >= h.data_offset, source, ": truncated GGUF: the data section should ",
             "start at byte ", h.data_offset, " but the file has ", bytes.size(), " bytes");
  std::vector<const GgufTensorInfo*> by_offset;
  for (const auto& t : h.tensors) {
    LLMS_CHECK(t.offset <= data_size && t.n_bytes <= data_size - t.offset, source, ": tensor '", t.name,
               "' (", t.n_bytes, " bytes at data offset ", t.offset, ") extends past the end of the file (data section ",
               "has ", data_size, " bytes; the file is truncated or the offset is corrupt)");
    by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
  for (std::size_t k = 1; k < by_offset.size(); ++k) {
    const auto* p = by_offset[k - 1];
    LLMS_CHECK(p->offset + p->n_bytes <= by_offset[k]->offset, source, ": tensors '", p->name, "' and '",
               by_offset[k]->name, "' overlap in the data section (offsets ", p->offset, " and ", by_offset[k]->offset,
               ")");
  }
  return h;
}

std::shared_ptr<const GgufFile> GgufFile::open(const std::filesystem::path& path) {
  auto f = std::shared_ptr<GgufFile>(new GgufFile());
  f->mapping_ = MappedFile::open(path);
  f->header_ = parse_gguf(f->mapping_->bytes(), path.string());
  return f;
}

const GgufValue& GgufFile::get(std::string_view key) const {
  const auto* v = find(key);
  LLMS_CHECK(v != nullptr, path().string(), ": GGUF metadata key '", key, "' is missing");
  return *v;
}

std::span<const std::byte> GgufFile::tensor_bytes(const GgufTensorInfo& info) const {
  return mapping_->bytes().subspan(header_.data_offset + info.offset, info.n_bytes);
}

std::vector<float> GgufFile::dequantize_tensor(const GgufTensorInfo& info) const {
  std::vector<float> out(static_cast<std::size_t>(info.n_elements));
  dequantize(info.ggml_type(), tensor_bytes(info), out, path().string() + ": tensor '" + info.name + "'");
  return out;
}

}  // namespace llmstudio::io
