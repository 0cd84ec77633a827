// Child `llmstudio train` processes, their queue and their recovery after a restart (see job_runner.h).
#include "llmstudio/server/job_runner.h"

#include <fcntl.h>
#include <signal.h>
#ifdef __linux__
#include <sys/prctl.h>
#include <sys/syscall.h>
#endif
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>

extern char** environ;

#include "llmstudio/experiment/experiment_dir.h"
#include "llmstudio/io/atomic_file.h"
#include "llmstudio/io/confined_files.h"
#include "llmstudio/io/json_text.h"
#include "llmstudio/server/api_error.h"

namespace llmstudio::server {
namespace fs = std::filesystem;
using experiment::RunStatus;
using nlohmann::json;

namespace {

std::string console_log(const json& doc) { return doc.at("dir").get<std::string>() + ".console.log"; }

// The last "error: ..." line of a child's output (what `llmstudio` prints when it fails), or "".
std::string last_error_line(const fs::path& log) {
  std::ifstream in(log, std::ios::binary);
  if (!in) return "";
  in.seekg(0, std::ios::end);
  const auto size = static_cast<std::int64_t>(in.tellg());
  const std::int64_t from = std::max<std::int64_t>(0, size - 16384);
  in.seekg(from);
  std::string tail((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string found;
  std::size_t pos = 0;
  while (pos < tail.size()) {
    auto nl = tail.find('\n', pos);
    if (nl == std::string::npos) nl = tail.size();
    std::string line = tail.substr(pos, nl - pos);
    if (line.rfind("error: ", 0) == 0) found = line.substr(7);
    pos = nl + 1;
  }
  return found;
}

// status.json's status and message; Created with "" when the run never wrote one.
std::pair<RunStatus, std::string> read_run_status(const fs::path& dir) {
  const auto p = experiment::read_run_progress(dir);
  return p ? std::pair{p->status, p->message} : std::pair{RunStatus::Created, std::string()};
}

}  // namespace

std::vector<std::string> child_environment(const std::vector<std::string>& extra) {
  std::vector<std::string_view> dropped(std::begin(kSecretEnvVars), std::end(kSecretEnvVars));
  for (const auto& kv : extra) dropped.push_back(std::string_view(kv).substr(0, kv.find('=')));
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    const std::string_view kv(*e);
    const auto eq = kv.find('=');
    const std::string_view name = kv.substr(0, eq);
    if (std::find(dropped.begin(), dropped.end(), name) == dropped.end()) env.emplace_back(kv);
  }
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

json read_progress(const fs::path& dir) {
  json p = {{"step", 0}, {"total_steps", 0}, {"epoch", 0.0}, {"loss", nullptr}, {"tokens_per_s", nullptr}};
  try {
    if (const auto run = experiment::read_run_progress(dir)) {
      p["step"] = run->step;
      p["total_steps"] = run->total_steps;
    }
    std::ifstream in(dir / "metrics.jsonl", std::ios::binary);
    if (in) {
      in.seekg(0, std::ios::end);
      const auto size = static_cast<std::int64_t>(in.tellg());
      in.seekg(std::max<std::int64_t>(0, size - 8192));
      std::string tail((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      std::size_t end = tail.size();
      while (end > 0) {
        auto start = tail.rfind('\n', end - 1);
        const std::size_t b = start == std::string::npos ? 0 : start + 1;
        const auto parsed = io::try_parse_json(std::string_view(tail).substr(b, end - b));
        const json m = parsed ? *parsed : json();
        if (m.is_object() && m.value("type", "") == "train") {
          p["epoch"] = m.value("epoch", 0.0);
          p["loss"] = m.contains("loss") ? m["loss"] : json(nullptr);
          p["tokens_per_s"] = m.contains("tokens_per_s") ? m["tokens_per_s"] : json(nullptr);
          break;
        }
        if (start == std::string::npos) break;
        end = start;
      }
    }
  } catch (const std::exception&) {
    // A file being rewritten: report what we have.
  }
  return p;
}

JobRunner::JobRunner(ExperimentStore& store, JobRunnerOptions options) : store_(store), opt_(std::move(options)) {}

JobRunner::~JobRunner() { shutdown(); }

void JobRunner::recover() {
  for (auto doc : store_.experiments()) {
    const RunStatus st = status_of(doc);
    if (st == RunStatus::Running) {
      auto [run_status, message] = read_run_status(doc.at("dir").get<std::string>());
      if (run_status == RunStatus::Finished) {
        set_status(doc, RunStatus::Finished);
      } else if (run_status == RunStatus::Failed) {
        set_status(doc, RunStatus::Failed);
        doc["message"] = message;
      } else {
        set_status(doc, RunStatus::Interrupted);
        doc["message"] = "the studio stopped while this run was training; start it to resume from its last checkpoint";
      }
      store_.put_experiment(doc);
    } else if (st == RunStatus::Queued) {
      queue_.push_back(doc.at("id").get<std::string>());
    }
  }
  thread_ = std::thread([this] { loop(); });
}

json JobRunner::start(const std::string& id) {
  std::unique_lock lock(mu_);
  auto doc = store_.experiment(id);
  if (!doc) api_fail(404, "no experiment with id \"", id, "\"");
  const RunStatus st = status_of(*doc);
  if (experiment::is_active(st)) return *doc;
  if (st == RunStatus::Finished) api_fail(409, "experiment ", id, " has finished; clone it to train again");
  if (opt_.preflight) opt_.preflight(*doc);
  set_status(*doc, RunStatus::Queued);
  (*doc)["message"] = "";
  store_.put_experiment(*doc);
  queue_.push_back(id);
  cv_.notify_all();
  return *doc;
}

json JobRunner::stop(const std::string& id) {
  std::unique_lock lock(mu_);
  auto doc = store_.experiment(id);
  if (!doc) api_fail(404, "no experiment with id \"", id, "\"");
  if (auto it = std::find(queue_.begin(), queue_.end(), id); it != queue_.end()) {
    queue_.erase(it);
    set_status(*doc, RunStatus::Stopped);
    store_.put_experiment(*doc);
    return *doc;
  }
  if (!running_ || running_->id != id) return *doc;
  if (!running_->stop_requested) {
    running_->stop_requested = true;
    running_->stop_sent = std::chrono::steady_clock::now();
    ::kill(running_->pid, SIGINT);
  }
  cv_.wait_for(lock, opt_.stop_grace + std::chrono::seconds(5), [&] { return !running_ || running_->id != id; });
  return *store_.experiment(id);
}

void JobRunner::shutdown() {
  {
    std::unique_lock lock(mu_);
    if (quit_) return;
    quit_ = true;
    if (running_) {
      ::kill(running_->pid, SIGINT);  // the run checkpoints and becomes "interrupted", resumable
      running_->stop_sent = std::chrono::steady_clock::now();
    }
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

bool JobRunner::process_alive(pid_t pid, const std::string& dir) {
  if (pid <= 0 || ::kill(pid, 0) != 0) return false;
  // The pid may have been reused: only a process whose command line names the experiment folder counts.
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  std::string cmd((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return cmd.find(dir) != std::string::npos;
}

void JobRunner::loop() {
  std::unique_lock lock(mu_);
  while (true) {
    if (running_) {
      int ws = 0;
      const pid_t r = ::waitpid(running_->pid, &ws, WNOHANG);
      if (r == running_->pid || (r < 0 && errno == ECHILD)) {
        Running done = *running_;
        running_.reset();
        finish(done, r == done.pid ? ws : -1);
        cv_.notify_all();
        continue;
      }
      if ((running_->stop_requested || quit_) &&
          std::chrono::steady_clock::now() - running_->stop_sent > opt_.stop_grace) {
        ::kill(running_->pid, SIGKILL);
      }
    } else if (quit_) {
      break;
    } else if (!queue_.empty()) {
      const std::string id = queue_.front();
      auto doc = store_.experiment(id);
      if (!doc) {
        queue_.pop_front();
        continue;
      }
      // A process of this experiment left by a previous server (it got SIGINT when that server died): let it
      // finish writing its checkpoint first.
      const pid_t old = doc->value("pid", -1);
      if (!process_alive(old, doc->at("dir").get<std::string>())) {
        queue_.pop_front();
        launch(*doc);
        continue;
      }
    }
    cv_.wait_for(lock, std::chrono::milliseconds(200));
  }
}

void JobRunner::launch(json doc) {
  const std::string id = doc.at("id"), dir = doc.at("dir"), cfg = doc.at("cfg_file");
  if (opt_.preflight) {
    try {
      opt_.preflight(doc);
    } catch (const std::exception& e) {  // the folder changed while the run was queued
      set_status(doc, RunStatus::Failed);
      doc["message"] = e.what();
      store_.put_experiment(doc);
      return;
    }
  }
  const auto [run_status, _] = read_run_status(dir);
  std::vector<std::string> args = {opt_.exe.string(), "train"};
  if (experiment::ExperimentDir(dir).has_checkpoint() && run_status != RunStatus::Finished) {
    args.insert(args.end(), {"--resume", dir});
  } else {
    io::remove_tree(dir);  // a run that never checkpointed (or failed early): start over
    args.insert(args.end(), {"-c", cfg});
  }
  if (!opt_.device.empty()) args.insert(args.end(), {"--device", opt_.device});
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> extra_env;
  if (!opt_.confine_roots.empty())
    extra_env.push_back(std::string(io::kConfineRootsEnv) + "=" + io::confine_roots_value(opt_.confine_roots));
  std::vector<std::string> env = child_environment(extra_env);
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  const std::string log = console_log(doc);
  const int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (log_fd < 0 || null_fd < 0) {
    if (log_fd >= 0) ::close(log_fd);
    if (null_fd >= 0) ::close(null_fd);
    set_status(doc, RunStatus::Failed);
    doc["message"] = "cannot open " + log + ": " + std::strerror(errno);
    store_.put_experiment(doc);
    return;
  }
  {
    std::ofstream header(log, std::ios::app);
    header << "[studio] " << now_iso8601() << " starting:";
    for (const auto& a : args) header << " " << a;
    header << "\n";
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    // Child: only async-signal-safe calls until execv.
#ifdef __linux__
    ::prctl(PR_SET_PDEATHSIG, SIGINT);  // the server died: checkpoint and stop
#endif  // (elsewhere an orphaned run keeps training; recover() waits for it before resuming)
    if (::getppid() != parent) ::_exit(127);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::setpgid(0, 0);  // Ctrl-C in the server's terminal reaches the server, which stops its jobs itself
    ::dup2(null_fd, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    // Close everything else (the listening socket above all, so a killed server's port is free again).
#ifdef SYS_close_range
    if (::syscall(SYS_close_range, 3u, ~0u, 0u) != 0)
#endif
      for (int fd = 3; fd < 4096; ++fd) ::close(fd);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  const int err = errno;
  ::close(log_fd);
  ::close(null_fd);
  if (pid < 0) {
    set_status(doc, RunStatus::Failed);
    doc["message"] = std::string("cannot start the training process: ") + std::strerror(err);
    store_.put_experiment(doc);
    return;
  }
  set_status(doc, RunStatus::Running);
  doc["message"] = "";
  doc["pid"] = pid;
  doc["started_at"] = now_iso8601();
  store_.put_experiment(doc);
  running_ = Running{id, pid, false, {}};
}

void JobRunner::finish(const Running& r, int ws) {
  auto doc = store_.experiment(r.id);
  if (!doc) return;  // deleted meanwhile
  const auto [run_status, message] = read_run_status(doc->at("dir").get<std::string>());
  RunStatus status = RunStatus::Failed;
  std::string msg;
  if (run_status == RunStatus::Finished) {
    status = RunStatus::Finished;
  } else if (run_status == RunStatus::Interrupted || r.stop_requested || quit_) {
    status = r.stop_requested ? RunStatus::Stopped : RunStatus::Interrupted;
    if (quit_ && !r.stop_requested) msg = "the studio stopped while this run was training; start it to resume";
  } else {
    msg = run_status == RunStatus::Failed ? message : last_error_line(console_log(*doc));
    if (msg.empty()) {
      if (ws >= 0 && WIFSIGNALED(ws)) msg = std::string("training process killed by signal ") + strsignal(WTERMSIG(ws));
      else if (ws >= 0 && WIFEXITED(ws)) msg = "training process exited with code " + std::to_string(WEXITSTATUS(ws));
      else msg = "training process ended";
    }
  }
  set_status(*doc, status);
  (*doc)["message"] = msg;
  (*doc)["finished_at"] = now_iso8601();
  store_.put_experiment(*doc);
}

}  // namespace llmstudio::server
