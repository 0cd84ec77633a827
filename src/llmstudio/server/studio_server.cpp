// Process side of `llmstudio ui` and `llmstudio serve` (see studio_server.h).
#include "llmstudio/server/studio_server.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>
#ifdef __APPLE__
#include <mach-o/dyld.h>
#endif

#include <httplib.h>

#include <climits>
#include <iostream>
#include <thread>

#include "llmstudio/core/error.h"
#include "llmstudio/platform/process_limits.h"
#include "llmstudio/server/api_error.h"
#include "llmstudio/server/http_api.h"
#include "llmstudio/server/http_server.h"
#include "llmstudio/server/http_util.h"
#include "llmstudio/server/openai_api.h"

namespace llmstudio::server {
namespace fs = std::filesystem;

namespace {

fs::path self_exe() {
#ifdef __APPLE__
  char buf[PATH_MAX];
  uint32_t size = sizeof buf;
  LLMS_CHECK(_NSGetExecutablePath(buf, &size) == 0, "cannot find the llmstudio executable (needed to start training)");
  char real[PATH_MAX];
  return fs::path(::realpath(buf, real) ? real : buf);
#else
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  LLMS_CHECK(n > 0, "cannot read /proc/self/exe (needed to start training processes)");
  return fs::path(std::string(buf, static_cast<std::size_t>(n)));
#endif
}

// Blocks SIGINT/SIGTERM in this thread (and the threads it creates later) and stops `svr` when one arrives.
class StopOnSignal {
 public:
  explicit StopOnSignal(httplib::Server& svr) {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
    thread_ = std::thread([this, &svr] {
      int sig = 0;
      sigwait(&set_, &sig);
      if (!done_) std::cerr << "\nstopping (signal " << sig << ")\n";
      svr.stop();
    });
  }
  ~StopOnSignal() {
    done_ = true;
    pthread_kill(thread_.native_handle(), SIGTERM);  // wakes the waiting thread if no signal came
    thread_.join();
  }

 private:
  sigset_t set_{};
  std::thread thread_;
  std::atomic<bool> done_{false};
};

HttpGuards guards_for(const ListenOptions& l) {
  HttpGuards g;
  g.token = l.token;
  g.origin.bound_host = l.host;
  g.origin.port = l.port;
  g.origin.allowed_hosts = l.allowed_hosts;
  g.origin.allowed_origins = l.allowed_origins;
  return g;
}

void listen_or_fail(HttpServer& svr, const ListenOptions& l, const std::string& what) {
  if (!svr.bind(l.host, l.port))
    fail("cannot listen on ", l.host, ":", l.port, " (address in use or not available)\n  hint: pick another --port");
  std::cout << what << " listening on http://" << (l.host.find(':') != std::string::npos ? "[" + l.host + "]" : l.host)
            << ":" << l.port << "/" << (l.token.empty() ? "" : "  (access token required)") << std::endl;
  svr.listen_after_bind();
}

}  // namespace

void check_bind_safety(const ListenOptions& l) {
  LLMS_CHECK(l.port > 0 && l.port < 65536, "--port ", l.port, " is not a valid port (1-65535)");
  if (is_loopback_host(l.host) || !l.token.empty()) return;
  fail("refusing to listen on ", l.host, " without an access token: anyone who can reach this machine could use the API",
       "\n  hint: set --auth-token <secret> (or LLMSTUDIO_TOKEN), or keep the default --host 127.0.0.1");
}

void run_studio(const StudioOptions& o) {
  platform::harden_server_process();  // umask 077 (files 0600, folders 0700), glibc malloc arenas capped
  check_bind_safety(o.listen);
  LLMS_CHECK(o.max_upload_mb >= 1, "--max-upload-mb must be at least 1");
  StudioConfig c;
  fs::create_directories(o.data_dir);
  c.data_dir = fs::absolute(o.data_dir).lexically_normal();
  c.allow_paths = o.allow_paths;
  c.max_upload_bytes = o.max_upload_mb << 20;
  c.device = o.device;
  c.exe = self_exe();
  TransportLimits limits;
  limits.range_paths = StudioApi::range_paths();
  HttpServer svr(limits);
  StopOnSignal stop(svr);  // before any thread starts, so that they all inherit the blocked signals
  StudioApi api(c);
  HttpGuards g = guards_for(o.listen);
  g.max_upload_bytes = c.max_upload_bytes;
  g.query_token_routes = StudioApi::query_token_routes();
  install_guards(svr, g);
  api.add_routes(svr, *g.routes);
  std::cout << "LLM Studio data in " << c.data_dir.string() << std::endl;
  listen_or_fail(svr, o.listen, "LLM Studio");
  api.shutdown();
}

void run_model_server(const ServeOptions& o) {
  platform::harden_server_process();  // umask 077 (files 0600, folders 0700), glibc malloc arenas capped
  check_bind_safety(o.listen);
  const fs::path dir = fs::absolute(o.model).lexically_normal();
  const std::string id = o.model_name.empty() ? dir.filename().string() : o.model_name;
  const ServedModel served{id, infer::resolve_model_source(dir)};
  OpenAiOptions opt;
  opt.resolve = [served](const std::string& model) {
    if (!model.empty() && model != served.id)
      api_fail(404, "no model \"", model, "\"; this server has \"", served.id, "\"");
    return served;
  };
  opt.list = [id] { return std::vector<std::string>{id}; };
  opt.device = o.device;
  opt.dtype = o.dtype;
  HttpServer svr;
  StopOnSignal stop(svr);
  OpenAiService service(opt);
  std::cout << "loading " << dir.string() << " ..." << std::endl;
  service.preload(id);
  const HttpGuards g = guards_for(o.listen);
  install_guards(svr, g);
  Routes routes(svr, *g.routes);
  service.add_routes(routes);
  routes.Get("/api/health", guarded([](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, {{"ok", true}, {"version", LLMS_VERSION}});
  }));
  listen_or_fail(svr, o.listen, "llmstudio serve (model \"" + id + "\")");
}

}  // namespace llmstudio::server
