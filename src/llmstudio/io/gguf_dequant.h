// ggml tensor types as GGUF files store them: the type ids, their block geometry (values per block, bytes per
// block) and dequantisation of whole blocks to float32. Torch-free.
//
// Dequantisation is written from the block layouts of ggml's format description (block_q8_0, block_q4_0,
// block_q4_1, block_q4_K, block_q5_K, block_q6_K): every value is a small integer code times a per-block
// (or per-sub-block) float16 scale, plus an offset for the "_1" / K "min" variants. Supported: F32, F16, BF16,
// F64, I8/I16/I32, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K. Other known types (IQ*, Q2_K, Q3_K, ...)
// have their sizes here, so files holding them parse, but dequantize() refuses them with an Error.
// Little-endian hosts only (as the GGUF files themselves).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace llmstudio::io {

enum class GgmlType : std::uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22, IQ4_XS = 23,
  I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30, TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39,
};

struct GgmlTypeTraits {
  const char* name = nullptr;
  std::uint32_t block_size = 0;  // values per block
  std::uint32_t type_size = 0;   // bytes per block
  bool dequantizable = false;    // dequantize() supports it
};

// Traits of a type id; nullptr for ids this build does not know (the reader reports them as unknown).
const GgmlTypeTraits* ggml_type_traits(std::uint32_t type);
inline const GgmlTypeTraits* ggml_type_traits(GgmlType type) { return ggml_type_traits(static_cast<std::uint32_t>(type)); }
std::string ggml_type_name(std::uint32_t type);  // "Q4_K", or "type 77" when unknown

// IEEE half / bfloat16 bits to float (subnormals, infinities and NaN included).
float fp16_to_fp32(std::uint16_t h);
float bf16_to_fp32(std::uint16_t b);

// Dequantises `src` (whole blocks of `type`) into `dst`: dst.size() values, a multiple of the block size, and
// src.size() == dst.size() / block_size * type_size. Errors (unsupported type, size mismatch) name `what`.
void dequantize(GgmlType type, std::span<const std::byte> src, std::span<float> dst, const std::string& what = "tensor");

}  // namespace llmstudio::io
