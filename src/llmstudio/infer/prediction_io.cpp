// Batch prediction files (see prediction_io.h).
#include "llmstudio/infer/prediction_io.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>

#include "llmstudio/core/error.h"
#include "llmstudio/data/dataset_reader.h"
#include "llmstudio/io/atomic_file.h"

namespace llmstudio::infer {

std::vector<PromptRow> read_prompt_rows(const std::filesystem::path& path) {
  data::Table t = data::read_dataset(path);
  const std::size_t pc = t.column_index("prompt", "prompt column (the text to complete)");
  const auto sc = t.find_column("system");
  std::vector<PromptRow> rows(t.num_rows());
  for (std::size_t i = 0; i < t.num_rows(); ++i) {
    const auto& p = t.cell(i, pc);
    LLMS_CHECK(p.has_value(), path.string(), ": row ", i + 1, " has no prompt (the 'prompt' cell is empty)");
    rows[i].prompt = *p;
    if (sc && t.cell(i, *sc)) rows[i].system = *t.cell(i, *sc);
  }
  LLMS_CHECK(!rows.empty(), path.string(), ": no rows");
  return rows;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

namespace {
std::string join_ids(const std::vector<std::int64_t>& ids) {
  std::string s;
  for (std::size_t i = 0; i < ids.size(); ++i) s += (i ? " " : "") + std::to_string(ids[i]);
  return s;
}
}  // namespace

void write_predictions(const std::filesystem::path& path, const std::vector<PredictionRow>& rows) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  std::string out;
  if (ext == ".jsonl" || ext == ".json") {
    for (const auto& r : rows) {
      nlohmann::json j = {{"prompt", r.prompt}, {"system", r.system}, {"text", r.text}, {"prompt_ids", r.prompt_ids},
                          {"token_ids", r.token_ids}, {"finish_reason", r.finish_reason}};
      out += j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    }
  } else if (ext == ".csv") {
    out = "prompt,system,text,prompt_ids,token_ids,finish_reason\n";
    for (const auto& r : rows)
      out += csv_field(r.prompt) + "," + csv_field(r.system) + "," + csv_field(r.text) + "," + join_ids(r.prompt_ids) +
             "," + join_ids(r.token_ids) + "," + r.finish_reason + "\n";
  } else {
    fail(path.string(), ": unsupported output extension '", ext, "'; use .jsonl or .csv");
  }
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  io::write_file_atomic(path, out);
}

}  // namespace llmstudio::infer
