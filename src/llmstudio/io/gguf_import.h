// Importing a llama.cpp GGUF model (Llama-family: general.architecture "llama" or "qwen2") as a Hugging Face
// model folder: config.json, generation_config.json, model.safetensors (or shards), tokenizer.json and
// tokenizer_config.json (with the chat template).
//
// Tensors are dequantised (gguf_dequant.h) to float32 and cast to the chosen dtype; GGUF names map to HF names
// (token_embd -> model.embed_tokens, blk.N.attn_q -> model.layers.N.self_attn.q_proj, ..., output -> lm_head;
// no output tensor means tied embeddings), shapes are the reversed ggml dims, and for "llama" the Q/K row
// permutation that llama.cpp's convert_hf_to_gguf.py applies (pairing rotary halves into interleaved pairs) is
// undone. Unsupported content (fused QKV, rope_freqs / Llama-3.1 rope scaling, YaRN, partial rotary, other
// architectures) is an llmstudio::Error naming the file and the tensor / key.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace llmstudio::io {

struct GgufImportOptions {
  at::ScalarType dtype = at::kFloat;                    // float32, bfloat16 or float16
  std::uint64_t max_shard_bytes = 5ull << 30;           // as transformers' default 5 GB shards
  bool write_tokenizer = true;                          // false: skip tokenizer files (model only)
};

struct GgufImportReport {
  std::string architecture;                 // HF architecture, e.g. LlamaForCausalLM
  std::string name;                         // general.name when present
  std::int64_t tensors = 0;                 // HF tensors written
  std::uint64_t parameters = 0;
  std::map<std::string, int> source_types;  // ggml type name -> tensor count in the GGUF
  bool tied_embeddings = false;
  std::string tokenizer;                    // tokenizer summary line, empty when none was written
  std::vector<std::string> notes;           // things the user should know (e.g. no tokenizer metadata)
  std::vector<std::filesystem::path> files;
};

// The Hugging Face name of a GGUF tensor name ("blk.3.attn_q.weight" -> "model.layers.3.self_attn.q_proj.weight");
// throws naming `source` for names that have no counterpart in `hf_architecture`'s layer schema.
std::string gguf_to_hf_tensor_name(const std::string& gguf_name, const std::string& source,
                                   const std::string& hf_architecture = "LlamaForCausalLM");

// Undoes llama.cpp's Q/K permutation: rows grouped per head as [rotary pair index, half] -> [half, pair index].
at::Tensor unpermute_qk(const at::Tensor& w, std::int64_t n_heads);

GgufImportReport import_gguf(const std::filesystem::path& gguf, const std::filesystem::path& out_dir,
                             const GgufImportOptions& options = {});

// Writes every tensor of a GGUF file dequantised (float32, GGUF names, torch shapes = reversed dims, no
// permutation undone) to one .safetensors file: a debugging / reference-comparison aid. Returns the count.
std::int64_t export_gguf_tensors(const std::filesystem::path& gguf, const std::filesystem::path& out_file);

at::ScalarType parse_import_dtype(const std::string& name);  // float32|bfloat16|float16 (also fp32/bf16/fp16)

}  // namespace llmstudio::io
