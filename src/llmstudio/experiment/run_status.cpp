// RunStatus names and status.json (see run_status.h).
#include "llmstudio/experiment/run_status.h"

#include <array>
#include <utility>

#include "llmstudio/experiment/experiment_dir.h"
#include "llmstudio/io/atomic_file.h"
#include "llmstudio/io/json_text.h"

namespace llmstudio::experiment {
namespace {

constexpr std::array<std::pair<RunStatus, std::string_view>, 7> kNames = {{
    {RunStatus::Created, "created"},
    {RunStatus::Queued, "queued"},
    {RunStatus::Running, "running"},
    {RunStatus::Stopped, "stopped"},
    {RunStatus::Interrupted, "interrupted"},
    {RunStatus::Finished, "finished"},
    {RunStatus::Failed, "failed"},
}};

}  // namespace

std::string_view to_string(RunStatus s) {
  switch (s) {
    case RunStatus::Created:
    case RunStatus::Queued:
    case RunStatus::Running:
    case RunStatus::Stopped:
    case RunStatus::Interrupted:
    case RunStatus::Finished:
    case RunStatus::Failed:
      return kNames[static_cast<std::size_t>(s)].second;
  }
  return "unknown";
}

std::optional<RunStatus> parse_run_status(std::string_view name) {
  for (const auto& [s, n] : kNames)
    if (n == name) return s;
  return std::nullopt;
}

bool is_active(RunStatus s) { return s == RunStatus::Queued || s == RunStatus::Running; }

bool is_resumable(RunStatus s) { return s == RunStatus::Stopped || s == RunStatus::Interrupted; }

void write_run_progress(const std::filesystem::path& experiment_dir, const RunProgress& p) {
  const nlohmann::json j = {{"status", to_string(p.status)},
                            {"step", p.step},
                            {"total_steps", p.total_steps},
                            {"message", p.message}};
  io::write_file_atomic(ExperimentDir(experiment_dir).status_file(), j.dump(2) + "\n");
}

std::optional<RunProgress> read_run_progress(const std::filesystem::path& experiment_dir) {
  const auto file = ExperimentDir(experiment_dir).status_file();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) return std::nullopt;
  try {
    const auto j = io::parse_json(io::read_file(file), file.string());
    const auto status = parse_run_status(j.value("status", ""));
    if (!status) return std::nullopt;
    RunProgress p;
    p.status = *status;
    p.step = j.value("step", std::int64_t{0});
    p.total_steps = j.value("total_steps", std::int64_t{0});
    p.message = j.value("message", "");
    return p;
  } catch (const std::exception&) {  // a torn or foreign file: as if absent
    return std::nullopt;
  }
}

}  // namespace llmstudio::experiment
