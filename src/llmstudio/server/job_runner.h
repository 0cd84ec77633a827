// Training jobs of the studio: each run is a child `llmstudio train` process (so a crash in training cannot take
// the server down), started with fork + execve and an argv array (no shell ever sees a user string), its output
// appended to <data-dir>/experiments/<id>.console.log. One job runs at a time (the studio trains on one device);
// others wait in a FIFO queue. Stop sends SIGINT (the trainer checkpoints at the next step boundary and exits)
// and waits. Children get SIGINT if the server dies (PR_SET_PDEATHSIG), so a killed server leaves checkpointed,
// "interrupted" runs; recover() marks the experiments that were running as interrupted, and start() resumes
// them with `llmstudio train --resume <dir>` once the old process is gone.
//
// Children get the server's environment without its secrets (LLMSTUDIO_TOKEN: a training run has no use for the
// API's access token, and its environment is readable by anything that can read /proc/<pid>/environ). Before a
// run is queued and again right before it is launched, `preflight` (the studio's check that the run's files lie
// under the allowed folders, symlinks resolved) is asked; what it throws refuses the run. The children get the
// allowed folders in $LLMSTUDIO_CONFINE_ROOTS and check the backbone again when they read and copy its files.
//
// Experiment documents (ExperimentStore) used here: id, status, dir, cfg_file, message, pid.
#pragma once

#include <sys/types.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "llmstudio/server/experiment_store.h"

namespace llmstudio::server {

struct JobRunnerOptions {
  std::filesystem::path exe;       // the llmstudio binary (/proc/self/exe)
  std::filesystem::path data_dir;  // <data-dir>
  std::string device;              // --device for the children ("" = their default)
  std::chrono::seconds stop_grace{60};  // SIGKILL after this long without exiting after SIGINT
  // Checks an experiment document before it is queued (its ApiError reaches the client) and before launch (the
  // run then fails with the message). Empty = no check.
  std::function<void(const nlohmann::json& doc)> preflight;
  // Folders the children may read model files from ($LLMSTUDIO_CONFINE_ROOTS, io/confined_files.h); empty = any.
  std::vector<std::filesystem::path> confine_roots;
};

// Names of environment variables a training child does not inherit.
inline constexpr const char* kSecretEnvVars[] = {"LLMSTUDIO_TOKEN"};
// The environment for a child: the "NAME=value" strings of `environ` without kSecretEnvVars and without the
// variables that `extra` sets, then `extra`.
std::vector<std::string> child_environment(const std::vector<std::string>& extra = {});

class JobRunner {
 public:
  JobRunner(ExperimentStore& store, JobRunnerOptions options);
  ~JobRunner();  // shutdown()
  JobRunner(const JobRunner&) = delete;
  JobRunner& operator=(const JobRunner&) = delete;

  // After a server (re)start: experiments recorded as running become interrupted (or finished/failed when their
  // folder says so); queued ones are queued again. Starts the scheduler thread.
  void recover();
  // Queues a created/stopped/interrupted/failed experiment (ApiError 409 for a finished one). Returns the
  // updated document.
  nlohmann::json start(const std::string& id);
  // Unqueues a queued experiment, or stops a running one (SIGINT, then waits for it to exit). Returns the document.
  nlohmann::json stop(const std::string& id);
  // Stops all jobs (their runs become "interrupted") and ends the scheduler.
  void shutdown();

 private:
  struct Running {
    std::string id;
    pid_t pid = -1;
    bool stop_requested = false;
    std::chrono::steady_clock::time_point stop_sent;
  };
  void loop();
  void launch(nlohmann::json doc);  // with mu_ held
  void finish(const Running& r, int wait_status);
  static bool process_alive(pid_t pid, const std::string& dir);

  ExperimentStore& store_;
  JobRunnerOptions opt_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  std::optional<Running> running_;
  std::thread thread_;
  bool quit_ = false;
};

// Progress of a run from its folder: {"step", "total_steps", "epoch", "loss", "tokens_per_s"} (status.json and the
// last train line of metrics.jsonl); zeros/nulls when the run has not written them yet.
nlohmann::json read_progress(const std::filesystem::path& experiment_dir);

}  // namespace llmstudio::server
