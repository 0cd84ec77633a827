// config.json -> ModelConfig, with errors that name the file, the key, the value and what is allowed.
#include "llmstudio/model/model_config.h"

#include <nlohmann/json.hpp>

#include "llmstudio/core/error.h"
#include "llmstudio/io/atomic_file.h"
#include "llmstudio/io/json_text.h"
#include "llmstudio/model/architecture.h"
#include "llmstudio/model/layer_schema.h"

namespace llmstudio::model {
namespace {

using nlohmann::json;

const json* find(const json& j, const char* key) {
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

std::int64_t get_int(const json& j, const char* key, const std::string& src, std::optional<std::int64_t> dflt = {}) {
  const json* v = find(j, key);
  if (!v) {
    LLMS_CHECK(dflt.has_value(), src, ": required key '", key, "' is missing");
    return *dflt;
  }
  LLMS_CHECK(v->is_number_integer() || (v->is_number_float() && v->get<double>() == static_cast<std::int64_t>(v->get<double>())),
             src, ": key '", key, "' must be an integer, found ", io::json_preview(*v));
  return v->is_number_integer() ? v->get<std::int64_t>() : static_cast<std::int64_t>(v->get<double>());
}

double get_double(const json& j, const char* key, const std::string& src, double dflt) {
  const json* v = find(j, key);
  if (!v) return dflt;
  LLMS_CHECK(v->is_number(), src, ": key '", key, "' must be a number, found ", io::json_preview(*v));
  return v->get<double>();
}

bool get_bool(const json& j, const char* key, const std::string& src, bool dflt) {
  const json* v = find(j, key);
  if (!v) return dflt;
  LLMS_CHECK(v->is_boolean(), src, ": key '", key, "' must be true or false, found ", io::json_preview(*v));
  return v->get<bool>();
}

std::string get_string(const json& j, const char* key, const std::string& src, const std::string& dflt) {
  const json* v = find(j, key);
  if (!v) return dflt;
  LLMS_CHECK(v->is_string(), src, ": key '", key, "' must be a string, found ", io::json_preview(*v));
  return v->get<std::string>();
}

RopeConfig parse_rope(const json& j, const std::string& src) {
  RopeConfig r;
  // transformers v5: rope_parameters {rope_type, rope_theta, ...}; v4: rope_theta + rope_scaling {type|rope_type,...}
  const json* params = find(j, "rope_parameters");
  const json* scaling = find(j, "rope_scaling");
  r.theta = get_double(j, "rope_theta", src, 10000.0);
  const json* p = params ? params : scaling;
  if (p) {
    LLMS_CHECK(p->is_object(), src, ": '", params ? "rope_parameters" : "rope_scaling", "' must be an object, found ",
               io::json_preview(*p));
    r.theta = get_double(*p, "rope_theta", src, r.theta);
    r.type = get_string(*p, "rope_type", src, get_string(*p, "type", src, "default"));
    r.factor = get_double(*p, "factor", src, 1.0);
    r.low_freq_factor = get_double(*p, "low_freq_factor", src, 1.0);
    r.high_freq_factor = get_double(*p, "high_freq_factor", src, 4.0);
    r.original_max_position_embeddings = get_int(*p, "original_max_position_embeddings", src, 8192);
  }
  return r;
}

}  // namespace

ModelConfig parse_model_config(const json& j, const std::string& src) {
  LLMS_CHECK(j.is_object(), src, ": expected a JSON object");
  ModelConfig c;
  const json* archs = find(j, "architectures");
  if (archs && archs->is_array() && !archs->empty() && (*archs)[0].is_string()) {
    c.architecture = (*archs)[0].get<std::string>();
  } else {
    // Fall back to model_type (configs without "architectures").
    std::string mt = get_string(j, "model_type", src, "");
    for (const auto& a : supported_architectures())
      if (mt == a.model_type) c.architecture = a.hf_architecture;
    LLMS_CHECK(!c.architecture.empty(), src, ": no 'architectures' and model_type '", mt,
               "' is not supported; supported: ", supported_architecture_list());
  }
  const ArchitectureSpec& spec = architecture_spec(c.architecture);
  c.model_type = get_string(j, "model_type", src, spec.model_type);
  c.vocab_size = get_int(j, "vocab_size", src);
  c.hidden_size = get_int(j, "hidden_size", src);
  c.intermediate_size = get_int(j, "intermediate_size", src);
  c.num_hidden_layers = get_int(j, "num_hidden_layers", src);
  c.num_attention_heads = get_int(j, "num_attention_heads", src);
  c.num_key_value_heads = get_int(j, "num_key_value_heads", src, c.num_attention_heads);
  const std::int64_t split_head_dim = c.num_attention_heads > 0 ? c.hidden_size / c.num_attention_heads : 0;
  c.head_dim = get_int(j, "head_dim", src, spec.default_head_dim > 0 ? spec.default_head_dim : split_head_dim);
  c.max_position_embeddings = get_int(j, "max_position_embeddings", src, 2048);
  c.rms_norm_eps = get_double(j, "rms_norm_eps", src, 1e-6);
  c.hidden_act = get_string(j, "hidden_act", src, "silu");
  c.rope = parse_rope(j, src);
  c.tie_word_embeddings = get_bool(j, "tie_word_embeddings", src, false);
  if (spec.attention_bias_key) {
    c.attention_bias = get_bool(j, "attention_bias", src, false);
    c.o_proj_bias = c.attention_bias;
  }
  if (spec.qkv_bias) c.attention_bias = true;
  if (spec.mlp_bias_key) c.mlp_bias = get_bool(j, "mlp_bias", src, false);
  c.torch_dtype = get_string(j, "dtype", src, get_string(j, "torch_dtype", src, "float32"));

  c.layer_uses_sliding_window.assign(static_cast<size_t>(std::max<std::int64_t>(c.num_hidden_layers, 0)), false);
  if (spec.sliding_window_all_layers) {
    if (find(j, "sliding_window")) {
      c.sliding_window = get_int(j, "sliding_window", src);
      c.layer_uses_sliding_window.assign(c.layer_uses_sliding_window.size(), true);
    }
  } else if (spec.sliding_window_by_layer) {
    const json* types = find(j, "layer_types");
    bool use = get_bool(j, "use_sliding_window", src, false);
    if (use || types) {
      if (find(j, "sliding_window")) c.sliding_window = get_int(j, "sliding_window", src);
    }
    if (types) {
      LLMS_CHECK(types->is_array() && static_cast<std::int64_t>(types->size()) == c.num_hidden_layers, src,
                 ": 'layer_types' must list one entry per layer (", c.num_hidden_layers, "), found ", io::json_preview(*types));
      for (size_t i = 0; i < types->size(); ++i) {
        std::string t = (*types)[i].is_string() ? (*types)[i].get<std::string>() : "";
        LLMS_CHECK(t == "full_attention" || t == "sliding_attention", src, ": layer_types[", i, "] is '", t,
                   "'; allowed: full_attention, sliding_attention");
        c.layer_uses_sliding_window[i] = t == "sliding_attention" && c.sliding_window.has_value();
      }
    } else if (use && c.sliding_window) {
      std::int64_t from = get_int(j, "max_window_layers", src, 28);
      for (std::int64_t i = from; i < c.num_hidden_layers; ++i) c.layer_uses_sliding_window[static_cast<size_t>(i)] = true;
    }
  }
  if (find(j, "bos_token_id")) c.bos_token_id = get_int(j, "bos_token_id", src);
  if (find(j, "pad_token_id")) c.pad_token_id = get_int(j, "pad_token_id", src);
  if (const json* eos = find(j, "eos_token_id")) {
    if (eos->is_array()) {
      for (const auto& e : *eos) {
        LLMS_CHECK(e.is_number_integer(), src, ": 'eos_token_id' entries must be integers, found ", io::json_preview(*eos));
        c.eos_token_ids.push_back(e.get<std::int64_t>());
      }
    } else {
      c.eos_token_ids.push_back(get_int(j, "eos_token_id", src));
    }
  }
  try {
    c.validate();
  } catch (const Error& e) {
    fail(src, ": ", e.what());
  }
  return c;
}

void ModelConfig::validate() const {
  architecture_spec(architecture);
  auto positive = [](const char* key, std::int64_t v) {
    LLMS_CHECK(v > 0, "key '", key, "' must be > 0, found ", v);
  };
  positive("vocab_size", vocab_size);
  positive("hidden_size", hidden_size);
  positive("intermediate_size", intermediate_size);
  positive("num_hidden_layers", num_hidden_layers);
  positive("num_attention_heads", num_attention_heads);
  positive("num_key_value_heads", num_key_value_heads);
  positive("head_dim", head_dim);
  LLMS_CHECK(num_attention_heads % num_key_value_heads == 0, "num_attention_heads (", num_attention_heads,
             ") must be a multiple of num_key_value_heads (", num_key_value_heads, ")");
  LLMS_CHECK(head_dim % 2 == 0, "head_dim must be even for rotary embeddings, found ", head_dim);
  LLMS_CHECK(hidden_act == "silu" || hidden_act == "swish", "hidden_act '", hidden_act,
             "' is not supported; supported: silu");
  LLMS_CHECK(rope.type == "default" || rope.type == "linear" || rope.type == "llama3", "rope type '", rope.type,
             "' is not supported; supported: default, linear, llama3");
  LLMS_CHECK(rope.theta > 0, "rope_theta must be > 0, found ", rope.theta);
  LLMS_CHECK(rope.factor > 0, "rope factor must be > 0, found ", rope.factor);
  if (rope.type == "llama3")
    LLMS_CHECK(rope.high_freq_factor > rope.low_freq_factor, "llama3 rope: high_freq_factor (", rope.high_freq_factor,
               ") must be greater than low_freq_factor (", rope.low_freq_factor, ")");
  LLMS_CHECK(rms_norm_eps > 0, "rms_norm_eps must be > 0, found ", rms_norm_eps);
  if (sliding_window) LLMS_CHECK(*sliding_window > 0, "sliding_window must be > 0, found ", *sliding_window);
  LLMS_CHECK(static_cast<std::int64_t>(layer_uses_sliding_window.size()) == num_hidden_layers,
             "internal: per-layer sliding-window flags do not match num_hidden_layers");
}

std::int64_t ModelConfig::parameter_count() const {
  const std::int64_t h = hidden_size;
  std::int64_t layer = 0;
  for (const auto& t : layer_schema(architecture).tensors) {
    if (!tensor_present(t, *this)) continue;
    std::int64_t n = 1;
    for (std::int64_t d : tensor_shape(t, *this)) n *= d;
    layer += n;
  }
  std::int64_t total = num_hidden_layers * layer + vocab_size * h + h;
  if (!tie_word_embeddings) total += vocab_size * h;
  return total;
}

ModelConfig load_model_config(const std::filesystem::path& path) {
  std::filesystem::path file = std::filesystem::is_directory(path) ? path / "config.json" : path;
  LLMS_CHECK(std::filesystem::exists(file), "no config.json in ", path,
             "; expected a Hugging Face model folder (config.json + *.safetensors)");
  const json j = io::parse_json(io::read_file(file), file.string(), io::kModelJsonMaxDepth);
  return parse_model_config(j, file.string());
}

}  // namespace llmstudio::model
