// The state of an experiment's run, as one enum shared by the trainer (status.json in the experiment folder), the
// studio's job runner and store, and the API: created (in the studio, never started), queued, running, stopped
// (by the user, resumable), interrupted (by a signal or the studio's shutdown, resumable), finished, failed.
// status.json holds {"status", "step", "total_steps", "message"}; it is written atomically by the trainer.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace llmstudio::experiment {

enum class RunStatus { Created, Queued, Running, Stopped, Interrupted, Finished, Failed };

// The lower-case name written to status.json and the API ("running", ...).
std::string_view to_string(RunStatus s);
// The status a name denotes; nullopt for anything else.
std::optional<RunStatus> parse_run_status(std::string_view name);
// Queued or running: the studio refuses edits and deletion.
bool is_active(RunStatus s);
// Stopped or interrupted: training continues from the last checkpoint.
bool is_resumable(RunStatus s);

// status.json of a run.
struct RunProgress {
  RunStatus status = RunStatus::Running;
  std::int64_t step = 0;         // optimizer steps done
  std::int64_t total_steps = 0;
  std::string message;           // why a run failed or stopped; "" otherwise
};

// Writes `experiment_dir`/status.json atomically.
void write_run_progress(const std::filesystem::path& experiment_dir, const RunProgress& p);
// Reads it; nullopt when the file is missing or unreadable (a run that never started).
std::optional<RunProgress> read_run_progress(const std::filesystem::path& experiment_dir);

}  // namespace llmstudio::experiment
