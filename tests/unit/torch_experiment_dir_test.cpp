// The experiment folder (experiment/experiment_dir.h, run_status.h): RunStatus names, status.json, trainer state and
// atomic checkpoints, and which model a finished experiment resolves to.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <filesystem>
#include <fstream>

#include "llmstudio/core/error.h"
#include "llmstudio/experiment/experiment_dir.h"
#include "llmstudio/experiment/run_status.h"
#include "llmstudio/io/atomic_file.h"
#include "llmstudio/io/safetensors.h"

namespace fs = std::filesystem;
using namespace llmstudio::experiment;

namespace {

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("llms_expdir_" + std::to_string(::getpid()) + "_" +
                                               ::testing::UnitTest::GetInstance()->current_test_info()->name());
  TempDir() {
    llmstudio::io::remove_tree(path);
    fs::create_directories(path);
  }
  ~TempDir() { llmstudio::io::remove_tree(path); }
};

void touch(const fs::path& p) { std::ofstream(p) << "{}"; }

}  // namespace

TEST(RunStatus, EveryStatusHasANameThatParsesBack) {
  for (auto s : {RunStatus::Created, RunStatus::Queued, RunStatus::Running, RunStatus::Stopped, RunStatus::Interrupted,
                 RunStatus::Finished, RunStatus::Failed}) {
    const auto name = to_string(s);
    EXPECT_NE(name, "unknown");
    ASSERT_TRUE(parse_run_status(name).has_value()) << name;
    EXPECT_EQ(*parse_run_status(name), s) << name;
  }
  EXPECT_FALSE(parse_run_status("Running").has_value());  // names are exact
  EXPECT_FALSE(parse_run_status("").has_value());
  EXPECT_TRUE(is_active(RunStatus::Queued) && is_active(RunStatus::Running));
  EXPECT_FALSE(is_active(RunStatus::Interrupted) || is_active(RunStatus::Finished));
  EXPECT_TRUE(is_resumable(RunStatus::Stopped) && is_resumable(RunStatus::Interrupted));
}

TEST(RunStatus, ProgressRoundTripsAndATornFileReadsAsAbsent) {
  TempDir t;
  EXPECT_FALSE(read_run_progress(t.path).has_value());
  write_run_progress(t.path, {RunStatus::Failed, 7, 20, "out of memory"});
  const auto p = read_run_progress(t.path);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->status, RunStatus::Failed);
  EXPECT_EQ(p->step, 7);
  EXPECT_EQ(p->total_steps, 20);
  EXPECT_EQ(p->message, "out of memory");
  std::ofstream(ExperimentDir(t.path).status_file()) << "{\"status\": \"runn";
  EXPECT_FALSE(read_run_progress(t.path).has_value());
  std::ofstream(ExperimentDir(t.path).status_file()) << "{\"status\": \"dancing\"}";
  EXPECT_FALSE(read_run_progress(t.path).has_value());
}

TEST(ExperimentDir, CheckpointIsWrittenWholeAndReadBack) {
  TempDir t;
  const ExperimentDir dir(t.path);
  TrainerState st;
  st.step = 12;
  st.total_steps = 40;
  st.seed = 1234;
  st.best_metric = 1.5;
  const auto w = at::arange(6, at::kFloat).reshape({2, 3});
  write_checkpoint(dir.checkpoint_dir(), {{"w", w}}, {{"w.exp_avg", w * 2}}, st);
  st.step = 13;  // a second checkpoint replaces the first in one rename
  write_checkpoint(dir.checkpoint_dir(), {{"w", w + 1}}, {{"w.exp_avg", w * 3}}, st);
  EXPECT_TRUE(dir.has_checkpoint());
  EXPECT_FALSE(fs::exists(t.path / "checkpoint.tmp"));
  EXPECT_FALSE(fs::exists(t.path / "checkpoint.old"));
  const auto back = read_trainer_state(dir.checkpoint_dir());
  EXPECT_EQ(back.step, 13);
  EXPECT_EQ(back.total_steps, 40);
  EXPECT_EQ(back.seed, 1234u);
  ASSERT_TRUE(back.best_metric.has_value());
  EXPECT_DOUBLE_EQ(*back.best_metric, 1.5);
  EXPECT_FALSE(back.loss_scale.has_value());
  const auto tensors = llmstudio::io::load_safetensors_dir(dir.checkpoint_dir() / "model.safetensors");
  EXPECT_TRUE(at::equal(tensors.at("w"), w + 1));
}

TEST(ExperimentDir, ADamagedTrainerStateNamesTheFile) {
  TempDir t;
  fs::create_directories(t.path / "checkpoint");
  std::ofstream(t.path / "checkpoint" / "trainer_state.json") << "{\"total_steps\": 3}";
  try {
    read_trainer_state(t.path / "checkpoint");
    FAIL() << "no error";
  } catch (const llmstudio::Error& e) {
    EXPECT_NE(std::string(e.what()).find("trainer_state.json"), std::string::npos) << e.what();
  }
}

TEST(ExperimentDir, ResolvesToItsOwnWeightsOrItsBackboneWithTheAdapter) {
  TempDir t;
  const ExperimentDir dir(t.path / "exp");
  fs::create_directories(dir.path());
  write_run_progress(dir.path(), {RunStatus::Running, 3, 10, ""});
  try {
    resolve_experiment_model(dir, t.path / "base");
    FAIL() << "no error";
  } catch (const llmstudio::Error& e) {  // names the status and how to continue
    EXPECT_NE(std::string(e.what()).find("status: running"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--resume"), std::string::npos) << e.what();
  }
  touch(dir.path() / "adapter_config.json");
  touch(dir.path() / "adapter_model.safetensors");
  EXPECT_THROW(resolve_experiment_model(dir, t.path / "base"), llmstudio::Error);  // the backbone is gone
  fs::create_directories(t.path / "base");
  auto m = resolve_experiment_model(dir, t.path / "base");
  EXPECT_EQ(m.model_dir, t.path / "base");
  EXPECT_EQ(m.adapter_dir, dir.path());
  EXPECT_EQ(m.tokenizer_dir, dir.path());
  touch(dir.path() / "config.json");
  touch(dir.path() / "model.safetensors");
  m = resolve_experiment_model(dir, t.path / "base");
  EXPECT_EQ(m.model_dir, dir.path());
  EXPECT_TRUE(m.adapter_dir.empty());
}
