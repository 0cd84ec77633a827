// GGUF (llama-family) -> Hugging Face folder (see gguf_import.h).
#include "llmstudio/io/gguf_import.h"

#include <nlohmann/json.hpp>

#include <charconv>
#include <cstdlib>
#include <regex>

#include "llmstudio/core/error.h"
#include "llmstudio/io/atomic_file.h"
#include "llmstudio/io/gguf_reader.h"
#include "llmstudio/io/gguf_tokenizer.h"
#include "llmstudio/io/safetensors.h"
#include "llmstudio/model/architecture.h"
#include "llmstudio/model/layer_schema.h"

namespace llmstudio::io {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct ArchSpec {
  const char* hf_architecture;
  const char* model_type;
  bool permuted_qk;  // convert_hf_to_gguf permutes Q/K rows for llama (rotary in GGML's "normal" mode)
  bool attention_bias_key;  // config "attention_bias" gives q/k/v/o a bias (llama, qwen3); qwen2's q/k/v always have one
};

ArchSpec arch_spec(const std::string& arch, const std::string& source) {
  if (arch == "llama") return {"LlamaForCausalLM", "llama", true, true};
  if (arch == "qwen2") return {"Qwen2ForCausalLM", "qwen2", false, false};
  if (arch == "qwen3") return {"Qwen3ForCausalLM", "qwen3", false, true};
  fail(source, ": general.architecture '", arch, "' is not supported (supported: llama, qwen2, qwen3)");
}

const char* dtype_name(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "float32";
    case at::kBFloat16: return "bfloat16";
    case at::kHalf: return "float16";
    default: return "float32";
  }
}

// Metadata accessors for "<arch>.<key>".
struct Meta {
  const GgufFile& f;
  std::string arch;
  const GgufValue* find(const std::string& key) const { return f.find(arch + "." + key); }
  std::int64_t req_int(const std::string& key) const { return f.get(arch + "." + key).as_int(arch + "." + key); }
  std::int64_t int_or(const std::string& key, std::int64_t d) const {
    const auto* v = find(key);
    return v ? v->as_int(arch + "." + key) : d;
  }
  // float32 values become the shortest decimal that round-trips the float (1e-05, not 9.99999974e-06).
  double double_or(const std::string& key, double d) const {
    const auto* v = find(key);
    if (!v) return d;
    const double x = v->as_double(arch + "." + key);
    if (v->type != GgufValueType::FLOAT32) return x;
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, static_cast<float>(x));
    return std::strtod(std::string(buf, r.ptr).c_str(), nullptr);
  }
};

}  // namespace

at::ScalarType parse_import_dtype(const std::string& name) {
  if (name == "float32" || name == "fp32") return at::kFloat;
  if (name == "bfloat16" || name == "bf16") return at::kBFloat16;
  if (name == "float16" || name == "fp16") return at::kHalf;
  fail("--dtype '", name, "' is not supported (allowed: float32, bfloat16, float16)");
}

std::string gguf_to_hf_tensor_name(const std::string& g, const std::string& source, const std::string& hf_architecture) {
  static const std::map<std::string, std::string> top = {{"token_embd.weight", "model.embed_tokens.weight"},
                                                         {"output_norm.weight", "model.norm.weight"},
                                                         {"output.weight", "lm_head.weight"}};
  if (auto it = top.find(g); it != top.end()) return it->second;
  static const std::regex blk(R"(blk\.(\d+)\.([a-z_]+)\.(weight|bias))");
  // The GGUF importer reads Llama-family files (llama, qwen2, qwen3): the architecture's layer schema names the
  // layer tensors (qwen3 adds attn_q_norm / attn_k_norm).
  const model::LayerSchema& schema = model::layer_schema(hf_architecture);
  std::smatch m;
  if (std::regex_match(g, m, blk)) {
    if (const std::string module = model::module_for_gguf(schema, m[2].str()); !module.empty())
      return "model.layers." + m[1].str() + "." + module + "." + m[3].str();
    if (m[2].str() == "attn_qkv")
      fail(source, ": tensor '", g, "' is a fused QKV projection, which Llama-family checkpoints do not have");
  }
  if (g == "rope_freqs.weight")
    fail(source, ": tensor 'rope_freqs.weight' (Llama-3.1-style rope scaling frequencies) cannot be converted yet");
  fail(source, ": unexpected tensor '", g, "' for a Llama-family model (known: token_embd, output_norm, output, ",
       model::gguf_layer_names(schema), ")");
}

at::Tensor unpermute_qk(const at::Tensor& w, std::int64_t n_heads) {
  const auto rows = w.size(0);
  LLMS_CHECK(n_heads > 0 && rows % (2 * n_heads) == 0, "cannot undo the Q/K permutation: ", rows,
             " rows are not a multiple of 2 x ", n_heads, " heads");
  std::vector<std::int64_t> shape = {n_heads, rows / n_heads / 2, 2};
  for (std::int64_t d = 1; d < w.dim(); ++d) shape.push_back(w.size(d));
  return w.reshape(shape).transpose(1, 2).reshape(w.sizes()).contiguous();
}

std::int64_t export_gguf_tensors(const fs::path& gguf, const fs::path& out_file) {
  const auto file = GgufFile::open(gguf);
  NamedTensors tensors;
  for (const auto& info : file->tensors()) {
    at::Tensor t = at::empty({static_cast<std::int64_t>(info.n_elements)}, at::kFloat);
    dequantize(info.ggml_type(), file->tensor_bytes(info), std::span<float>(t.data_ptr<float>(), info.n_elements),
               gguf.string() + ": tensor '" + info.name + "'");
    tensors.emplace_back(info.name, t.view(info.torch_shape()));
  }
  save_safetensors(out_file, tensors, {{"source", gguf.string()}});
  return static_cast<std::int64_t>(tensors.size());
}

GgufImportReport import_gguf(const fs::path& gguf, const fs::path& out_dir, const GgufImportOptions& opt) {
  LLMS_CHECK(opt.dtype == at::kFloat || opt.dtype == at::kBFloat16 || opt.dtype == at::kHalf,
             "import-gguf: dtype must be float32, bfloat16 or float16");
  const auto file = GgufFile::open(gguf);
  const std::string src = gguf.string();
  GgufImportReport rep;
  const std::string arch = file->get("general.architecture").as_string("general.architecture");
  const ArchSpec spec = arch_spec(arch, src);
  rep.architecture = spec.hf_architecture;
  if (const auto* n = file->find("general.name"); n && n->type == GgufValueType::STRING) rep.name = n->s;
  Meta meta{*file, arch};

  const std::int64_t n_layers = meta.req_int("block_count");
  const std::int64_t hidden = meta.req_int("embedding_length");
  const std::int64_t ffn = meta.req_int("feed_forward_length");
  const std::int64_t n_head = meta.req_int("attention.head_count");
  const std::int64_t n_kv = meta.int_or("attention.head_count_kv", n_head);
  LLMS_CHECK(n_layers > 0 && hidden > 0 && ffn > 0 && n_head > 0 && n_kv > 0 && n_head % n_kv == 0, src,
             ": inconsistent model metadata (block_count ", n_layers, ", embedding_length ", hidden, ", head_count ",
             n_head, ", head_count_kv ", n_kv, ")");
  const std::int64_t head_dim = meta.int_or("attention.key_length", hidden / n_head);
  LLMS_CHECK(meta.int_or("attention.value_length", head_dim) == head_dim, src,
             ": attention.key_length and attention.value_length differ, which Llama-family models do not support");
  const std::int64_t rot = meta.int_or("rope.dimension_count", head_dim);
  LLMS_CHECK(rot == head_dim, src, ": ", arch, ".rope.dimension_count ", rot, " differs from the head size ", head_dim,
             " (partial rotary embeddings are not supported)");

  const auto* embd = file->find_tensor("token_embd.weight");
  LLMS_CHECK(embd != nullptr, src, ": tensor 'token_embd.weight' is missing");
  LLMS_CHECK(embd->dims.size() == 2 && static_cast<std::int64_t>(embd->dims[0]) == hidden, src,
             ": token_embd.weight should have dims [", hidden, ", vocab], found ", embd->dims.size(), " dims");
  const auto vocab = static_cast<std::int64_t>(embd->dims[1]);
  rep.tied_embeddings = file->find_tensor("output.weight") == nullptr;

  // Tensors.
  NamedTensors tensors;
  bool q_bias = false, o_bias = false, mlp_bias = false;
  for (const auto& info : file->tensors()) {
    const std::string hf = gguf_to_hf_tensor_name(info.name, src, spec.hf_architecture);
    rep.source_types[ggml_type_name(info.type)]++;
    at::Tensor t = at::empty({static_cast<std::int64_t>(info.n_elements)}, at::kFloat);
    dequantize(info.ggml_type(), file->tensor_bytes(info), std::span<float>(t.data_ptr<float>(), info.n_elements),
               src + ": tensor '" + info.name + "'");
    t = t.view(info.torch_shape());
    if (spec.permuted_qk && (info.name.find(".attn_q.") != std::string::npos))
      t = unpermute_qk(t, n_head);
    else if (spec.permuted_qk && (info.name.find(".attn_k.") != std::string::npos))
      t = unpermute_qk(t, n_kv);
    q_bias = q_bias || info.name.find(".attn_q.bias") != std::string::npos;
    o_bias = o_bias || info.name.find(".attn_output.bias") != std::string::npos;
    mlp_bias = mlp_bias || info.name.find(".ffn_gate.bias") != std::string::npos;
    rep.parameters += info.n_elements;
    tensors.emplace_back(hf, t.to(opt.dtype));
  }
  if (spec.attention_bias_key && q_bias && !o_bias) {  // HF's attention_bias also gives o_proj a bias
    for (const auto& t : model::layer_schema(spec.hf_architecture).tensors) {
      if (t.presence != model::LayerPresence::OProjBias) continue;
      for (std::int64_t l = 0; l < n_layers; ++l)
        tensors.emplace_back(model::WeightNames::layer(l, t.hf_leaf), at::zeros({hidden}, opt.dtype));
    }
  }
  rep.tensors = static_cast<std::int64_t>(tensors.size());

  // config.json
  json cfg = {{"architectures", json::array({spec.hf_architecture})},
              {"model_type", spec.model_type},
              {"vocab_size", vocab},
              {"hidden_size", hidden},
              {"intermediate_size", ffn},
              {"num_hidden_layers", n_layers},
              {"num_attention_heads", n_head},
              {"num_key_value_heads", n_kv},
              {"head_dim", head_dim},
              {"hidden_act", "silu"},
              {"max_position_embeddings", meta.int_or("context_length", 2048)},
              {"rms_norm_eps", meta.double_or("attention.layer_norm_rms_epsilon", 1e-6)},
              {"rope_theta", meta.double_or("rope.freq_base", 10000.0)},
              {"rope_scaling", nullptr},
              {"tie_word_embeddings", rep.tied_embeddings},
              {"torch_dtype", dtype_name(opt.dtype)},
              {"use_cache", true}};
  if (spec.attention_bias_key) cfg["attention_bias"] = q_bias;
  if (spec.permuted_qk)
    cfg["mlp_bias"] = mlp_bias;
  else
    cfg["use_sliding_window"] = false;
  if (const auto* st = meta.find("rope.scaling.type")) {
    const std::string type = st->as_string(arch + ".rope.scaling.type");
    if (type == "linear") {
      cfg["rope_scaling"] = {{"rope_type", "linear"}, {"factor", meta.double_or("rope.scaling.factor", 1.0)}};
    } else {
      LLMS_CHECK(type == "none", src, ": ", arch, ".rope.scaling.type '", type,
                 "' is not supported (supported: none, linear)");
    }
  }

  // Tokenizer.
  std::optional<GgufTokenizerFiles> tok;
  if (opt.write_tokenizer) {
    if (gguf_has_tokenizer(file->header()))
      tok = build_gguf_tokenizer(file->header(), src);
    else
      rep.notes.push_back("the GGUF has no tokenizer metadata: no tokenizer files were written");
  }
  json gen = {{"_from_model_config", true}};
  if (tok) {
    LLMS_CHECK(tok->vocab_size <= vocab, src, ": the tokenizer has ", tok->vocab_size,
               " tokens but token_embd.weight only ", vocab, " rows");
    if (tok->bos_id) cfg["bos_token_id"] = *tok->bos_id, gen["bos_token_id"] = *tok->bos_id;
    if (tok->eos_id) cfg["eos_token_id"] = *tok->eos_id, gen["eos_token_id"] = *tok->eos_id;
    if (tok->pad_id) cfg["pad_token_id"] = *tok->pad_id, gen["pad_token_id"] = *tok->pad_id;
    rep.tokenizer = tok->summary;
  }

  fs::create_directories(out_dir);
  auto saved = save_sharded(out_dir, tensors, opt.max_shard_bytes, {{"format", "pt"}});
  tensors.clear();
  rep.files = saved.files;
  if (!saved.index.empty()) rep.files.push_back(saved.index);
  auto write = [&](const char* name, const json& j) {
    write_file_atomic(out_dir / name, dump_json_checked(j, (out_dir / name).string()));
    rep.files.push_back(out_dir / name);
  };
  write("config.json", cfg);
  write("generation_config.json", gen);
  if (tok) {
    write("tokenizer.json", tok->tokenizer);
    write("tokenizer_config.json", tok->tokenizer_config);
  }
  return rep;
}

}  // namespace llmstudio::io
