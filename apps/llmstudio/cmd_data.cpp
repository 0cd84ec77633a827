// `llmstudio config check` (validate an H2O-style cfg.yaml, print the resolved YAML and warnings), `config docs`
// (docs/CONFIG.md from the key table) and
// `llmstudio data preview|split|samples` (read a dataset file; show the train/validation split a config makes;
// print the tokenized training samples).
#include <nlohmann/json.hpp>

#include <algorithm>
#include <iostream>

#include "command.h"
#include "llmstudio/data/dataset_reader.h"
#include "llmstudio/data/dataset_split.h"
#include "llmstudio/experiment/config_schema.h"
#include "llmstudio/experiment/experiment_config.h"
#include "llmstudio/tokenizer/tokenizer.h"
#include "llmstudio/train/training_data.h"

namespace llmstudio::cli {
namespace {

struct ConfigOptions {
  std::string config;
  std::vector<std::string> sets;
};

void add_config_options(CLI::App* cmd, ConfigOptions& o) {
  cmd->add_option("-c,--config", o.config, "Experiment config (H2O LLM Studio cfg.yaml layout)")->required();
  cmd->add_option("--set", o.sets, "Override a key, e.g. --set training.learning_rate=1e-4 (repeatable)");
}

void print_warnings(const experiment::ExperimentConfig& cfg) {
  for (const auto& w : cfg.warnings) std::cerr << "warning: " << w << "\n";
  if (!cfg.ignored_keys.empty()) {
    std::cerr << "note: " << cfg.ignored_keys.size() << " H2O setting(s) have no effect in llmstudio and were ignored:";
    for (const auto& k : cfg.ignored_keys) std::cerr << " " << k;
    std::cerr << "\n";
  }
}

// One line, at most `width` characters, newlines shown as \n.
std::string short_cell(const data::Cell& c, std::size_t width) {
  if (!c) return "<null>";
  std::string out;
  for (char ch : *c) {
    if (ch == '\n') out += "\\n";
    else if (ch == '\r') out += "\\r";
    else if (ch == '\t') out += "\\t";
    else out += ch;
  }
  if (out.size() > width) {
    std::size_t cut = width;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;  // keep UTF-8 whole
    out = out.substr(0, cut) + "...";
  }
  return out;
}

void print_table(const data::Table& t, std::size_t rows) {
  std::cout << "columns (" << t.num_columns() << "): " << data::quoted_list(t.column_names(), 1000) << "\n";
  std::cout << "rows: " << t.num_rows() << "\n";
  for (std::size_t r = 0; r < std::min(rows, t.num_rows()); ++r) {
    std::cout << "\n[" << r << "]\n";
    for (std::size_t c = 0; c < t.num_columns(); ++c)
      std::cout << "  " << t.column_names()[c] << ": " << short_cell(t.cell(r, c), 100) << "\n";
  }
}

nlohmann::json table_json(const data::Table& t, std::size_t rows) {
  nlohmann::json j;
  j["columns"] = t.column_names();
  j["num_rows"] = t.num_rows();
  auto& out = j["rows"] = nlohmann::json::array();
  for (std::size_t r = 0; r < std::min(rows, t.num_rows()); ++r) {
    nlohmann::json row = nlohmann::json::array();
    for (std::size_t c = 0; c < t.num_columns(); ++c) {
      const auto& cell = t.cell(r, c);
      row.push_back(cell ? nlohmann::json(*cell) : nlohmann::json(nullptr));
    }
    out.push_back(std::move(row));
  }
  return j;
}

void setup_config(CLI::App& app) {
  auto* cmd = app.add_subcommand("config", "Experiment configs in H2O LLM Studio's cfg.yaml layout");
  cmd->require_subcommand(1);
  auto opts = std::make_shared<ConfigOptions>();
  auto* check = cmd->add_subcommand("check", "Validate a config; print the resolved YAML (stdout) and warnings (stderr)");
  add_config_options(check, *opts);
  check->callback([opts] {
    auto cfg = experiment::load_experiment_config(opts->config, opts->sets);
    std::cout << experiment::to_yaml(cfg);
    print_warnings(cfg);
    for (const auto& p : experiment::check_paths(cfg)) std::cerr << "warning: " << p << " (training would fail)\n";
  });
  cmd->add_subcommand("docs", "Print the reference of every config key as Markdown (docs/CONFIG.md)")
      ->callback([] { std::cout << experiment::config_reference_markdown(); });
}

void setup_data(CLI::App& app) {
  auto* cmd = app.add_subcommand("data", "Dataset files: preview, and the train/validation split of a config");
  cmd->require_subcommand(1);

  struct PreviewOptions {
    std::string file;
    std::size_t rows = 5;
    bool all = false;
    bool json = false;
  };
  auto p = std::make_shared<PreviewOptions>();
  auto* preview = cmd->add_subcommand("preview", "Columns, row count and the first rows of a .csv/.jsonl/.parquet file");
  preview->add_option("file", p->file, "Dataset file")->required();
  preview->add_option("--rows", p->rows, "Rows to show (default 5)");
  preview->add_flag("--all", p->all, "Show every row");
  preview->add_flag("--json", p->json, "Print JSON: {format, columns, num_rows, rows: [[cell or null, ...]]}");
  preview->callback([p] {
    auto table = data::read_dataset(p->file);
    std::size_t rows = p->all ? table.num_rows() : p->rows;
    if (p->json) {
      auto j = table_json(table, rows);
      j["file"] = p->file;
      j["format"] = data::to_string(data::dataset_format(p->file));
      std::cout << j.dump(2) << "\n";
    } else {
      std::cout << "file: " << p->file << " (" << data::to_string(data::dataset_format(p->file)) << ")\n";
      print_table(table, rows);
    }
  });

  auto s = std::make_shared<ConfigOptions>();
  auto json = std::make_shared<bool>(false);
  auto* split = cmd->add_subcommand("split", "Read, check and split the datasets of a config; print the counts");
  add_config_options(split, *s);
  split->add_flag("--json", *json, "Print JSON");
  split->callback([s, json] {
    auto cfg = experiment::load_experiment_config(s->config, s->sets);
    print_warnings(cfg);
    auto prepared = data::prepare_datasets(experiment::dataset_spec(cfg));
    const auto& r = prepared.report;
    for (const auto& w : r.warnings) std::cerr << "warning: " << w << "\n";
    if (*json) {
      nlohmann::json j = {{"train_rows", prepared.train.num_rows()},
                          {"validation_rows", prepared.validation.num_rows()},
                          {"train_file_rows", r.train_file_rows},
                          {"validation_file_rows", r.validation_file_rows},
                          {"conversations", r.conversations},
                          {"dropped_empty_prompts", r.dropped_empty_prompts},
                          {"empty_answers", r.empty_answers},
                          {"dangling_parent_ids", r.dangling_parent_ids},
                          {"warnings", r.warnings}};
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::cout << "train file rows: " << r.train_file_rows << "\n";
    if (cfg.dataset.validation_strategy == experiment::ValidationStrategy::Custom) std::cout << "validation file rows: " << r.validation_file_rows << "\n";
    else std::cout << "conversations (split groups): " << r.conversations << "\n";
    std::cout << "train rows: " << prepared.train.num_rows() << "\nvalidation rows: " << prepared.validation.num_rows()
              << "\ndropped (empty prompt): " << r.dropped_empty_prompts
              << "\ndangling parent ids: " << r.dangling_parent_ids << "\n";
  });

  auto t = std::make_shared<ConfigOptions>();
  auto limit = std::make_shared<std::size_t>(0);
  auto* samples = cmd->add_subcommand(
      "samples", "The tokenized training samples of a config, as the trainer builds them (one JSON object per line: "
                 "input_ids, labels with -100 where no loss is taken), before batching and padding");
  add_config_options(samples, *t);
  samples->add_option("--rows", *limit, "At most this many samples (default: all)");
  samples->callback([t, limit] {
    auto cfg = experiment::load_experiment_config(t->config, t->sets);
    print_warnings(cfg);
    const auto tok = tokenizer::Tokenizer::from_path(cfg.llm_backbone);
    const auto data = train::prepare_training_data(cfg, tok);
    for (const auto& w : data.warnings) std::cerr << "warning: " << w << "\n";
    const std::size_t n = *limit ? std::min(*limit, data.train.size()) : data.train.size();
    for (std::size_t i = 0; i < n; ++i)
      std::cout << nlohmann::json{{"input_ids", data.train[i].input_ids}, {"labels", data.train[i].labels}}.dump() << "\n";
  });
}

}  // namespace
LLMS_COMMAND(50, setup_config);
LLMS_COMMAND(51, setup_data);
}  // namespace llmstudio::cli
