// The studio's datasets: uploads streamed to disk under a size limit, imports of server-side files under the
// --allow-path roots, listing, preview (paged rows, column names and inferred types, row count, text-length
// stats) and deletion. A client's file name is only ever metadata: the file is stored as
// <data-dir>/datasets/<id>/data.<ext>, where <ext> is one of the supported extensions (csv, jsonl, json,
// parquet) taken from the name. Files are read with the data/ readers (the same as `llmstudio train`), so a
// file the studio accepts is one training can read.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

#include "llmstudio/data/table.h"
#include "llmstudio/server/experiment_store.h"
#include "llmstudio/server/path_policy.h"

namespace llmstudio::server {

class DatasetService;

// One upload in progress: bytes go to a temporary file in the dataset's folder; finish() checks and records
// it. Destroyed unfinished, it removes what it wrote.
class DatasetUpload {
 public:
  ~DatasetUpload();
  DatasetUpload(const DatasetUpload&) = delete;
  DatasetUpload& operator=(const DatasetUpload&) = delete;

  // Appends bytes; false (and nothing more is written) once the total passes the limit.
  bool write(const char* data, std::size_t size);
  bool too_large() const { return too_large_; }
  std::uint64_t size() const { return size_; }
  // Parses the file with the data/ readers (ApiError 400 naming the problem if it is not a valid table),
  // records it and returns the Dataset JSON.
  nlohmann::json finish(const std::string& name);

 private:
  friend class DatasetService;
  DatasetUpload(DatasetService& service, std::string id, std::string filename, std::string ext, std::uint64_t max_bytes);

  DatasetService& service_;
  std::string id_, filename_, ext_;
  std::filesystem::path dir_, part_;
  int fd_ = -1;
  std::uint64_t size_ = 0, max_bytes_;
  bool too_large_ = false, finished_ = false;
};

class DatasetService {
 public:
  DatasetService(ExperimentStore& store, std::filesystem::path data_dir, const PathPolicy& policy);

  // The supported extension of a client file name ("csv", "jsonl", "json", "parquet"); ApiError 400 otherwise.
  static std::string extension_of(const std::string& filename);

  std::unique_ptr<DatasetUpload> begin_upload(const std::string& client_filename, std::uint64_t max_bytes);
  // Copies a server-side file (under an --allow-path root) into the data folder and records it.
  nlohmann::json import_file(const std::string& path, const std::string& name);

  nlohmann::json list();
  // The Dataset JSON; with stats, "stats": {column: {min_len, mean_len, max_len}} (characters). ApiError 404.
  nlohmann::json get(const std::string& id, bool with_stats);
  // {"columns": [...], "rows": [[cell|null, ...]], "total": N} for rows [offset, offset + limit).
  nlohmann::json rows(const std::string& id, std::int64_t offset, std::int64_t limit);
  // The stored file of a dataset (for training configs). ApiError 404.
  std::filesystem::path data_file(const std::string& id);
  void remove(const std::string& id);
  // Removes dataset folders that have no record (an upload cut short by a crash).
  void remove_orphans();

 private:
  friend class DatasetUpload;
  nlohmann::json record(const std::string& id, const std::string& name, const std::string& filename,
                        const std::string& ext, const std::filesystem::path& file);
  std::shared_ptr<const data::Table> table(const std::string& id);

  ExperimentStore& store_;
  std::filesystem::path data_dir_;
  const PathPolicy& policy_;
  std::mutex cache_mu_;
  std::string cached_id_;
  std::shared_ptr<const data::Table> cached_;
};

// The column type a text column holds: "bool", "int", "float" or "string" (nulls ignored; all-null: "string").
std::string infer_column_type(const std::vector<data::Cell>& cells);

}  // namespace llmstudio::server
