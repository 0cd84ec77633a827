// Export of a model (+ LoRA adapter) as a Hugging Face folder (see export.h).
#include "llmstudio/infer/export.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <cctype>
#include <cmath>

#include "llmstudio/core/error.h"
#include "llmstudio/io/atomic_file.h"
#include "llmstudio/io/confined_files.h"
#include "llmstudio/io/json_text.h"
#include "llmstudio/io/safetensors.h"
#include "llmstudio/model/causal_lm.h"
#include "llmstudio/model/lora.h"

namespace llmstudio::infer {
namespace fs = std::filesystem;

std::uint64_t parse_size(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
  std::string number(text.substr(0, i)), unit(text.substr(i));
  for (auto& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  double value = 0;
  try {
    std::size_t used = 0;
    value = std::stod(number, &used);
    if (used != number.size()) value = -1;
  } catch (const std::exception&) {
    value = -1;
  }
  double mult = -1;
  if (unit.empty() || unit == "B") mult = 1;
  else if (unit == "KB") mult = 1e3;
  else if (unit == "MB") mult = 1e6;
  else if (unit == "GB") mult = 1e9;
  else if (unit == "KIB") mult = 1024.0;
  else if (unit == "MIB") mult = 1024.0 * 1024;
  else if (unit == "GIB") mult = 1024.0 * 1024 * 1024;
  LLMS_CHECK(value > 0 && mult > 0, "size '", text, "' is not understood; expected e.g. 2GB, 500MB, 10KB, 1GiB or bytes");
  return static_cast<std::uint64_t>(std::llround(value * mult));
}

namespace {

nlohmann::ordered_json read_json(const fs::path& file) {
  LLMS_CHECK(fs::exists(file), "missing ", file.string());
  return io::parse_ordered_json(io::read_file(file), file.string(), io::kModelJsonMaxDepth);
}

at::ScalarType dtype_of(const std::string& name) {
  if (name == "float32") return at::kFloat;
  if (name == "bfloat16") return at::kBFloat16;
  if (name == "float16") return at::kHalf;
  fail("--dtype '", name, "' is not supported for export; allowed: auto, float32, bfloat16, float16");
}

const char* kTokenizerFiles[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                 "chat_template.jinja", "tokenizer.model", "vocab.json", "merges.txt",
                                 "added_tokens.json"};

std::string model_card(const ExportOptions& o, const std::string& dtype, const std::string& adapter_summary,
                       std::size_t shards) {
  std::string card = "---\nlibrary_name: transformers\ntags:\n- llmstudio\n";
  card += "---\n\n# " + fs::absolute(o.out_dir).filename().string() + "\n\n";
  card += "Exported by LLM Studio (`llmstudio export`).\n\n";
  card += "- Base model: `" + fs::absolute(o.model_dir).lexically_normal().string() + "`\n";
  card += "- LoRA adapter: " + adapter_summary + "\n";
  card += "- Weights: " + dtype + ", " + std::to_string(shards) + " safetensors file(s)\n\n";
  card += "## Usage\n\n```python\nimport torch\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n\n";
  card += "tokenizer = AutoTokenizer.from_pretrained(\"path/to/this/folder\")\n";
  card += "model = AutoModelForCausalLM.from_pretrained(\"path/to/this/folder\", dtype=torch." + dtype + ")\n";
  card += "messages = [{\"role\": \"user\", \"content\": \"Hello\"}]\n";
  card += "inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors=\"pt\")\n";
  card += "print(tokenizer.decode(model.generate(inputs, max_new_tokens=64)[0]))\n```\n";
  return card;
}

// With confine_roots, the model and adapter folders may hold no symlink resolving outside the roots (or outside
// the folder itself): the studio exports only what lies under its allowed folders.
void check_confined(const ExportOptions& o) {
  if (o.confine_roots.empty()) return;
  io::check_confined_folder(o.model_dir, o.confine_roots, "export: model folder");
  if (!o.adapter_dir.empty()) io::check_confined_folder(o.adapter_dir, o.confine_roots, "export: adapter folder");
}

// Copies a file's bytes as a new regular file (never a link), after checking the source folder again.
void copy_model_file(const ExportOptions& o, const fs::path& from, const fs::path& to) {
  check_confined(o);
  io::write_file_atomic(to, io::read_file(from));
}

}  // namespace

ExportReport export_model(const ExportOptions& o) {
  LLMS_CHECK(!o.out_dir.empty(), "export: no output folder (-o)");
  LLMS_CHECK(fs::exists(o.model_dir / "config.json"), "export: ", (o.model_dir / "config.json").string(),
             " not found (-m must be a model folder)");
  LLMS_CHECK(!fs::exists(o.out_dir) || !fs::equivalent(o.out_dir, o.model_dir),
             "export: the output folder ", o.out_dir.string(), " is the model folder; choose another -o");
  LLMS_CHECK(o.mode != ExportMode::adapter_only || !o.adapter_dir.empty(), "export: --adapter-only needs --adapter <dir>");
  LLMS_CHECK(o.max_shard_bytes > 0, "export: --max-shard-size must be > 0");
  check_confined(o);
  fs::create_directories(o.out_dir);
  ExportReport report;

  auto config_json = read_json(o.model_dir / "config.json");
  std::string src_dtype = "float32";
  for (const char* key : {"dtype", "torch_dtype"})
    if (config_json.contains(key) && config_json[key].is_string()) src_dtype = config_json[key].get<std::string>();
  report.dtype = o.dtype == "auto" ? src_dtype : o.dtype;
  const at::ScalarType target = dtype_of(report.dtype);

  // Merging happens in float32 (as PEFT's merge on an fp32 model), then the weights are cast once.
  const bool has_adapter = !o.adapter_dir.empty();
  auto lm = model::CausalLM::load(o.model_dir, {"cpu", has_adapter ? "float32" : report.dtype});
  model::LoraConfig lora;
  if (has_adapter) lora = model::load_peft_adapter(lm, o.adapter_dir);

  if (o.mode == ExportMode::adapter_only) {
    model::save_peft_adapter(lm, lora, o.out_dir, fs::absolute(o.model_dir).lexically_normal().string());
    report.files = {"adapter_config.json", "adapter_model.safetensors"};
    for (const auto& [name, t] : model::adapter_tensors(lm, lora)) report.tensor_bytes += t.nbytes();
    return report;
  }

  // Base tensors saved with the adapter (lora_unfreeze_layers) were loaded into lm; merging folds the adapters
  // (LoRA: W + s B A; DoRA: m / ||W + s B A||_row (W + s B A), as PEFT's merge_and_unload).
  if (has_adapter) model::merge_lora(lm);
  io::NamedTensors tensors;
  for (const auto& [name, t] : lm.named_parameters()) {
    tensors.emplace_back(name, t.detach().to(target).contiguous());
    report.tensor_bytes += tensors.back().second.nbytes();
  }
  // Earlier exports into the same folder may have left shards that the new index would not list.
  for (const auto& entry : fs::directory_iterator(o.out_dir)) {
    const std::string f = entry.path().filename().string();
    if (f.rfind("model", 0) == 0 && (entry.path().extension() == ".safetensors" || f == "model.safetensors.index.json"))
      fs::remove(entry.path());
  }
  auto saved = io::save_sharded(o.out_dir, tensors, o.max_shard_bytes, {{"format", "pt"}});
  report.shards = saved.files.size();
  for (const auto& f : saved.files) report.files.push_back(f.filename());
  if (!saved.index.empty()) report.files.push_back(saved.index.filename());

  if (config_json.contains("dtype")) config_json["dtype"] = report.dtype;
  if (config_json.contains("torch_dtype") || !config_json.contains("dtype")) config_json["torch_dtype"] = report.dtype;
  io::write_file_atomic(o.out_dir / "config.json", config_json.dump(2) + "\n");
  report.files.push_back("config.json");

  if (fs::exists(o.model_dir / "generation_config.json")) {
    copy_model_file(o, o.model_dir / "generation_config.json", o.out_dir / "generation_config.json");
  } else {
    nlohmann::ordered_json g = nlohmann::ordered_json::object();
    const auto& c = lm.config();
    if (c.bos_token_id) g["bos_token_id"] = *c.bos_token_id;
    if (c.eos_token_ids.size() == 1) g["eos_token_id"] = c.eos_token_ids[0];
    else if (!c.eos_token_ids.empty()) g["eos_token_id"] = c.eos_token_ids;
    if (c.pad_token_id) g["pad_token_id"] = *c.pad_token_id;
    io::write_file_atomic(o.out_dir / "generation_config.json", g.dump(2) + "\n");
  }
  report.files.push_back("generation_config.json");
  for (const char* f : kTokenizerFiles)
    if (fs::exists(o.model_dir / f)) {
      copy_model_file(o, o.model_dir / f, o.out_dir / f);
      report.files.push_back(f);
    }

  std::string adapter_summary = "none";
  if (has_adapter) {
    std::string targets;
    for (const auto& t : lora.resolved_targets()) targets += (targets.empty() ? "" : ", ") + t;
    adapter_summary = "`" + fs::absolute(o.adapter_dir).lexically_normal().string() + "` merged (r=" +
                      std::to_string(lora.r) + ", alpha=" + std::to_string(lora.alpha) + (lora.use_rslora ? ", rsLoRA" : "") +
                      (lora.use_dora ? ", DoRA" : "") + ", targets: " + targets +
                      (lora.saved_base_tensors.empty() ? "" : ", " + std::to_string(lora.saved_base_tensors.size()) +
                                                                  " trained base tensors") + ")";
  }
  io::write_file_atomic(o.out_dir / "README.md", model_card(o, report.dtype, adapter_summary, report.shards));
  report.files.push_back("README.md");
  return report;
}

}  // namespace llmstudio::infer
