// Parquet -> Table through Arrow C++ (see parquet_reader.h). Compiled with the Arrow headers and
// LLMS_WITH_PARQUET=1 only when the build found pyarrow's C++ libraries (cmake/Dependencies.cmake).
#include "llmstudio/data/parquet_reader.h"

#include "llmstudio/core/error.h"

#if LLMS_WITH_PARQUET
#include <arrow/api.h>
#include <arrow/io/file.h>
#include <parquet/arrow/reader.h>
#include <parquet/exception.h>
#endif

namespace llmstudio::data {

#if LLMS_WITH_PARQUET
namespace {

template <typename T>
T unwrap(arrow::Result<T> r, const std::string& source, const char* what) {
  if (!r.ok()) fail(source, ": ", what, ": ", r.status().ToString());
  return std::move(r).ValueOrDie();
}

Cell binary_cell(std::string_view bytes, const std::string& source, const std::string& column, int64_t row) {
  if (auto bad = find_invalid_utf8(bytes))
    fail(source, ": column \"", column, "\" row ", row + 1, ": binary value is not valid UTF-8 text (byte offset ",
         *bad, " in the value)\n  hint: store text columns as Parquet strings (UTF-8)");
  return std::string(bytes);
}

Cell cell_of(const arrow::Array& a, int64_t i, const std::string& source, const std::string& column, int64_t row) {
  if (a.IsNull(i)) return std::nullopt;
  switch (a.type_id()) {
    case arrow::Type::NA:
      return std::nullopt;
    case arrow::Type::STRING:
      return std::string(static_cast<const arrow::StringArray&>(a).GetView(i));
    case arrow::Type::LARGE_STRING:
      return std::string(static_cast<const arrow::LargeStringArray&>(a).GetView(i));
    case arrow::Type::STRING_VIEW:
      return std::string(static_cast<const arrow::StringViewArray&>(a).GetView(i));
    case arrow::Type::BINARY:
      return binary_cell(static_cast<const arrow::BinaryArray&>(a).GetView(i), source, column, row);
    case arrow::Type::LARGE_BINARY:
      return binary_cell(static_cast<const arrow::LargeBinaryArray&>(a).GetView(i), source, column, row);
    case arrow::Type::BOOL:
      return static_cast<const arrow::BooleanArray&>(a).Value(i) ? "True" : "False";
    case arrow::Type::INT8:
      return std::to_string(static_cast<const arrow::Int8Array&>(a).Value(i));
    case arrow::Type::INT16:
      return std::to_string(static_cast<const arrow::Int16Array&>(a).Value(i));
    case arrow::Type::INT32:
      return std::to_string(static_cast<const arrow::Int32Array&>(a).Value(i));
    case arrow::Type::INT64:
      return std::to_string(static_cast<const arrow::Int64Array&>(a).Value(i));
    case arrow::Type::UINT8:
      return std::to_string(static_cast<const arrow::UInt8Array&>(a).Value(i));
    case arrow::Type::UINT16:
      return std::to_string(static_cast<const arrow::UInt16Array&>(a).Value(i));
    case arrow::Type::UINT32:
      return std::to_string(static_cast<const arrow::UInt32Array&>(a).Value(i));
    case arrow::Type::UINT64:
      return std::to_string(static_cast<const arrow::UInt64Array&>(a).Value(i));
    case arrow::Type::FLOAT:
      return format_python_float(static_cast<const arrow::FloatArray&>(a).Value(i));
    case arrow::Type::DOUBLE:
      return format_python_float(static_cast<const arrow::DoubleArray&>(a).Value(i));
    case arrow::Type::DICTIONARY: {
      const auto& d = static_cast<const arrow::DictionaryArray&>(a);
      return cell_of(*d.dictionary(), d.GetValueIndex(i), source, column, row);
    }
    default: {  // dates, timestamps, decimals, lists, structs: Arrow's own rendering
      auto scalar = unwrap(a.GetScalar(i), source, "reading a cell");
      return scalar->ToString();
    }
  }
}

}  // namespace

bool parquet_supported() { return true; }

Table read_parquet(const std::filesystem::path& path) {
  const std::string source = path.string();
  LLMS_CHECK(std::filesystem::is_regular_file(path), source, ": file not found");
  LLMS_CHECK(std::filesystem::file_size(path) > 0, source, ": empty file (a Parquet file has at least a footer)");
  std::shared_ptr<arrow::Table> at;
  try {
    auto file = unwrap(arrow::io::ReadableFile::Open(source), source, "cannot open");
    auto reader = unwrap(parquet::arrow::OpenFile(file, arrow::default_memory_pool()), source,
                         "not a readable Parquet file");
    std::shared_ptr<arrow::Schema> schema;  // the column count before reading any data
    auto st = reader->GetSchema(&schema);
    if (!st.ok()) fail(source, ": not a readable Parquet file: ", st.ToString());
    check_column_count(static_cast<std::size_t>(schema->num_fields()), source);
    at = unwrap(reader->ReadTable(), source, "cannot read the Parquet data");
  } catch (const parquet::ParquetException& e) {
    fail(source, ": not a readable Parquet file: ", e.what());
  }
  std::vector<std::string> names;
  for (const auto& field : at->schema()->fields()) names.push_back(field->name());
  // Repeated names (legal in Parquet) are renamed like pandas' CSV reader does: "a", "a.1", ...
  Table out(dedup_column_names(names), source);
  const int64_t rows = at->num_rows();
  std::vector<std::vector<Cell>> columns(names.size());
  for (std::size_t c = 0; c < names.size(); ++c) {
    auto& col = columns[c];
    col.reserve(static_cast<std::size_t>(rows));
    int64_t row = 0;
    for (const auto& chunk : at->column(static_cast<int>(c))->chunks())
      for (int64_t i = 0; i < chunk->length(); ++i, ++row) col.push_back(cell_of(*chunk, i, source, names[c], row));
  }
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<Cell> cells;
    cells.reserve(names.size());
    for (auto& col : columns) cells.push_back(std::move(col[static_cast<std::size_t>(r)]));
    out.add_row(std::move(cells));
  }
  return out;
}

#else  // built without Arrow

bool parquet_supported() { return false; }

Table read_parquet(const std::filesystem::path& path) {
  fail(path.string(),
       ": Parquet support was not built into this llmstudio.\n  hint: install pyarrow into the build's Python "
       "(`make setup-dev`, or .venv/bin/pip install pyarrow), then reconfigure with -DLLMS_WITH_PARQUET=ON and "
       "rebuild; or convert the file to CSV/JSONL (pandas: pd.read_parquet(p).to_csv(out, index=False))");
}

#endif

}  // namespace llmstudio::data
