// `llmstudio export`: a model folder (+ a PEFT LoRA adapter, merged) as a Hugging Face folder, or the adapter
// alone for PEFT. The work is infer::export_model.
#include <iostream>

#include "command.h"
#include "llmstudio/core/error.h"
#include "llmstudio/infer/export.h"
#include "llmstudio/infer/model_source.h"

namespace llmstudio::cli {
namespace {

struct ExportCliOptions {
  std::string model, adapter, out, dtype = "auto", max_shard = "2GB";
  bool merge = false, adapter_only = false;
};

void setup_export(CLI::App& app) {
  auto o = std::make_shared<ExportCliOptions>();
  auto* cmd = app.add_subcommand("export", "Write a Hugging Face model folder (merged adapter) or a PEFT adapter folder");
  cmd->add_option("-m,--model,-e,--experiment", o->model, "Model folder (config.json + *.safetensors) or experiment folder from `llmstudio train`")
      ->required();
  cmd->add_option("--adapter", o->adapter, "PEFT LoRA adapter folder to merge (or to export with --adapter-only)");
  cmd->add_option("-o,--output", o->out, "Output folder")->required();
  cmd->add_flag("--merge", o->merge, "Merge the adapter into the weights (the default with an adapter)");
  cmd->add_flag("--adapter-only", o->adapter_only, "Write adapter_config.json + adapter_model.safetensors only");
  cmd->add_option("--dtype", o->dtype, "auto (the checkpoint's)|float32|bfloat16|float16");
  cmd->add_option("--max-shard-size", o->max_shard, "Largest safetensors shard, e.g. 2GB, 500MB (transformers' units)");
  cmd->callback([o] {
    LLMS_CHECK(!(o->merge && o->adapter_only), "--merge and --adapter-only exclude each other");
    const auto source = infer::resolve_model_source(o->model, o->adapter);
    LLMS_CHECK(!o->merge || !source.adapter_dir.empty(), "--merge needs --adapter <dir> (or a LoRA experiment folder)");
    infer::ExportOptions e;
    e.model_dir = source.model_dir;
    e.adapter_dir = source.adapter_dir;
    e.out_dir = o->out;
    e.mode = o->adapter_only ? infer::ExportMode::adapter_only : infer::ExportMode::merged;
    e.dtype = o->dtype;
    e.max_shard_bytes = infer::parse_size(o->max_shard);
    auto r = infer::export_model(e);
    std::cout << "exported " << (o->adapter_only ? "adapter" : "model") << " to " << o->out << " (" << r.dtype << ", "
              << r.tensor_bytes << " bytes of tensors";
    if (r.shards) std::cout << ", " << r.shards << " safetensors file(s)";
    std::cout << "):";
    for (const auto& f : r.files) std::cout << " " << f.string();
    std::cout << "\n";
  });
}

}  // namespace
LLMS_COMMAND(80, setup_export);
}  // namespace llmstudio::cli
