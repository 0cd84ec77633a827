// The studio's metadata store: datasets and experiments in one SQLite database (<data-dir>/studio.db, WAL
// journal, so a crash never leaves a half-written record and readers never block the writer). Each record is
// a row with its id, creation time and status (experiments) plus the record as a JSON document. Artefacts
// (dataset files, experiment folders) live as files in the data directory, not here. Thread-safe.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "llmstudio/experiment/run_status.h"

struct sqlite3;

namespace llmstudio::server {

// A new random id "<prefix>_<16 hex digits>", e.g. "ds_3f9a...".
std::string new_id(std::string_view prefix);
// The current UTC time as ISO 8601 ("2026-11-26T10:14:57Z").
std::string now_iso8601();

// An experiment document's "status" (Created when absent or not a status name) and setting it.
experiment::RunStatus status_of(const nlohmann::json& doc);
void set_status(nlohmann::json& doc, experiment::RunStatus status);

class ExperimentStore {
 public:
  // Opens (creating if needed) the database file and its tables.
  explicit ExperimentStore(const std::filesystem::path& db_file);
  ~ExperimentStore();
  ExperimentStore(const ExperimentStore&) = delete;
  ExperimentStore& operator=(const ExperimentStore&) = delete;

  // Datasets: documents with at least "id" and "created_at".
  void put_dataset(const nlohmann::json& doc);  // insert or replace
  std::optional<nlohmann::json> dataset(const std::string& id);
  std::vector<nlohmann::json> datasets();  // oldest first
  bool remove_dataset(const std::string& id);

  // Experiments: documents with at least "id", "created_at" and "status".
  void put_experiment(const nlohmann::json& doc);  // insert or replace
  std::optional<nlohmann::json> experiment(const std::string& id);
  std::vector<nlohmann::json> experiments();  // oldest first
  bool remove_experiment(const std::string& id);

 private:
  void exec(const char* sql);
  void put(const char* table, const nlohmann::json& doc);
  std::optional<nlohmann::json> get(const char* table, const std::string& id);
  std::vector<nlohmann::json> list(const char* table);
  bool remove(const char* table, const std::string& id);

  std::filesystem::path file_;
  sqlite3* db_ = nullptr;
  std::mutex mu_;
};

}  // namespace llmstudio::server
