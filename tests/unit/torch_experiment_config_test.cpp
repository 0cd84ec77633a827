// Experiment config (experiment/experiment_config.h): H2O defaults, YAML loading, errors naming key/value/allowed values,
// ignored H2O keys, "not supported yet" refusals, --set overrides, YAML round trip, the H2O example config.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <tuple>

#include "llmstudio/core/error.h"
#include "llmstudio/io/atomic_file.h"
#include "llmstudio/experiment/experiment_config.h"

namespace fs = std::filesystem;
using llmstudio::Error;
using namespace llmstudio::experiment;

namespace {

// Repository root: LLMS_SHARED_FIXTURES is "<source dir>/../shared/fixtures".
fs::path repo_root() { return fs::path(LLMS_SHARED_FIXTURES).parent_path().parent_path().parent_path(); }

const std::string kMinimal = "llm_backbone: /models/tiny\ndataset:\n  train_dataframe: data/train.csv\n";

// The message of the llmstudio::Error that `f` throws ("" if none).
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

ExperimentConfig parse(const std::string& yaml, const std::vector<std::string>& sets = {}) {
  return parse_experiment_config(yaml, "cfg.yaml", sets);
}

bool contains(const std::vector<std::string>& v, const std::string& needle) {
  for (const auto& s : v)
    if (s.find(needle) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST(TrainConfig, DefaultsAreH2OsForCausalLM) {
  ExperimentConfig c;
  EXPECT_EQ(c.problem_type, "text_causal_language_modeling");
  EXPECT_EQ(to_string(c.dataset.validation_strategy), "automatic");
  EXPECT_DOUBLE_EQ(c.dataset.validation_size, 0.01);
  EXPECT_EQ(c.dataset.prompt_column, (std::vector<std::string>{"instruction", "input"}));
  EXPECT_EQ(c.dataset.answer_column, "output");
  EXPECT_EQ(c.dataset.system_column, "system");
  EXPECT_EQ(c.dataset.parent_id_column, "parent_id");
  EXPECT_EQ(c.dataset.id_column, "id");
  EXPECT_EQ(c.dataset.text_prompt_start, "<|prompt|>");
  EXPECT_EQ(c.dataset.text_answer_separator, "<|answer|>");
  EXPECT_TRUE(c.dataset.mask_prompt_labels);
  EXPECT_EQ(c.tokenizer.max_length, 512);
  EXPECT_DOUBLE_EQ(c.training.learning_rate, 1e-4);
  EXPECT_EQ(c.training.batch_size, 2);
  EXPECT_EQ(c.training.epochs, 1);
  EXPECT_EQ(to_string(c.training.schedule), "Cosine");
  EXPECT_EQ(to_string(c.training.optimizer), "AdamW");
  EXPECT_EQ(to_string(c.training.loss_function), "TokenAveragedCrossEntropy");
  EXPECT_TRUE(c.training.lora);
  EXPECT_EQ(c.training.lora_r, 4);
  EXPECT_EQ(c.training.lora_alpha, 16);
  EXPECT_DOUBLE_EQ(c.training.lora_dropout, 0.05);
  EXPECT_EQ(to_string(c.training.save_checkpoint), "last");
  EXPECT_TRUE(c.environment.mixed_precision);
  EXPECT_EQ(c.environment.seed, -1);
  // deliberate differences
  EXPECT_EQ(to_string(c.architecture.backbone_dtype), "auto");
  EXPECT_EQ(to_string(c.prediction.metric), "Perplexity");
}

TEST(TrainConfig, MinimalFileLoadsAndValidates) {
  auto c = parse(kMinimal);
  EXPECT_EQ(c.llm_backbone, "/models/tiny");
  EXPECT_EQ(c.dataset.train_dataframe, "data/train.csv");
  EXPECT_TRUE(c.warnings.empty());
  EXPECT_TRUE(c.ignored_keys.empty());
}

TEST(TrainConfig, MissingBackboneIsAnErrorWithHint) {
  auto msg = error_of([] { parse("dataset:\n  train_dataframe: x.csv\n"); });
  EXPECT_NE(msg.find("llm_backbone"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--set llm_backbone="), std::string::npos) << msg;
}

TEST(TrainConfig, UnknownKeysAreErrorsWithSuggestion) {
  auto msg = error_of([] { parse(kMinimal + "training:\n  learnin_rate: 0.1\n"); });
  EXPECT_NE(msg.find("unknown key training.learnin_rate"), std::string::npos) << msg;
  EXPECT_NE(msg.find("did you mean training.learning_rate"), std::string::npos) << msg;
  msg = error_of([] { parse(kMinimal + "trainer:\n  epochs: 1\n"); });
  EXPECT_NE(msg.find("trainer"), std::string::npos) << msg;
  msg = error_of([] { parse(kMinimal + "dataset:\n  config_item_that_is_not_used: 0\n"); });
  EXPECT_NE(msg.find("config_item_that_is_not_used"), std::string::npos) << msg;
}

TEST(TrainConfig, InvalidValuesNameKeyValueAndAllowedValues) {
  auto msg = error_of([] { parse(kMinimal + "training:\n  schedule: Exponential\n"); });
  EXPECT_NE(msg.find("training.schedule"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Exponential"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Cosine, Linear, Constant"), std::string::npos) << msg;

  msg = error_of([] { parse(kMinimal + "training:\n  batch_size: two\n"); });
  EXPECT_NE(msg.find("training.batch_size"), std::string::npos) << msg;
  EXPECT_NE(msg.find("\"two\""), std::string::npos) << msg;
  EXPECT_NE(msg.find("an integer"), std::string::npos) << msg;

  msg = error_of([] { parse(kMinimal + "training:\n  lora: maybe\n"); });
  EXPECT_NE(msg.find("training.lora"), std::string::npos) << msg;
  EXPECT_NE(msg.find("true or false"), std::string::npos) << msg;

  msg = error_of([] { parse(kMinimal + "dataset:\n  train_dataframe: a.csv\n  validation_size: 1.5\n"); });
  EXPECT_NE(msg.find("dataset.validation_size"), std::string::npos) << msg;
  EXPECT_NE(msg.find("1.5"), std::string::npos) << msg;

  msg = error_of([] { parse(kMinimal + "dataset:\n  train_dataframe: a.csv\n  validation_strategy: kfold\n"); });
  EXPECT_NE(msg.find("automatic, custom"), std::string::npos) << msg;

  msg = error_of([] { parse(kMinimal + "training:\n  learning_rate: [1, 2]\n"); });
  EXPECT_NE(msg.find("training.learning_rate"), std::string::npos) << msg;

  msg = error_of([] { parse(kMinimal + "dataset:\n  train_dataframe: a.csv\n  validation_strategy: custom\n"); });
  EXPECT_NE(msg.find("dataset.validation_dataframe"), std::string::npos) << msg;

  msg = error_of([] { parse(kMinimal + "dataset:\n  train_dataframe: a.csv\n  id_column: pid\n  parent_id_column: pid\n"); });
  EXPECT_NE(msg.find("must be different"), std::string::npos) << msg;
}

TEST(TrainConfig, ValuesPastTheirUpperBoundAreRefusedWithTheRange) {
  // Each value would only exhaust memory or time once training runs (issue 11: lora_r = 2^62, batch_size = 1e12).
  const std::vector<std::tuple<std::string, std::string, std::string>> cases = {
      {"training:\n  batch_size: 1e12\n", "training.batch_size", "[1, 65536]"},
      {"training:\n  lora_r: 4611686018427387904\n", "training.lora_r", "[1, 4096]"},
      {"training:\n  lora_alpha: 2000000\n", "training.lora_alpha", "[1, 1048576]"},
      {"training:\n  epochs: 1000000\n", "training.epochs", "[0, 10000]"},
      {"training:\n  grad_accumulation: 100000\n", "training.grad_accumulation", "[1, 65536]"},
      {"training:\n  evaluation_epochs: 1e9\n", "training.evaluation_epochs", "(0.0, 10000.0]"},
      {"training:\n  warmup_epochs: 1e9\n", "training.warmup_epochs", "[0.0, 10000.0]"},
      {"tokenizer:\n  max_length: 2000000\n", "tokenizer.max_length", "[1, 1048576]"},
      {"prediction:\n  max_length_inference: 2000000\n", "prediction.max_length_inference", "[1, 1048576]"},
      {"prediction:\n  batch_size_inference: 100000\n", "prediction.batch_size_inference", "[0, 65536]"},
      {"prediction:\n  num_beams: 1000\n", "prediction.num_beams", "[1, 256]"},
      {"prediction:\n  top_k: 100000000\n", "prediction.top_k", "[0, 16777216]"},
      {"prediction:\n  max_time: 1e9\n", "prediction.max_time", "[0.0, 86400.0]"},
  };
  for (const auto& [yaml, key, range] : cases) {
    const auto msg = error_of([&] { parse(kMinimal + yaml); });
    EXPECT_NE(msg.find(key), std::string::npos) << yaml << " -> " << msg;
    EXPECT_NE(msg.find("allowed range " + range), std::string::npos) << yaml << " -> " << msg;
  }
  // The bounds themselves are accepted.
  EXPECT_NO_THROW(parse(kMinimal + "training:\n  batch_size: 65536\n  lora_r: 4096\n  epochs: 10000\n"
                                   "  grad_accumulation: 65536\n"));
  // --set overrides are bounded the same way.
  const auto msg = error_of([] { parse(kMinimal, {"training.batch_size=1e12"}); });
  EXPECT_NE(msg.find("training.batch_size: invalid value 1000000000000; allowed range [1, 65536]"), std::string::npos) << msg;
}

TEST(TrainConfig, QuantizedBackbonesAndOtherProblemTypesAreRefused) {
  for (const char* dtype : {"int4", "int8"}) {
    auto msg = error_of([&] { parse(kMinimal + "architecture:\n  backbone_dtype: " + dtype + "\n"); });
    EXPECT_NE(msg.find("architecture.backbone_dtype"), std::string::npos) << msg;
    EXPECT_NE(msg.find(dtype), std::string::npos) << msg;
    EXPECT_NE(msg.find("not supported yet"), std::string::npos) << msg;
    EXPECT_NE(msg.find("bfloat16"), std::string::npos) << msg;  // the hint
  }
  for (const char* dtype : {"float32", "bfloat16", "float16", "auto"})
    EXPECT_EQ(to_string(parse(kMinimal + "architecture:\n  backbone_dtype: " + dtype + "\n").architecture.backbone_dtype), dtype);
  auto msg = error_of([] { parse(kMinimal + "problem_type: text_dpo_modeling\ntraining:\n  beta: 0.1\n"); });
  EXPECT_NE(msg.find("not supported yet"), std::string::npos) << msg;  // refused before its unknown keys
  EXPECT_NE(msg.find("text_dpo_modeling"), std::string::npos) << msg;
  msg = error_of([] { parse(kMinimal + "problem_type: image_classification\n"); });
  EXPECT_NE(msg.find("allowed values: text_causal_language_modeling"), std::string::npos) << msg;
  EXPECT_TRUE(parse(kMinimal + "training:\n  use_dora: true\n").training.use_dora);  // DoRA is implemented
  msg = error_of([] { parse(kMinimal + "training:\n  use_rlhf: true\n"); });
  EXPECT_NE(msg.find("not supported yet"), std::string::npos) << msg;
}

TEST(TrainConfig, IgnoredH2OKeysWarnOnlyWhenTheyWouldMatter) {
  auto c = parse(kMinimal +
                 "environment:\n  gpus: ['0', '1']\n  use_deepspeed: false\n  number_of_workers: 8\n"
                 "logging:\n  logger: None\n  neptune_project: org/proj\n");
  EXPECT_TRUE(c.warnings.empty()) << c.warnings.front();
  EXPECT_TRUE(contains(c.ignored_keys, "environment.gpus"));
  EXPECT_TRUE(contains(c.ignored_keys, "logging.neptune_project"));

  c = parse(kMinimal + "environment:\n  use_deepspeed: true\nlogging:\n  logger: Neptune\n");
  ASSERT_EQ(c.warnings.size(), 2u);
  EXPECT_TRUE(contains(c.warnings, "environment.use_deepspeed: \"true\" is ignored"));
  EXPECT_TRUE(contains(c.warnings, "DeepSpeed"));
  EXPECT_TRUE(contains(c.warnings, "logging.logger: \"Neptune\" is ignored"));

  c = parse(kMinimal + "prediction:\n  metric: GPT\n");
  EXPECT_EQ(to_string(c.prediction.metric), "Perplexity");
  EXPECT_TRUE(contains(c.warnings, "prediction.metric: \"GPT\""));
}

TEST(TrainConfig, SetOverridesAreTypedByKey) {
  auto c = parse(kMinimal, {"training.learning_rate=1e-4", "training.epochs=3", "training.lora=false",
                            "dataset.prompt_column=instruction,input", "llm_backbone=/other/model",
                            "training.differential_learning_rate_layers=[embed, head]",
                            "dataset.text_prompt_start=<|user|>"});
  EXPECT_DOUBLE_EQ(c.training.learning_rate, 1e-4);
  EXPECT_EQ(c.training.epochs, 3);
  EXPECT_FALSE(c.training.lora);
  EXPECT_EQ(c.dataset.prompt_column, (std::vector<std::string>{"instruction", "input"}));
  EXPECT_EQ(c.llm_backbone, "/other/model");
  EXPECT_EQ(c.training.differential_learning_rate_layers, (std::vector<std::string>{"embed", "head"}));
  EXPECT_EQ(c.dataset.text_prompt_start, "<|user|>");

  auto msg = error_of([] { parse(kMinimal, {"training.epochs=1.5"}); });
  EXPECT_NE(msg.find("training.epochs"), std::string::npos) << msg;
  EXPECT_NE(msg.find("1.5"), std::string::npos) << msg;
  msg = error_of([] { parse(kMinimal, {"training.epoch=2"}); });
  EXPECT_NE(msg.find("unknown key training.epoch"), std::string::npos) << msg;
  EXPECT_NE(msg.find("training.epochs"), std::string::npos) << msg;
  msg = error_of([] { parse(kMinimal, {"training.epochs"}); });
  EXPECT_NE(msg.find("section.key=value"), std::string::npos) << msg;
  // overrides are validated: an override can fix a refused value from the file
  msg = error_of([] { parse(kMinimal, {"architecture.backbone_dtype=int4"}); });
  EXPECT_NE(msg.find("not supported yet"), std::string::npos) << msg;
  EXPECT_EQ(to_string(parse(kMinimal + "architecture:\n  backbone_dtype: int4\n", {"architecture.backbone_dtype=float16"})
                          .architecture.backbone_dtype),
            "float16");
}

TEST(TrainConfig, ListsAcceptH2OSpellings) {
  auto c = parse(kMinimal + "dataset:\n  train_dataframe: a.csv\n  prompt_column: question\n"
                 "training:\n  lora_target_modules: [q_proj, v_proj]\n  differential_learning_rate_layers: []\n");
  EXPECT_EQ(c.dataset.prompt_column, (std::vector<std::string>{"question"}));
  EXPECT_EQ(c.training.lora_target_modules, "q_proj,v_proj");
  EXPECT_EQ(c.training.lora_target_module_list(), (std::vector<std::string>{"q_proj", "v_proj"}));
  EXPECT_TRUE(c.training.differential_learning_rate_layers.empty());
  c = parse(kMinimal + "training:\n  lora_target_modules: 'q_proj, k_proj ,v_proj'\n");
  EXPECT_EQ(c.training.lora_target_module_list(), (std::vector<std::string>{"q_proj", "k_proj", "v_proj"}));
  EXPECT_TRUE(parse(kMinimal).training.lora_target_module_list().empty());
  // H2O writes some integers as floats
  EXPECT_EQ(parse(kMinimal + "training:\n  batch_size: 4.0\n").training.batch_size, 4);
}

TEST(TrainConfig, YamlRoundTripKeepsEveryValue) {
  auto c = parse(kMinimal, {"training.learning_rate=0.00003", "training.weight_decay=1e-05",
                            "dataset.prompt_column=q,context", "dataset.text_answer_separator=\\n### Answer:",
                            "dataset.validation_dataframe=", "environment.seed=1234", "tokenizer.max_length=1024",
                            "training.lora_target_modules=q_proj,v_proj", "prediction.stop_tokens=<|end|>"});
  std::string yaml = to_yaml(c);
  EXPECT_NE(yaml.find("weight_decay: 1.0e-05"), std::string::npos) << yaml;  // PyYAML-readable float
  auto back = parse(yaml);
  EXPECT_EQ(to_yaml(back), yaml);
  EXPECT_DOUBLE_EQ(back.training.learning_rate, 0.00003);
  EXPECT_DOUBLE_EQ(back.training.weight_decay, 1e-05);
  EXPECT_EQ(back.dataset.prompt_column, (std::vector<std::string>{"q", "context"}));
  EXPECT_EQ(back.dataset.text_answer_separator, "\\n### Answer:");
  EXPECT_EQ(back.dataset.validation_dataframe, "");
  EXPECT_EQ(back.environment.seed, 1234);
  EXPECT_EQ(back.tokenizer.max_length, 1024);
  EXPECT_EQ(back.prediction.stop_tokens, "<|end|>");
  // H2O layout: sections at the top level
  for (const char* s : {"\ndataset:\n", "\ntraining:\n", "\nenvironment:\n", "problem_type: text_causal_language_modeling"})
    EXPECT_NE(yaml.find(s), std::string::npos) << s;
}

TEST(TrainConfig, ResolvedConfigIsSavedIntoTheExperimentFolder) {
  auto dir = fs::temp_directory_path() / ("llms_cfg_test_" + std::to_string(std::random_device{}()));
  auto c = parse(kMinimal, {"training.epochs=2"});
  auto path = save_resolved_config(c, dir / "exp");
  EXPECT_EQ(path, dir / "exp" / "cfg.yaml");
  auto back = load_experiment_config(path);
  EXPECT_EQ(back.training.epochs, 2);
  llmstudio::io::remove_tree(dir);
}

TEST(TrainConfig, YamlSyntaxErrorsNameFileAndLine) {
  auto msg = error_of([] { parse("llm_backbone: x\ndataset:\n  train_dataframe: [a\n"); });
  EXPECT_NE(msg.find("cfg.yaml:"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not valid YAML"), std::string::npos) << msg;
  msg = error_of([] { parse("- a\n- b\n"); });
  EXPECT_NE(msg.find("mapping"), std::string::npos) << msg;
}

TEST(TrainConfig, H2OExportedConfigLoadsWithExpectedWarnings) {
  auto path = repo_root() / "examples" / "h2o_cfg_example.yaml";
  ASSERT_TRUE(fs::exists(path)) << path;
  // as exported, H2O's default int4 backbone is refused with a hint
  auto msg = error_of([&] { load_experiment_config(path); });
  EXPECT_NE(msg.find("h2o_cfg_example.yaml"), std::string::npos) << msg;
  EXPECT_NE(msg.find("int4"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not supported yet"), std::string::npos) << msg;

  auto c = load_experiment_config(path, {"architecture.backbone_dtype=bfloat16"});
  EXPECT_EQ(c.experiment_name, "oasst-danube3-lora.1");
  EXPECT_EQ(c.dataset.prompt_column, (std::vector<std::string>{"instruction"}));
  EXPECT_EQ(c.dataset.system_column, "None");
  EXPECT_EQ(c.dataset.prompt_column_separator, "\\n\\n");
  EXPECT_DOUBLE_EQ(c.training.differential_learning_rate, 1e-05);
  EXPECT_EQ(to_string(c.prediction.metric), "Perplexity");
  ASSERT_EQ(c.warnings.size(), 2u) << c.warnings[0];
  EXPECT_TRUE(contains(c.warnings, "prediction.metric: \"GPT\""));
  EXPECT_TRUE(contains(c.warnings, "logging.logger: \"Neptune\" is ignored"));
  for (const char* k : {"environment.gpus", "environment.deepspeed_method", "dataset.chatbot_name",
                        "tokenizer.tokenizer_kwargs", "architecture.pretrained", "training.attention_implementation"})
    EXPECT_TRUE(contains(c.ignored_keys, k)) << k;
}

TEST(TrainConfig, ExampleConfigLoads) {
  auto c = load_experiment_config(repo_root() / "examples" / "cfg.yaml");
  EXPECT_EQ(c.dataset.train_dataframe, "examples/data/train.csv");
  EXPECT_EQ(c.training.lora_target_module_list().size(), 4u);
  EXPECT_TRUE(c.warnings.empty());
}

TEST(TrainConfig, MapsToPromptFormatAndDatasetSpec) {
  auto c = parse(kMinimal, {"dataset.text_prompt_start=<user>", "dataset.add_eos_token_to_prompt=false",
                            "dataset.limit_chained_samples=true", "dataset.only_last_answer=true",
                            "tokenizer.max_length=128", "dataset.data_sample=0.5", "dataset.data_sample_choice=Train",
                            "training.train_validation_data=true", "dataset.parent_id_column=None"});
  auto p = prompt_format_config(c);
  EXPECT_EQ(p.text_prompt_start, "<user>");
  EXPECT_FALSE(p.add_eos_token_to_prompt);
  EXPECT_TRUE(p.limit_chained_samples);
  EXPECT_TRUE(p.only_last_answer);
  EXPECT_EQ(p.max_length, 128);
  EXPECT_NO_THROW(p.validate());
  auto s = dataset_spec(c);
  EXPECT_EQ(s.train_dataframe, "data/train.csv");
  EXPECT_DOUBLE_EQ(s.data_sample, 0.5);
  EXPECT_TRUE(s.sample_train);
  EXPECT_FALSE(s.sample_validation);
  EXPECT_TRUE(s.train_validation_data);
  EXPECT_EQ(s.columns.parent_id_column, "None");
  EXPECT_EQ(s.split_seed, 1337u);
}

TEST(TrainConfig, CheckPathsReportsMissingFiles) {
  auto c = parse(kMinimal);
  auto problems = check_paths(c);
  EXPECT_TRUE(contains(problems, "llm_backbone"));
  EXPECT_TRUE(contains(problems, "dataset.train_dataframe"));
}
