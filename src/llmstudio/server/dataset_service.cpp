// Dataset uploads, imports, previews and deletion (see dataset_service.h).
#include "llmstudio/server/dataset_service.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>

#include "llmstudio/data/dataset_reader.h"
#include "llmstudio/io/atomic_file.h"
#include "llmstudio/server/api_error.h"

namespace llmstudio::server {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::size_t utf8_length(const std::string& s) {
  return static_cast<std::size_t>(std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

bool is_int(const std::string& s) {
  std::int64_t v;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

bool is_float(const std::string& s) {
  if (s.empty()) return false;
  char* end = nullptr;
  std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size() && !std::isspace(static_cast<unsigned char>(s[0]));
}

void write_all(int fd, const char* data, std::size_t n, const fs::path& file) {
  while (n > 0) {
    const ssize_t w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail("cannot write ", file, ": ", std::strerror(errno));
    }
    data += w;
    n -= static_cast<std::size_t>(w);
  }
}

bool valid_id(const std::string& id) {
  return id.size() > 3 && id.size() < 64 &&
         std::all_of(id.begin(), id.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

}  // namespace

std::string infer_column_type(const std::vector<data::Cell>& cells) {
  bool any = false, all_bool = true, all_int = true, all_float = true;
  for (const auto& c : cells) {
    if (!c) continue;
    any = true;
    const std::string& s = *c;
    if (all_bool && !(s == "true" || s == "false" || s == "True" || s == "False")) all_bool = false;
    if (all_int && !is_int(s)) all_int = false;
    if (all_float && !is_float(s)) all_float = false;
    if (!all_bool && !all_int && !all_float) break;
  }
  if (!any) return "string";
  if (all_bool) return "bool";
  if (all_int) return "int";
  if (all_float) return "float";
  return "string";
}

// ---- upload -------------------------------------------------------------------------------------------------

DatasetUpload::DatasetUpload(DatasetService& service, std::string id, std::string filename, std::string ext,
                             std::uint64_t max_bytes)
    : service_(service), id_(std::move(id)), filename_(std::move(filename)), ext_(std::move(ext)), max_bytes_(max_bytes) {
  dir_ = service_.data_dir_ / "datasets" / id_;
  fs::create_directories(dir_);
  part_ = dir_ / ("data." + ext_ + ".part");
  fd_ = ::open(part_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd_ < 0) fail("cannot create ", part_, ": ", std::strerror(errno));
}

DatasetUpload::~DatasetUpload() {
  if (fd_ >= 0) ::close(fd_);
  if (!finished_) io::remove_tree(dir_);
}

bool DatasetUpload::write(const char* data, std::size_t size) {
  if (too_large_) return false;
  if (size_ + size > max_bytes_) {
    too_large_ = true;
    return false;
  }
  write_all(fd_, data, size, part_);
  size_ += size;
  return true;
}

json DatasetUpload::finish(const std::string& name) {
  if (too_large_) api_fail(413, "upload larger than the limit of ", max_bytes_, " bytes (--max-upload-mb)");
  if (::fsync(fd_) != 0 || ::close(fd_) != 0) {
    fd_ = -1;
    fail("cannot write ", part_, ": ", std::strerror(errno));
  }
  fd_ = -1;
  const fs::path file = dir_ / ("data." + ext_);
  fs::rename(part_, file);
  json rec = service_.record(id_, name, filename_, ext_, file);
  finished_ = true;
  return rec;
}

// ---- service -------------------------------------------------------------------------------------------------

DatasetService::DatasetService(ExperimentStore& store, fs::path data_dir, const PathPolicy& policy)
    : store_(store), data_dir_(std::move(data_dir)), policy_(policy) {
  fs::create_directories(data_dir_ / "datasets");
}

std::string DatasetService::extension_of(const std::string& filename) {
  const auto dot = filename.rfind('.');
  std::string ext = dot == std::string::npos ? "" : filename.substr(dot + 1);
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (ext == "pq") ext = "parquet";
  if (ext != "csv" && ext != "jsonl" && ext != "json" && ext != "parquet")
    api_fail(400, "dataset file \"", filename, "\": unsupported extension \"", ext,
             "\"; supported: .csv, .jsonl, .json, .parquet");
  return ext;
}

std::unique_ptr<DatasetUpload> DatasetService::begin_upload(const std::string& client_filename, std::uint64_t max_bytes) {
  const std::string ext = extension_of(client_filename);
  // Only the last path component is kept, as display metadata.
  std::string shown = client_filename;
  if (const auto slash = shown.find_last_of("/\\"); slash != std::string::npos) shown = shown.substr(slash + 1);
  return std::unique_ptr<DatasetUpload>(new DatasetUpload(*this, new_id("ds"), shown, ext, max_bytes));
}

json DatasetService::import_file(const std::string& path, const std::string& name) {
  const fs::path src = policy_.resolve(path, "import path");
  if (!fs::is_regular_file(src)) api_fail(400, "import path \"", path, "\" is not a regular file");
  const std::string ext = extension_of(src.filename().string());
  const std::string id = new_id("ds");
  const fs::path dir = data_dir_ / "datasets" / id;
  fs::create_directories(dir);
  try {
    const fs::path file = dir / ("data." + ext);
    io::write_file_atomic(file, io::read_file(src));
    return record(id, name, src.filename().string(), ext, file);
  } catch (...) {
    io::remove_tree(dir);
    throw;
  }
}

json DatasetService::record(const std::string& id, const std::string& name, const std::string& filename,
                            const std::string& ext, const fs::path& file) {
  data::Table t;
  try {
    t = data::read_dataset(file);
  } catch (const Error& e) {
    std::string msg = e.what();
    // Name the client's file, not the server-side storage path.
    for (auto pos = msg.find(file.string()); pos != std::string::npos; pos = msg.find(file.string()))
      msg.replace(pos, file.string().size(), filename);
    api_fail(400, "dataset \"", filename, "\" is not a readable ", ext, " table: ", msg);
  }
  json cols = json::array();
  for (std::size_t c = 0; c < t.num_columns(); ++c)
    cols.push_back({{"name", t.column_names()[c]}, {"type", infer_column_type(t.column(c))}});
  json doc = {{"id", id},
              {"name", name.empty() ? filename : name},
              {"filename", filename},
              {"format", ext == "json" ? "jsonl" : ext},
              {"rows", t.num_rows()},
              {"columns", cols},
              {"size_bytes", fs::file_size(file)},
              {"created_at", now_iso8601()},
              {"path", file.string()}};
  store_.put_dataset(doc);
  return doc;
}

json DatasetService::list() {
  json out = json::array();
  for (auto& d : store_.datasets()) out.push_back(d);
  return out;
}

json DatasetService::get(const std::string& id, bool with_stats) {
  auto doc = store_.dataset(id);
  if (!doc) api_fail(404, "no dataset with id \"", id, "\"");
  if (with_stats) {
    auto t = table(id);
    json stats = json::object();
    for (std::size_t c = 0; c < t->num_columns(); ++c) {
      std::size_t n = 0, lo = 0, hi = 0, sum = 0;
      for (const auto& cell : t->column(c)) {
        if (!cell) continue;
        const std::size_t len = utf8_length(*cell);
        lo = n == 0 ? len : std::min(lo, len);
        hi = std::max(hi, len);
        sum += len;
        ++n;
      }
      stats[t->column_names()[c]] = {{"min_len", lo}, {"mean_len", n ? static_cast<double>(sum) / static_cast<double>(n) : 0.0},
                                     {"max_len", hi}, {"non_null", n}};
    }
    (*doc)["stats"] = stats;
  }
  return *doc;
}

json DatasetService::rows(const std::string& id, std::int64_t offset, std::int64_t limit) {
  if (!store_.dataset(id)) api_fail(404, "no dataset with id \"", id, "\"");
  if (offset < 0) api_fail(400, "offset: must be >= 0, got ", offset);
  if (limit < 0 || limit > 1000) api_fail(400, "limit: must be in [0, 1000], got ", limit);
  auto t = table(id);
  json rows = json::array();
  const auto total = static_cast<std::int64_t>(t->num_rows());
  const std::int64_t end = offset >= total ? total : std::min(total, offset + limit);  // no overflow
  for (std::int64_t r = offset; r < end; ++r) {
    json row = json::array();
    for (std::size_t c = 0; c < t->num_columns(); ++c) {
      const auto& cell = t->cell(static_cast<std::size_t>(r), c);
      row.push_back(cell ? json(*cell) : json(nullptr));
    }
    rows.push_back(std::move(row));
  }
  return {{"columns", t->column_names()}, {"rows", rows}, {"total", total}, {"offset", offset}};
}

fs::path DatasetService::data_file(const std::string& id) {
  auto doc = store_.dataset(id);
  if (!doc) api_fail(404, "no dataset with id \"", id, "\"");
  return doc->at("path").get<std::string>();
}

std::shared_ptr<const data::Table> DatasetService::table(const std::string& id) {
  {
    std::lock_guard lock(cache_mu_);
    if (cached_ && cached_id_ == id) return cached_;
  }
  auto t = std::make_shared<const data::Table>(data::read_dataset(data_file(id)));
  std::lock_guard lock(cache_mu_);
  cached_id_ = id;
  cached_ = t;
  return t;
}

void DatasetService::remove(const std::string& id) {
  if (!store_.remove_dataset(id)) api_fail(404, "no dataset with id \"", id, "\"");
  {
    std::lock_guard lock(cache_mu_);
    if (cached_id_ == id) cached_.reset();
  }
  if (valid_id(id)) io::remove_tree(data_dir_ / "datasets" / id);
}

void DatasetService::remove_orphans() {
  for (const auto& e : fs::directory_iterator(data_dir_ / "datasets")) {
    const std::string id = e.path().filename().string();
    if (valid_id(id) && !store_.dataset(id)) io::remove_tree(e.path());
  }
}

}  // namespace llmstudio::server
