// SQLite-backed metadata store of the studio (see experiment_store.h).
#include "llmstudio/server/experiment_store.h"

#include <sqlite3.h>

#include <chrono>
#include <ctime>
#include <random>

#include "llmstudio/core/error.h"
#include "llmstudio/io/json_text.h"

namespace llmstudio::server {
namespace {

// Stored documents are built from request bodies (nested at most io::kJsonMaxDepth) plus a few levels.
constexpr int kDocMaxDepth = io::kJsonMaxDepth + 8;

// A prepared statement that finalizes itself.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql, const std::string& file) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &st_, nullptr) != SQLITE_OK)
      fail("database ", file, ": cannot prepare \"", sql, "\": ", sqlite3_errmsg(db));
  }
  ~Statement() { sqlite3_finalize(st_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  void bind(int i, const std::string& s) { sqlite3_bind_text(st_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT); }
  // SQLITE_ROW or SQLITE_DONE; anything else is an Error.
  int step(const std::string& file) {
    const int rc = sqlite3_step(st_);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) fail("database ", file, ": ", sqlite3_errmsg(db_));
    return rc;
  }
  std::string text(int col) {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st_, col));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(st_, col))) : std::string();
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* st_ = nullptr;
};

}  // namespace

std::string new_id(std::string_view prefix) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* hex = "0123456789abcdef";
  std::string id(prefix);
  id += '_';
  auto v = rng();
  for (int i = 0; i < 16; ++i, v >>= 4) id += hex[v & 15];
  return id;
}

std::string now_iso8601() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

experiment::RunStatus status_of(const nlohmann::json& doc) {
  const auto it = doc.find("status");
  if (it == doc.end() || !it->is_string()) return experiment::RunStatus::Created;
  return experiment::parse_run_status(it->get<std::string>()).value_or(experiment::RunStatus::Created);
}

void set_status(nlohmann::json& doc, experiment::RunStatus status) { doc["status"] = experiment::to_string(status); }

ExperimentStore::ExperimentStore(const std::filesystem::path& db_file) : file_(db_file) {
  if (sqlite3_open_v2(db_file.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    fail("cannot open the studio database ", db_file, ": ", msg, "\n  hint: check that --data-dir is writable");
  }
  sqlite3_busy_timeout(db_, 5000);
  exec("PRAGMA journal_mode=WAL");
  exec("PRAGMA synchronous=NORMAL");
  exec("CREATE TABLE IF NOT EXISTS datasets (id TEXT PRIMARY KEY, created_at TEXT NOT NULL, doc TEXT NOT NULL)");
  exec("CREATE TABLE IF NOT EXISTS experiments (id TEXT PRIMARY KEY, created_at TEXT NOT NULL, "
       "status TEXT NOT NULL DEFAULT '', doc TEXT NOT NULL)");
}

ExperimentStore::~ExperimentStore() { sqlite3_close(db_); }

void ExperimentStore::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    fail("database ", file_, ": \"", sql, "\" failed: ", msg);
  }
}

void ExperimentStore::put(const char* table, const nlohmann::json& doc) {
  std::lock_guard lock(mu_);
  const std::string sql = std::string("INSERT OR REPLACE INTO ") + table +
                          (std::string(table) == "experiments" ? " (id, created_at, doc, status) VALUES (?1, ?2, ?3, ?4)"
                                                               : " (id, created_at, doc) VALUES (?1, ?2, ?3)");
  Statement st(db_, sql.c_str(), file_.string());
  st.bind(1, doc.at("id").get<std::string>());
  st.bind(2, doc.value("created_at", now_iso8601()));
  st.bind(3, doc.dump());
  if (std::string(table) == "experiments") st.bind(4, doc.value("status", ""));
  st.step(file_.string());
}

std::optional<nlohmann::json> ExperimentStore::get(const char* table, const std::string& id) {
  std::lock_guard lock(mu_);
  const std::string sql = std::string("SELECT doc FROM ") + table + " WHERE id = ?1";
  Statement st(db_, sql.c_str(), file_.string());
  st.bind(1, id);
  if (st.step(file_.string()) != SQLITE_ROW) return std::nullopt;
  return io::parse_json(st.text(0), file_.string() + " (" + table + " " + id + ")", kDocMaxDepth);
}

std::vector<nlohmann::json> ExperimentStore::list(const char* table) {
  std::lock_guard lock(mu_);
  const std::string sql = std::string("SELECT doc FROM ") + table + " ORDER BY created_at, rowid";
  Statement st(db_, sql.c_str(), file_.string());
  std::vector<nlohmann::json> out;
  while (st.step(file_.string()) == SQLITE_ROW)
    out.push_back(io::parse_json(st.text(0), file_.string() + " (" + table + ")", kDocMaxDepth));
  return out;
}

bool ExperimentStore::remove(const char* table, const std::string& id) {
  std::lock_guard lock(mu_);
  const std::string sql = std::string("DELETE FROM ") + table + " WHERE id = ?1";
  Statement st(db_, sql.c_str(), file_.string());
  st.bind(1, id);
  st.step(file_.string());
  return sqlite3_changes(db_) > 0;
}

void ExperimentStore::put_dataset(const nlohmann::json& doc) { put("datasets", doc); }
std::optional<nlohmann::json> ExperimentStore::dataset(const std::string& id) { return get("datasets", id); }
std::vector<nlohmann::json> ExperimentStore::datasets() { return list("datasets"); }
bool ExperimentStore::remove_dataset(const std::string& id) { return remove("datasets", id); }
void ExperimentStore::put_experiment(const nlohmann::json& doc) { put("experiments", doc); }
std::optional<nlohmann::json> ExperimentStore::experiment(const std::string& id) { return get("experiments", id); }
std::vector<nlohmann::json> ExperimentStore::experiments() { return list("experiments"); }
bool ExperimentStore::remove_experiment(const std::string& id) { return remove("experiments", id); }

}  // namespace llmstudio::server
