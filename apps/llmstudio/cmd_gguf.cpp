// `llmstudio import-gguf`: convert a llama.cpp GGUF model (Llama-family) into a Hugging Face model folder
// (dequantised weights in the chosen dtype, config, tokenizer rebuilt from the GGUF vocabulary, chat template).
#include <chrono>
#include <filesystem>
#include <iostream>

#include "command.h"
#include "llmstudio/io/gguf_import.h"

namespace llmstudio::cli {
namespace {

struct ImportGgufOptions {
  std::string input, output, dtype = "float32";
  bool no_tokenizer = false, tensors_only = false;
};

void setup_import_gguf(CLI::App& app) {
  auto o = std::make_shared<ImportGgufOptions>();
  auto* cmd = app.add_subcommand("import-gguf", "Convert a GGUF model (llama / qwen2) into a Hugging Face model folder");
  cmd->add_option("gguf", o->input, "The .gguf file")->required();
  cmd->add_option("-o,--output", o->output, "Output folder (created; existing files are replaced)")->required();
  cmd->add_option("--dtype", o->dtype, "Weights dtype: float32|bfloat16|float16 (quantised tensors are dequantised)");
  cmd->add_flag("--no-tokenizer", o->no_tokenizer, "Do not write tokenizer files");
  cmd->add_flag("--tensors-only", o->tensors_only,
                "Write every tensor dequantised to float32 under its GGUF name into <output>/tensors.safetensors "
                "(no renaming or un-permuting; for inspection)");
  cmd->callback([o] {
    if (o->tensors_only) {
      std::filesystem::create_directories(o->output);
      auto n = io::export_gguf_tensors(o->input, std::filesystem::path(o->output) / "tensors.safetensors");
      std::cout << "wrote " << n << " tensors to " << o->output << "/tensors.safetensors\n";
      return;
    }
    io::GgufImportOptions opt;
    opt.dtype = io::parse_import_dtype(o->dtype);
    opt.write_tokenizer = !o->no_tokenizer;
    const auto t0 = std::chrono::steady_clock::now();
    auto rep = io::import_gguf(o->input, o->output, opt);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::cout << "imported " << o->input << (rep.name.empty() ? "" : " (" + rep.name + ")") << " -> " << o->output
              << "\n  architecture: " << rep.architecture << ", " << rep.tensors << " tensors, " << rep.parameters
              << " parameters, dtype " << o->dtype << (rep.tied_embeddings ? ", tied embeddings" : "") << "\n  source types:";
    for (const auto& [type, n] : rep.source_types) std::cout << " " << type << " x" << n;
    std::cout << "\n";
    if (!rep.tokenizer.empty()) std::cout << "  " << rep.tokenizer << "\n";
    for (const auto& n : rep.notes) std::cout << "  note: " << n << "\n";
    std::cout << "  files:";
    for (const auto& f : rep.files) std::cout << " " << f.filename().string();
    std::cout << "\n  done in " << s << " s\n";
  });
}

}  // namespace

LLMS_COMMAND(70, setup_import_gguf);

}  // namespace llmstudio::cli
