// Dequantisation of ggml blocks (see gguf_dequant.h). Each dequantize_* reads one block and writes its values.
#include "llmstudio/io/gguf_dequant.h"

#include <array>
#include <bit>
#include <cstring>

#include "llmstudio/core/error.h"

namespace llmstudio::io {
namespace {

static_assert(std::endian::native == std::endian::little, "GGUF reading assumes a little-endian host");

constexpr std::uint32_t kMaxType = 40;

constexpr std::array<GgmlTypeTraits, kMaxType> make_traits() {
  std::array<GgmlTypeTraits, kMaxType> t{};
  auto set = [&t](GgmlType id, const char* name, std::uint32_t bs, std::uint32_t ts, bool deq) {
    t[static_cast<std::uint32_t>(id)] = GgmlTypeTraits{name, bs, ts, deq};
  };
  set(GgmlType::F32, "F32", 1, 4, true);
  set(GgmlType::F16, "F16", 1, 2, true);
  set(GgmlType::Q4_0, "Q4_0", 32, 18, true);
  set(GgmlType::Q4_1, "Q4_1", 32, 20, true);
  set(GgmlType::Q5_0, "Q5_0", 32, 22, true);
  set(GgmlType::Q5_1, "Q5_1", 32, 24, true);
  set(GgmlType::Q8_0, "Q8_0", 32, 34, true);
  set(GgmlType::Q8_1, "Q8_1", 32, 40, false);
  set(GgmlType::Q2_K, "Q2_K", 256, 84, false);
  set(GgmlType::Q3_K, "Q3_K", 256, 110, false);
  set(GgmlType::Q4_K, "Q4_K", 256, 144, true);
  set(GgmlType::Q5_K, "Q5_K", 256, 176, true);
  set(GgmlType::Q6_K, "Q6_K", 256, 210, true);
  set(GgmlType::Q8_K, "Q8_K", 256, 292, false);
  set(GgmlType::IQ2_XXS, "IQ2_XXS", 256, 66, false);
  set(GgmlType::IQ2_XS, "IQ2_XS", 256, 74, false);
  set(GgmlType::IQ3_XXS, "IQ3_XXS", 256, 98, false);
  set(GgmlType::IQ1_S, "IQ1_S", 256, 50, false);
  set(GgmlType::IQ4_NL, "IQ4_NL", 32, 18, false);
  set(GgmlType::IQ3_S, "IQ3_S", 256, 110, false);
  set(GgmlType::IQ2_S, "IQ2_S", 256, 82, false);
  set(GgmlType::IQ4_XS, "IQ4_XS", 256, 136, false);
  set(GgmlType::I8, "I8", 1, 1, true);
  set(GgmlType::I16, "I16", 1, 2, true);
  set(GgmlType::I32, "I32", 1, 4, true);
  set(GgmlType::I64, "I64", 1, 8, false);
  set(GgmlType::F64, "F64", 1, 8, true);
  set(GgmlType::IQ1_M, "IQ1_M", 256, 56, false);
  set(GgmlType::BF16, "BF16", 1, 2, true);
  set(GgmlType::TQ1_0, "TQ1_0", 256, 54, false);
  set(GgmlType::TQ2_0, "TQ2_0", 256, 66, false);
  set(GgmlType::MXFP4, "MXFP4", 32, 17, false);
  return t;
}
constexpr auto kTraits = make_traits();

template <typename T>
T load(const std::uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}
float half_at(const std::uint8_t* p) { return fp16_to_fp32(load<std::uint16_t>(p)); }

// block_q8_0: fp16 d, int8 q[32]; x = d * q.
void block_q8_0(const std::uint8_t* b, float* y) {
  const float d = half_at(b);
  for (int i = 0; i < 32; ++i) y[i] = d * static_cast<float>(static_cast<std::int8_t>(b[2 + i]));
}

// block_q4_0: fp16 d, 16 bytes of nibbles; low nibbles are values 0..15, high nibbles 16..31; x = d * (q - 8).
void block_q4_0(const std::uint8_t* b, float* y) {
  const float d = half_at(b);
  const std::uint8_t* q = b + 2;
  for (int i = 0; i < 16; ++i) {
    y[i] = d * static_cast<float>((q[i] & 0x0F) - 8);
    y[i + 16] = d * static_cast<float>((q[i] >> 4) - 8);
  }
}

// block_q4_1: fp16 d, fp16 m, nibbles as q4_0; x = d * q + m.
void block_q4_1(const std::uint8_t* b, float* y) {
  const float d = half_at(b), m = half_at(b + 2);
  const std::uint8_t* q = b + 4;
  for (int i = 0; i < 16; ++i) {
    y[i] = d * static_cast<float>(q[i] & 0x0F) + m;
    y[i + 16] = d * static_cast<float>(q[i] >> 4) + m;
  }
}

// block_q5_0 / q5_1: fp16 d (, fp16 m), 32-bit high-bit mask qh, nibbles; the fifth bit of value i is bit i of qh.
void block_q5(const std::uint8_t* b, float* y, bool has_min) {
  const float d = half_at(b);
  const float m = has_min ? half_at(b + 2) : 0.0f;
  const std::uint8_t* p = b + (has_min ? 4 : 2);
  const std::uint32_t qh = load<std::uint32_t>(p);
  const std::uint8_t* q = p + 4;
  for (int i = 0; i < 16; ++i) {
    const int lo = (q[i] & 0x0F) | static_cast<int>(((qh >> i) & 1u) << 4);
    const int hi = (q[i] >> 4) | static_cast<int>(((qh >> (i + 16)) & 1u) << 4);
    if (has_min) {
      y[i] = d * static_cast<float>(lo) + m;
      y[i + 16] = d * static_cast<float>(hi) + m;
    } else {
      y[i] = d * static_cast<float>(lo - 16);
      y[i + 16] = d * static_cast<float>(hi - 16);
    }
  }
}

// The 12 packed bytes of K-quant scales hold 8 six-bit scales and 8 six-bit mins. Sub-blocks 0..3 keep their
// scale / min in the low 6 bits of bytes j / j+4; sub-blocks 4..7 take 4 low bits from byte j+4 and their top
// two bits from the high bits of bytes j-4 (scale) / j (min).
void k_scale_min(int j, const std::uint8_t* s, int& scale, int& min) {
  if (j < 4) {
    scale = s[j] & 63;
    min = s[j + 4] & 63;
  } else {
    scale = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4);
    min = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// block_q4_K: fp16 d, fp16 dmin, scales[12], qs[128]: 8 sub-blocks of 32; each 64-value chunk uses 32 bytes,
// low nibbles for its first sub-block and high nibbles for the second. x = d*scale*q - dmin*min.
void block_q4_k(const std::uint8_t* b, float* y) {
  const float d = half_at(b), dmin = half_at(b + 2);
  const std::uint8_t* sc = b + 4;
  const std::uint8_t* q = b + 16;
  for (int chunk = 0; chunk < 4; ++chunk) {
    int s1, m1, s2, m2;
    k_scale_min(2 * chunk, sc, s1, m1);
    k_scale_min(2 * chunk + 1, sc, s2, m2);
    const float d1 = d * static_cast<float>(s1), o1 = dmin * static_cast<float>(m1);
    const float d2 = d * static_cast<float>(s2), o2 = dmin * static_cast<float>(m2);
    for (int l = 0; l < 32; ++l) y[l] = d1 * static_cast<float>(q[l] & 0x0F) - o1;
    for (int l = 0; l < 32; ++l) y[32 + l] = d2 * static_cast<float>(q[l] >> 4) - o2;
    q += 32;
    y += 64;
  }
}

// block_q5_K: as q4_K plus qh[32]: the fifth bit of value l of chunk c is bit 2c (first half) / 2c+1 (second)
// of qh[l].
void block_q5_k(const std::uint8_t* b, float* y) {
  const float d = half_at(b), dmin = half_at(b + 2);
  const std::uint8_t* sc = b + 4;
  const std::uint8_t* qh = b + 16;
  const std::uint8_t* q = b + 48;
  for (int chunk = 0; chunk < 4; ++chunk) {
    int s1, m1, s2, m2;
    k_scale_min(2 * chunk, sc, s1, m1);
    k_scale_min(2 * chunk + 1, sc, s2, m2);
    const float d1 = d * static_cast<float>(s1), o1 = dmin * static_cast<float>(m1);
    const float d2 = d * static_cast<float>(s2), o2 = dmin * static_cast<float>(m2);
    const std::uint8_t bit1 = static_cast<std::uint8_t>(1u << (2 * chunk));
    const std::uint8_t bit2 = static_cast<std::uint8_t>(2u << (2 * chunk));
    for (int l = 0; l < 32; ++l) y[l] = d1 * static_cast<float>((q[l] & 0x0F) + ((qh[l] & bit1) ? 16 : 0)) - o1;
    for (int l = 0; l < 32; ++l) y[32 + l] = d2 * static_cast<float>((q[l] >> 4) + ((qh[l] & bit2) ? 16 : 0)) - o2;
    q += 32;
    y += 64;
  }
}

// block_q6_K: ql[128] (low 4 bits), qh[64] (high 2 bits), int8 scales[16] (one per 16 values), fp16 d.
// Each half of 128 values uses 64 bytes of ql and 32 of qh: value l (+32, +64, +96) takes the low/high nibble
// of ql[l] / ql[l+32] and bit pair 0/2/4/6 of qh[l]; x = d * scale * (q - 32).
void block_q6_k(const std::uint8_t* b, float* y) {
  const std::uint8_t* ql = b;
  const std::uint8_t* qh = b + 128;
  const auto* sc = reinterpret_cast<const std::int8_t*>(b + 192);
  const float d = half_at(b + 208);
  for (int half = 0; half < 2; ++half) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
      y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
      y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
      y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
    }
    y += 128;
    ql += 64;
    qh += 32;
    sc += 8;
  }
}

}  // namespace

const GgmlTypeTraits* ggml_type_traits(std::uint32_t type) {
  if (type >= kMaxType || kTraits[type].name == nullptr) return nullptr;
  return &kTraits[type];
}

std::string ggml_type_name(std::uint32_t type) {
  const auto* t = ggml_type_traits(type);
  return t ? std::string(t->name) : "type " + std::to_string(type);
}

float fp16_to_fp32(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1Fu;
  std::uint32_t mant = h & 0x3FFu;
  std::uint32_t bits;
  if (exp == 0x1F) {
    bits = sign | 0x7F800000u | (mant << 13);  // inf / NaN
  } else if (exp != 0) {
    bits = sign | ((exp + 112u) << 23) | (mant << 13);  // normal: rebias 15 -> 127
  } else if (mant == 0) {
    bits = sign;  // +-0
  } else {        // subnormal: normalise
    int e = -1;
    do {
      ++e;
      mant <<= 1;
    } while ((mant & 0x400u) == 0);
    bits = sign | (static_cast<std::uint32_t>(112 - e) << 23) | ((mant & 0x3FFu) << 13);
  }
  return std::bit_cast<float>(bits);
}

float bf16_to_fp32(std::uint16_t b) { return std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16); }

void dequantize(GgmlType type, std::span<const std::byte> src, std::span<float> dst, const std::string& what) {
  const auto* tr = ggml_type_traits(type);
  LLMS_CHECK(tr != nullptr, what, ": unknown ggml type ", static_cast<std::uint32_t>(type));
  LLMS_CHECK(tr->dequantizable, what, ": dequantising ggml type ", tr->name,
             " is not supported (supported: F32, F16, BF16, F64, I8, I16, I32, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, "
             "Q5_K, Q6_K)");
  LLMS_CHECK(dst.size() % tr->block_size == 0, what, ": ", dst.size(), " values is not a whole number of ", tr->name,
             " blocks of ", tr->block_size);
  const std::size_t blocks = dst.size() / tr->block_size;
  LLMS_CHECK(src.size() == blocks * tr->type_size, what, ": expected ", blocks * tr->type_size, " bytes of ",
             tr->name, " data for ", dst.size(), " values, found ", src.size());
  const auto* s = reinterpret_cast<const std::uint8_t*>(src.data());
  float* y = dst.data();
  const std::size_t n = dst.size();
  switch (type) {
    case GgmlType::F32: std::memcpy(y, s, n * 4); return;
    case GgmlType::F16: for (std::size_t i = 0; i < n; ++i) y[i] = half_at(s + 2 * i); return;
    case GgmlType::BF16: for (std::size_t i = 0; i < n; ++i) y[i] = bf16_to_fp32(load<std::uint16_t>(s + 2 * i)); return;
    case GgmlType::F64: for (std::size_t i = 0; i < n; ++i) y[i] = static_cast<float>(load<double>(s + 8 * i)); return;
    case GgmlType::I8: for (std::size_t i = 0; i < n; ++i) y[i] = static_cast<float>(static_cast<std::int8_t>(s[i])); return;
    case GgmlType::I16: for (std::size_t i = 0; i < n; ++i) y[i] = static_cast<float>(load<std::int16_t>(s + 2 * i)); return;
    case GgmlType::I32: for (std::size_t i = 0; i < n; ++i) y[i] = static_cast<float>(load<std::int32_t>(s + 4 * i)); return;
    default: break;
  }
  void (*fn)(const std::uint8_t*, float*) = nullptr;
  switch (type) {
    case GgmlType::Q8_0: fn = block_q8_0; break;
    case GgmlType::Q4_0: fn = block_q4_0; break;
    case GgmlType::Q4_1: fn = block_q4_1; break;
    case GgmlType::Q5_0: fn = [](const std::uint8_t* b, float* o) { block_q5(b, o, false); }; break;
    case GgmlType::Q5_1: fn = [](const std::uint8_t* b, float* o) { block_q5(b, o, true); }; break;
    case GgmlType::Q4_K: fn = block_q4_k; break;
    case GgmlType::Q5_K: fn = block_q5_k; break;
    case GgmlType::Q6_K: fn = block_q6_k; break;
    default: fail(what, ": internal: no dequantiser for ", tr->name);
  }
  for (std::size_t i = 0; i < blocks; ++i) fn(s + i * tr->type_size, y + i * tr->block_size);
}

}  // namespace llmstudio::io
