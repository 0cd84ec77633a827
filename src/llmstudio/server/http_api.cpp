// The studio's REST API routes (see http_api.h).
#include "llmstudio/server/http_api.h"

#include <algorithm>
#include <fstream>
#include <regex>
#include <set>
#include <thread>

#include "llmstudio/data/dataset_reader.h"
#include "llmstudio/infer/export.h"
#include "llmstudio/io/atomic_file.h"
#include "llmstudio/io/confined_files.h"
#include "llmstudio/io/json_text.h"
#include "llmstudio/platform/platform.h"
#include "llmstudio/server/api_error.h"
#include "llmstudio/server/config_schema.h"
#include "llmstudio/server/http_util.h"
#include "llmstudio/server/tar_stream.h"
#include "llmstudio/server/ui_assets.h"

namespace llmstudio::server {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr std::size_t kMaxNameBytes = 256;  // experiment names

// "<name> (copy)" within kMaxNameBytes: the source name is cut at a UTF-8 character boundary when needed.
std::string copy_name(const std::string& name) {
  static const std::string suffix = " (copy)";
  std::size_t keep = std::min(name.size(), kMaxNameBytes - suffix.size());
  while (keep > 0 && keep < name.size() && (static_cast<unsigned char>(name[keep]) & 0xC0) == 0x80) --keep;
  return name.substr(0, keep) + suffix;
}

std::vector<fs::path> model_roots(const StudioConfig& c) {
  fs::create_directories(c.data_dir / "models");
  auto roots = c.allow_paths;
  roots.push_back(c.data_dir / "models");
  return roots;
}

const StudioConfig& prepared(const StudioConfig& c) {
  fs::create_directories(c.data_dir / "experiments");
  fs::create_directories(c.data_dir / "exports");
  return c;
}

// Bytes [offset, offset + max) of a file, cut after the last complete line when the file goes on.
std::string read_chunk(const fs::path& file, std::uint64_t offset, std::uint64_t max, std::uint64_t& next) {
  next = offset;
  std::ifstream in(file, std::ios::binary);
  if (!in) return "";
  in.seekg(0, std::ios::end);
  const auto size = static_cast<std::uint64_t>(in.tellg());
  if (offset >= size) {
    next = std::min(offset, size);
    return "";
  }
  const std::uint64_t n = std::min(max, size - offset);
  std::string s(n, '\0');
  in.seekg(static_cast<std::streamoff>(offset));
  in.read(s.data(), static_cast<std::streamsize>(n));
  s.resize(static_cast<std::size_t>(in.gcount()));
  const auto nl = s.rfind('\n');
  s.resize(nl == std::string::npos ? 0 : nl + 1);  // complete lines only (a line being written waits)
  if (s.empty() && n == max) s.assign(static_cast<std::size_t>(n), '\0'), in.seekg(static_cast<std::streamoff>(offset)),
                             in.read(s.data(), static_cast<std::streamsize>(n));  // one line longer than max
  next = offset + s.size();
  return s;
}

bool safe_name(const std::string& s) {
  static const std::regex re("[A-Za-z0-9][A-Za-z0-9._-]{0,127}");
  return std::regex_match(s, re) && s.find("..") == std::string::npos;
}

std::string compact_time() {
  std::string t = now_iso8601();  // 2026-11-26T10:14:57Z -> 20261126T101457
  std::erase_if(t, [](char c) { return c == '-' || c == ':' || c == 'Z'; });
  return t;
}

}  // namespace

StudioApi::StudioApi(StudioConfig config)
    : cfg_(prepared(config)),
      policy_(cfg_.allow_paths),
      model_policy_(model_roots(cfg_)),
      store_(cfg_.data_dir / "studio.db"),
      datasets_(store_, cfg_.data_dir, policy_),
      runner_(store_, {cfg_.exe, cfg_.data_dir, cfg_.device, std::chrono::seconds(60),
                       [this](const json& d) { model_policy_.check_folder(d.value("llm_backbone", ""), "llm_backbone"); },
                       model_policy_.roots()}),
      openai_({[this](const std::string& m) { return resolve_model(m); },
               [this] {
                 std::vector<std::string> ids;
                 for (const auto& d : store_.experiments())
                   if (status_of(d) == experiment::RunStatus::Finished) ids.push_back(d.at("id"));
                 return ids;
               },
               cfg_.device}) {
  datasets_.remove_orphans();
  runner_.recover();
  const auto facts = platform::probe_platform();
  env_ = platform::to_json(facts);
  env_["selected"] = platform::to_json(platform::choose_device(facts, platform::device_request_from(cfg_.device)));
}

StudioApi::~StudioApi() { shutdown(); }

void StudioApi::shutdown() {
  stopping_ = true;
  runner_.shutdown();
}

json StudioApi::experiment_doc(const std::string& id) {
  auto doc = store_.experiment(id);
  if (!doc) api_fail(404, "no experiment with id \"", id, "\"");
  return *doc;
}

json StudioApi::view(const json& doc) const {
  json v = {{"id", doc.at("id")},
            {"name", doc.value("name", "")},
            {"status", experiment::to_string(status_of(doc))},
            {"dataset_id", doc.value("dataset_id", "")},
            {"llm_backbone", doc.value("llm_backbone", "")},
            {"created_at", doc.value("created_at", "")},
            {"dir", doc.value("dir", "")},
            {"message", doc.value("message", "")},
            {"warnings", doc.value("warnings", json::array())},
            {"progress", read_progress(doc.value("dir", ""))}};
  return v;
}

ServedModel StudioApi::resolve_model(const std::string& model) {
  if (model.empty()) api_fail(400, "model: required; give a finished experiment's id (GET /v1/models lists them)");
  auto doc = store_.experiment(model);
  if (!doc) api_fail(404, "no model \"", model, "\"; GET /v1/models lists the finished experiments");
  if (status_of(*doc) != experiment::RunStatus::Finished)
    api_fail(409, "experiment ", model, " is ", experiment::to_string(status_of(*doc)), "; chat needs a finished experiment");
  ServedModel served{model, infer::resolve_model_source(doc->at("dir").get<std::string>())};
  model_policy_.check_folder(served.source.model_dir, "model");  // a LoRA run's backbone: no symlinks out
  return served;
}

json StudioApi::models() {
  json out = json::array();
  std::set<std::string> seen;
  for (const auto& root : model_policy_.roots()) {
    std::error_code ec;
    fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec), end;
    std::size_t visited = 0;
    for (; !ec && it != end && visited < 20000; it.increment(ec), ++visited) {
      if (it.depth() >= 3) it.disable_recursion_pending();
      std::error_code e2;
      if (!it->is_directory(e2) || !fs::exists(it->path() / "config.json", e2)) continue;
      if (!model_policy_.allowed(io::real_path(it->path() / "config.json"))) continue;  // a symlink out
      bool weights = false;
      for (const auto& f : fs::directory_iterator(it->path(), e2))
        if (f.path().extension() == ".safetensors") weights = true;
      if (!weights || !seen.insert(it->path().string()).second) continue;
      std::string arch;
      try {
        auto c = io::parse_json(io::read_file(it->path() / "config.json"), "config.json", io::kModelJsonMaxDepth);
        if (c.contains("architectures") && c["architectures"].is_array() && !c["architectures"].empty())
          arch = c["architectures"][0].get<std::string>();
        else arch = c.value("model_type", "");
      } catch (const std::exception&) {
        continue;
      }
      out.push_back({{"name", it->path().filename().string()}, {"path", it->path().string()}, {"architecture", arch}});
    }
  }
  return {{"models", out}};
}

json StudioApi::create_experiment(const json& body) {
  const std::string dataset_id = json_string(body, "dataset_id");
  const std::string backbone = json_string(body, "llm_backbone");
  if (dataset_id.empty()) api_fail(400, "dataset_id: required (POST /api/datasets creates one)");
  if (backbone.empty()) api_fail(400, "llm_backbone: required (a model folder; GET /api/models lists them)");
  if (!store_.dataset(dataset_id)) api_fail(400, "dataset_id: no dataset with id \"", dataset_id, "\"");
  const fs::path model_dir = model_policy_.resolve(backbone, "llm_backbone");
  model_policy_.check_folder(model_dir, "llm_backbone");  // before any of its files is read
  if (!fs::exists(model_dir / "config.json"))
    api_fail(400, "llm_backbone: \"", backbone, "\" is not a model folder (no config.json)");
  const bool start = json_bool(body, "start", false);
  const std::string id = new_id("exp");
  std::string name = json_string(body, "name");
  if (name.size() > kMaxNameBytes)
    api_fail(400, "name: ", name.size(), " bytes; an experiment name is at most ", kMaxNameBytes, " bytes");
  if (name.empty()) name = id;
  const fs::path dir = cfg_.data_dir / "experiments" / id;
  const json sections = body.contains("config") ? body["config"] : json::object();
  auto cfg = config_from_request(sections, {id, cfg_.data_dir / "experiments", model_dir, datasets_.data_file(dataset_id)});
  if (auto problems = experiment::check_paths(cfg); !problems.empty()) {
    std::string msg;
    for (const auto& p : problems) msg += (msg.empty() ? "" : "; ") + p;
    api_fail(400, msg);
  }
  const fs::path cfg_file = cfg_.data_dir / "experiments" / (id + ".cfg.yaml");
  io::write_file_atomic(cfg_file, experiment::to_yaml(cfg));
  json doc = {{"id", id},          {"name", name},       {"status", experiment::to_string(experiment::RunStatus::Created)},
              {"dataset_id", dataset_id}, {"llm_backbone", model_dir.string()}, {"created_at", now_iso8601()},
              {"dir", dir.string()}, {"cfg_file", cfg_file.string()}, {"message", ""},
              {"config", sections.is_object() ? sections : json::object()}, {"warnings", cfg.warnings}};
  store_.put_experiment(doc);
  if (start) doc = runner_.start(id);
  return view(doc);
}

json StudioApi::metrics(const json& doc) const {
  json out = json::array();
  std::ifstream in(fs::path(doc.value("dir", "")) / "metrics.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    auto m = io::try_parse_json(line);
    if (m && m->is_object()) out.push_back(std::move(*m));
  }
  return out;
}

json StudioApi::export_experiment(const std::string& id, const json& body) {
  const json doc = experiment_doc(id);
  if (status_of(doc) != experiment::RunStatus::Finished)
    api_fail(409, "experiment ", id, " is ", experiment::to_string(status_of(doc)), "; only finished experiments can be exported");
  const std::string mode = json_string(body, "mode", "merged");
  if (mode != "merged" && mode != "adapter") api_fail(400, "mode: invalid value \"", mode, "\"; allowed values: merged, adapter");
  const fs::path dir = doc.at("dir").get<std::string>();
  const bool lora = fs::exists(dir / "adapter_config.json");
  if (mode == "adapter" && !lora) api_fail(409, "experiment ", id, " is a full fine-tuning run: it has no adapter to export");
  infer::ExportOptions e;
  e.model_dir = lora ? fs::path(doc.at("llm_backbone").get<std::string>()) : dir;
  if (lora) e.adapter_dir = dir;
  e.mode = mode == "adapter" ? infer::ExportMode::adapter_only : infer::ExportMode::merged;
  model_policy_.check_folder(e.model_dir, "export");  // 403 for a symlink out of the (backbone) folder
  e.confine_roots = model_policy_.roots();            // and export_model checks again as it copies
  const std::string name = mode + "-" + compact_time() + "-" + new_id("x").substr(2, 6);
  const fs::path final_dir = cfg_.data_dir / "exports" / id / name, tmp = final_dir.string() + ".tmp";
  io::remove_tree(tmp);
  e.out_dir = tmp;
  infer::export_model(e);
  fs::rename(tmp, final_dir);  // a crash mid-export leaves only a .tmp folder, never a half-written export
  return {{"name", name}, {"path", final_dir.string()}, {"download", "/api/experiments/" + id + "/exports/" + name + ".tar"}};
}

void StudioApi::events(const std::string& id, httplib::Response& res) {
  experiment_doc(id);  // 404 before the stream starts
  auto slot = event_streams_.acquire();  // 503 + Retry-After when too many are open
  struct State {
    std::string last_status;
    std::uint64_t metrics_off = 0, log_off = 0;
    std::chrono::steady_clock::time_point last_sent = std::chrono::steady_clock::now();
  };
  auto st = std::make_shared<State>();
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider("text/event-stream", [this, id, st, slot](std::size_t, httplib::DataSink& sink) {
    auto send = [&](const char* event, const json& data) {
      const std::string s = std::string("event: ") + event + "\ndata: " +
                            data.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
      st->last_sent = std::chrono::steady_clock::now();
      return sink.write(s.data(), s.size());
    };
    while (!stopping_) {
      auto doc = store_.experiment(id);
      if (!doc) {
        send("status", {{"id", id}, {"status", "deleted"}});
        sink.done();
        return true;
      }
      const json v = view(*doc);
      const fs::path dir = doc->value("dir", "");
      std::uint64_t next = 0;
      const std::string m = read_chunk(dir / "metrics.jsonl", st->metrics_off, 1 << 20, next);
      st->metrics_off = next;
      for (std::size_t pos = 0; pos < m.size();) {
        auto nl = m.find('\n', pos);
        auto j = io::try_parse_json(std::string_view(m).substr(pos, nl - pos));
        if (j && !send("metric", *j)) return false;
        pos = nl + 1;
      }
      const std::string log = read_chunk(dir.string() + ".console.log", st->log_off, 1 << 20, next);
      st->log_off = next;
      if (!log.empty() && !send("log", {{"text", log}})) return false;
      const std::string status = v.dump();
      if (status != st->last_status) {
        st->last_status = status;
        if (!send("status", v)) return false;
      }
      if (!experiment::is_active(status_of(v))) {
        sink.done();
        return true;
      }
      if (std::chrono::steady_clock::now() - st->last_sent > std::chrono::seconds(15)) {
        static const std::string ping = ": ping\n\n";
        if (!sink.write(ping.data(), ping.size())) return false;
        st->last_sent = std::chrono::steady_clock::now();
      }
      if (!sink.is_writable()) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
    return false;
  });
}

const char* StudioApi::range_paths() { return R"(/|/index\.html|/ui(/.*)?|/api/experiments/[^/]+/exports/[^/]+\.tar)"; }

const char* StudioApi::query_token_routes() { return R"(/api/experiments/[^/]+/(events|exports/[^/]+\.tar))"; }

void StudioApi::add_routes(httplib::Server& server, RouteMethods& methods) {
  Routes svr(server, methods);
  auto ui = guarded([](const httplib::Request& req, httplib::Response& res) {
    const UiAsset* a = find_ui_asset(req.path);
    if (!a) api_fail(404, "no UI file ", req.path);
    if (refuse_unsatisfiable_range(req, res, a->body.size())) return;
    // Status left to httplib: 200, or 206 with the one requested range (http_server.h).
    res.set_content(a->body.data(), a->body.size(), std::string(a->content_type));
  });
  svr.Get("/", ui);
  svr.Get("/index.html", ui);
  svr.Get(R"(/ui(/.*)?)", ui);

  svr.Get("/api/health", guarded([](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, {{"ok", true}, {"version", LLMS_VERSION}});
  }));
  svr.Get("/api/env", guarded([this](const httplib::Request&, httplib::Response& res) { send_json(res, 200, env_); }));
  svr.Get("/api/config/schema",
          guarded([](const httplib::Request&, httplib::Response& res) { send_json(res, 200, config_schema()); }));
  svr.Get("/api/models", guarded([this](const httplib::Request&, httplib::Response& res) { send_json(res, 200, models()); }));

  // ---- datasets ----
  svr.Post("/api/datasets", guarded([this](const httplib::Request& req, httplib::Response& res,
                                            const httplib::ContentReader& reader) {
    if (!req.is_multipart_form_data()) {
      reader([](const char*, std::size_t) { return true; });  // drain, so the connection stays usable
      api_fail(400, "POST /api/datasets expects multipart/form-data with a \"file\" part (JSON imports: POST /api/datasets/import)");
    }
    std::unique_ptr<DatasetUpload> upload;
    std::string current, name, error;
    int error_status = 0;
    bool saw_file = false;
    const bool ok = reader(
        [&](const httplib::MultipartFormData& part) {
          current = part.name;
          if (part.name == "file") {
            if (saw_file) {
              error_status = 400, error = "only one \"file\" part is accepted";
              return false;
            }
            saw_file = true;
            try {
              upload = datasets_.begin_upload(part.filename.empty() ? "upload" : part.filename, cfg_.max_upload_bytes);
            } catch (const ApiError& e) {
              error_status = e.status(), error = e.what();
              return false;
            }
          }
          return true;
        },
        [&](const char* data, std::size_t n) {
          if (current == "file" && upload) {
            // Over the limit: keep reading (discarding) so the client gets the 413 and not a reset.
            upload->write(data, n);
          } else if (current == "name") {
            if (name.size() + n > 1024) {
              error_status = 400, error = "name: longer than 1024 bytes";
              return false;
            }
            name.append(data, n);
          }
          return true;
        });
    if (error_status) api_fail(error_status, error);
    if (!ok && res.status == 413)  // httplib's own limit (the body was larger than any upload may be)
      api_fail(413, "upload larger than the limit of ", cfg_.max_upload_bytes, " bytes (--max-upload-mb)");
    if (upload && upload->too_large())
      api_fail(413, "upload larger than the limit of ", cfg_.max_upload_bytes, " bytes (--max-upload-mb)");
    if (!ok) api_fail(400, "malformed multipart/form-data body");
    if (!upload) api_fail(400, "no \"file\" part in the form (multipart/form-data: file=<csv|jsonl|parquet>)");
    send_json(res, 201, upload->finish(name));
  }));
  svr.Post("/api/datasets/import", guarded([this](const httplib::Request& req, httplib::Response& res) {
    const json body = parse_json_body(req);
    const std::string path = json_string(body, "path");
    if (path.empty()) api_fail(400, "path: required (an absolute path under an --allow-path folder)");
    send_json(res, 201, datasets_.import_file(path, json_string(body, "name")));
  }));
  svr.Get("/api/datasets", guarded([this](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, {{"datasets", datasets_.list()}});
  }));
  svr.Get(R"(/api/datasets/([^/]+))", guarded([this](const httplib::Request& req, httplib::Response& res) {
    send_json(res, 200, datasets_.get(req.matches[1], true));
  }));
  svr.Get(R"(/api/datasets/([^/]+)/rows)", guarded([this](const httplib::Request& req, httplib::Response& res) {
    send_json(res, 200, datasets_.rows(req.matches[1], query_int(req, "offset", 0), query_int(req, "limit", 50)));
  }));
  svr.Delete(R"(/api/datasets/([^/]+))", guarded([this](const httplib::Request& req, httplib::Response& res) {
    const std::string id = req.matches[1];
    std::string users;  // every experiment that names it (a finished one may still be cloned or resumed)
    std::size_t n = 0;
    for (const auto& e : store_.experiments())
      if (e.value("dataset_id", "") == id && ++n <= 10)
        users += (users.empty() ? "" : ", ") + e.value("id", "") + " (" + e.value("name", "") + ")";
    if (n > 0)
      api_fail(409, "dataset ", id, " is used by ", n, " experiment(s): ", users, n > 10 ? ", ..." : "",
               "\n  hint: delete those experiments first, then the dataset");
    datasets_.remove(id);
    res.status = 204;
  }));

  // ---- experiments ----
  svr.Post("/api/experiments", guarded([this](const httplib::Request& req, httplib::Response& res) {
    send_json(res, 201, create_experiment(parse_json_body(req)));
  }));
  svr.Get("/api/experiments", guarded([this](const httplib::Request&, httplib::Response& res) {
    json list = json::array();
    for (const auto& d : store_.experiments()) list.push_back(view(d));
    send_json(res, 200, {{"experiments", list}});
  }));
  svr.Get(R"(/api/experiments/([^/]+))", guarded([this](const httplib::Request& req, httplib::Response& res) {
    send_json(res, 200, view(experiment_doc(req.matches[1])));
  }));
  svr.Post(R"(/api/experiments/([^/]+)/start)", guarded([this](const httplib::Request& req, httplib::Response& res) {
    send_json(res, 200, view(runner_.start(req.matches[1])));
  }));
  svr.Post(R"(/api/experiments/([^/]+)/stop)", guarded([this](const httplib::Request& req, httplib::Response& res) {
    send_json(res, 200, view(runner_.stop(req.matches[1])));
  }));
  svr.Post(R"(/api/experiments/([^/]+)/clone)", guarded([this](const httplib::Request& req, httplib::Response& res) {
    const json src = experiment_doc(req.matches[1]);
    const json body = parse_json_body(req);
    json create = {{"dataset_id", src.value("dataset_id", "")},
                   {"llm_backbone", src.value("llm_backbone", "")},
                   {"config", src.value("config", json::object())},
                   {"name", json_string(body, "name", copy_name(src.value("name", "")))}};
    send_json(res, 201, create_experiment(create));
  }));
  svr.Delete(R"(/api/experiments/([^/]+))", guarded([this](const httplib::Request& req, httplib::Response& res) {
    const std::string id = req.matches[1];
    const json doc = experiment_doc(id);
    runner_.stop(id);
    store_.remove_experiment(id);
    const fs::path dir = doc.at("dir").get<std::string>();
    if (dir.parent_path() == cfg_.data_dir / "experiments") {  // never remove anything outside the data folder
      io::remove_tree(dir);
      io::remove_tree(dir.string() + ".console.log");
      io::remove_tree(dir.string() + ".cfg.yaml");
      io::remove_tree(cfg_.data_dir / "exports" / id);
    }
    res.status = 204;
  }));
  svr.Get(R"(/api/experiments/([^/]+)/metrics)", guarded([this](const httplib::Request& req, httplib::Response& res) {
    send_json(res, 200, {{"metrics", metrics(experiment_doc(req.matches[1]))}});
  }));
  svr.Get(R"(/api/experiments/([^/]+)/logs)", guarded([this](const httplib::Request& req, httplib::Response& res) {
    const json doc = experiment_doc(req.matches[1]);
    const std::int64_t offset = query_int(req, "offset", 0);
    if (offset < 0) api_fail(400, "offset: must be >= 0, got ", offset);
    std::uint64_t next = 0;
    std::string text = read_chunk(doc.at("dir").get<std::string>() + ".console.log", static_cast<std::uint64_t>(offset),
                                  256 << 10, next);
    send_json(res, 200, {{"text", text}, {"next_offset", next}});
  }));
  svr.Get(R"(/api/experiments/([^/]+)/config)", guarded([this](const httplib::Request& req, httplib::Response& res) {
    const json doc = experiment_doc(req.matches[1]);
    const fs::path resolved = fs::path(doc.at("dir").get<std::string>()) / "cfg.yaml";
    const std::string yaml = io::read_file(fs::exists(resolved) ? resolved : fs::path(doc.at("cfg_file").get<std::string>()));
    send_json(res, 200, {{"yaml", yaml}, {"config", config_yaml_to_json(yaml)}});
  }));
  svr.Get(R"(/api/experiments/([^/]+)/predictions)", guarded([this](const httplib::Request& req, httplib::Response& res) {
    const json doc = experiment_doc(req.matches[1]);
    const fs::path file = fs::path(doc.at("dir").get<std::string>()) / "validation_predictions.csv";
    json out = {{"columns", json::array()}, {"rows", json::array()}};
    if (fs::exists(file)) {
      const auto t = data::read_dataset(file);
      out["columns"] = t.column_names();
      for (std::size_t r = 0; r < std::min<std::size_t>(t.num_rows(), 1000); ++r) {
        json row = json::array();
        for (std::size_t c = 0; c < t.num_columns(); ++c) row.push_back(t.cell(r, c) ? json(*t.cell(r, c)) : json(nullptr));
        out["rows"].push_back(row);
      }
    }
    send_json(res, 200, out);
  }));
  svr.Get(R"(/api/experiments/([^/]+)/events)", guarded([this](const httplib::Request& req, httplib::Response& res) {
    events(req.matches[1], res);
  }));
  svr.Post(R"(/api/experiments/([^/]+)/export)", guarded([this](const httplib::Request& req, httplib::Response& res) {
    send_json(res, 201, export_experiment(req.matches[1], parse_json_body(req)));
  }));
  svr.Get(R"(/api/experiments/([^/]+)/exports/([^/]+)\.tar)", guarded([this](const httplib::Request& req, httplib::Response& res) {
    const std::string id = req.matches[1], name = req.matches[2];
    experiment_doc(id);
    const fs::path dir = cfg_.data_dir / "exports" / id / name;
    if (!safe_name(name) || !fs::is_directory(dir)) api_fail(404, "experiment ", id, " has no export named \"", name, "\"");
    auto tar = std::make_shared<TarStream>(dir, name);
    if (refuse_unsatisfiable_range(req, res, tar->size())) return;
    res.set_header("Content-Disposition", "attachment; filename=\"" + id + "-" + name + ".tar\"");
    res.set_header("Accept-Ranges", "bytes");
    // httplib asks for [offset, offset + length): the whole archive, or the one requested range (206).
    res.set_content_provider(static_cast<std::size_t>(tar->size()), "application/x-tar",
                             [tar](std::size_t offset, std::size_t length, httplib::DataSink& sink) {
                               if (offset >= tar->size()) return false;  // never a call that writes nothing
                               return tar->write_range(offset, length,
                                                       [&](const char* d, std::size_t n) { return sink.write(d, n); });
                             });
  }));
  svr.Get("/api/compare", guarded([this](const httplib::Request& req, httplib::Response& res) {
    const std::string ids = req.get_param_value("ids");
    if (ids.empty()) api_fail(400, "ids: required, e.g. ?ids=exp_a,exp_b");
    json exps = json::array(), mets = json::object();
    std::map<std::string, json> configs;
    std::size_t pos = 0;
    while (pos <= ids.size()) {
      auto comma = ids.find(',', pos);
      if (comma == std::string::npos) comma = ids.size();
      const std::string id = ids.substr(pos, comma - pos);
      pos = comma + 1;
      if (id.empty() || configs.count(id)) continue;
      if (configs.size() >= 20) api_fail(400, "ids: at most 20 experiments");
      const json doc = experiment_doc(id);
      exps.push_back(view(doc));
      mets[id] = metrics(doc);
      const fs::path resolved = fs::path(doc.at("dir").get<std::string>()) / "cfg.yaml";
      configs[id] = config_yaml_to_json(io::read_file(fs::exists(resolved) ? resolved : fs::path(doc.at("cfg_file").get<std::string>())));
    }
    send_json(res, 200, {{"experiments", exps}, {"metrics", mets}, {"config_diff", config_diff(configs)}});
  }));

  openai_.add_routes(svr);
}

}  // namespace llmstudio::server
