// inspect_model(): reads headers only (safetensors are memory-mapped, no tensor is materialised).
#include "llmstudio/model/model_info.h"

#include <nlohmann/json.hpp>

#include <iomanip>
#include <sstream>

#include "llmstudio/core/error.h"
#include "llmstudio/io/safetensors.h"
#include "llmstudio/model/causal_lm.h"

namespace llmstudio::model {
namespace fs = std::filesystem;

ModelInfo inspect_model(const fs::path& path) {
  LLMS_CHECK(fs::exists(path), "no such file or folder: ", path);
  ModelInfo info;
  info.path = path;
  const bool is_dir = fs::is_directory(path);
  if (is_dir || path.filename() == "config.json") {
    fs::path dir = is_dir ? path : path.parent_path();
    info.config = load_model_config(dir);
  }
  auto ckpt = io::SafetensorsCheckpoint::open(path.filename() == "config.json" ? path.parent_path() : path);
  for (const auto& f : ckpt.files()) info.files.push_back(f->path().filename().string());
  for (const auto& name : ckpt.names()) {
    const auto& ti = ckpt.info(name);
    TensorSummary s{name, std::string(io::dtype_name(ti.dtype)), ti.shape, ti.nbytes(),
                    ckpt.file_of(name).path().filename().string()};
    info.parameter_count += ti.numel();
    info.file_bytes += ti.nbytes();
    info.dtype_counts[s.dtype] += ti.numel();
    info.tensors.push_back(std::move(s));
  }
  if (info.config) {
    const auto expected = expected_tensor_shapes(*info.config);
    std::vector<std::string> missing, misshaped;
    std::map<std::string, const TensorSummary*> by_name;
    for (const auto& t : info.tensors) by_name[t.name] = &t;
    for (const auto& [name, shape] : expected) {
      auto it = by_name.find(name);
      if (it == by_name.end())
        missing.push_back(name);
      else if (it->second->shape != shape)
        misshaped.push_back(name);
    }
    for (const auto& t : info.tensors)
      if (!expected.count(t.name) && t.name.find("rotary_emb.inv_freq") == std::string::npos &&
          !(t.name == "lm_head.weight" && info.config->tie_word_embeddings))
        info.unexpected.push_back(t.name);
    auto first = [](const std::vector<std::string>& v) {
      std::string s;
      for (size_t i = 0; i < v.size() && i < 6; ++i) s += (i ? ", " : "") + v[i];
      return v.size() > 6 ? s + ", ... (" + std::to_string(v.size()) + " in all)" : s;
    };
    LLMS_CHECK(missing.empty(), path.string(), ": missing tensors for ", info.config->architecture, ": ", first(missing));
    LLMS_CHECK(misshaped.empty(), path.string(), ": tensors with the wrong shape for config.json: ", first(misshaped));
  }
  return info;
}

std::uint64_t weight_memory_bytes(const ModelInfo& info, const std::string& dtype) {
  std::uint64_t per = dtype == "float32" ? 4 : 2;
  std::uint64_t n = info.config ? static_cast<std::uint64_t>(info.config->parameter_count()) : info.parameter_count;
  return n * per;
}

namespace {
std::string human(std::uint64_t bytes) {
  std::ostringstream os;
  const double b = static_cast<double>(bytes);
  if (b >= 1e9) os << std::fixed << std::setprecision(2) << b / (1024.0 * 1024 * 1024) << " GiB";
  else os << std::fixed << std::setprecision(1) << b / (1024.0 * 1024) << " MiB";
  return os.str();
}
std::string shape_str(const std::vector<std::int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}
}  // namespace

nlohmann::json to_json(const ModelInfo& info, bool with_tensors) {
  nlohmann::json j;
  j["path"] = info.path.string();
  j["files"] = info.files;
  j["parameter_count"] = info.parameter_count;
  j["file_bytes"] = info.file_bytes;
  j["dtypes"] = info.dtype_counts;
  j["unexpected_tensors"] = info.unexpected;
  if (info.config) {
    const auto& c = *info.config;
    j["architecture"] = c.architecture;
    j["model_type"] = c.model_type;
    j["config"] = {{"vocab_size", c.vocab_size},
                   {"hidden_size", c.hidden_size},
                   {"intermediate_size", c.intermediate_size},
                   {"num_hidden_layers", c.num_hidden_layers},
                   {"num_attention_heads", c.num_attention_heads},
                   {"num_key_value_heads", c.num_key_value_heads},
                   {"head_dim", c.head_dim},
                   {"rope_type", c.rope.type},
                   {"rope_theta", c.rope.theta},
                   {"tie_word_embeddings", c.tie_word_embeddings},
                   {"sliding_window", c.sliding_window ? nlohmann::json(*c.sliding_window) : nlohmann::json()},
                   {"torch_dtype", c.torch_dtype}};
    j["model_parameter_count"] = c.parameter_count();
  }
  j["memory_bytes"] = {{"float32", weight_memory_bytes(info, "float32")},
                       {"bfloat16", weight_memory_bytes(info, "bfloat16")},
                       {"float16", weight_memory_bytes(info, "float16")}};
  if (with_tensors) {
    nlohmann::json t = nlohmann::json::array();
    for (const auto& s : info.tensors)
      t.push_back({{"name", s.name}, {"dtype", s.dtype}, {"shape", s.shape}, {"bytes", s.bytes}, {"file", s.file}});
    j["tensors"] = t;
  }
  return j;
}

std::string format_info(const ModelInfo& info, bool with_tensors) {
  std::ostringstream os;
  auto row = [&](const std::string& k, const std::string& v) { os << "  " << std::left << std::setw(20) << k << v << "\n"; };
  os << info.path.string() << "\n";
  if (info.config) {
    const auto& c = *info.config;
    row("architecture", c.architecture + " (" + c.model_type + ")");
    row("layers", std::to_string(c.num_hidden_layers) + ", hidden " + std::to_string(c.hidden_size) + ", mlp " +
                      std::to_string(c.intermediate_size));
    row("attention", std::to_string(c.num_attention_heads) + " heads, " + std::to_string(c.num_key_value_heads) +
                         " kv heads, head_dim " + std::to_string(c.head_dim) +
                         (c.sliding_window ? ", sliding window " + std::to_string(*c.sliding_window) : ""));
    row("rope", c.rope.type + ", theta " + std::to_string(c.rope.theta));
    row("vocab", std::to_string(c.vocab_size) + (c.tie_word_embeddings ? " (tied embeddings)" : ""));
  }
  row("parameters", std::to_string(info.parameter_count));
  std::string dt;
  for (const auto& [d, n] : info.dtype_counts) dt += (dt.empty() ? "" : ", ") + d + " " + std::to_string(n);
  row("stored dtypes", dt);
  row("files", std::to_string(info.files.size()) + " (" + human(info.file_bytes) + ")");
  row("memory float32", human(weight_memory_bytes(info, "float32")));
  row("memory bf16/fp16", human(weight_memory_bytes(info, "bfloat16")));
  if (!info.unexpected.empty()) row("unexpected tensors", std::to_string(info.unexpected.size()) + " (ignored)");
  if (with_tensors) {
    os << "Tensors\n";
    for (const auto& t : info.tensors)
      os << "  " << std::left << std::setw(52) << t.name << std::setw(6) << t.dtype << shape_str(t.shape) << "\n";
  }
  return os.str();
}

}  // namespace llmstudio::model
