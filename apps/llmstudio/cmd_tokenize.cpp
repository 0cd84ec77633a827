// `llmstudio tokenize` / `llmstudio detokenize`: run a Hugging Face tokenizer.json on text or ids, plus a JSONL
// batch mode used by the parity tests and the tokenizer benchmark.
#include <nlohmann/json.hpp>

#include <chrono>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "command.h"
#include "llmstudio/core/error.h"
#include "llmstudio/io/json_text.h"
#include "llmstudio/tokenizer/tokenizer.h"

namespace llmstudio::cli {
namespace {

using nlohmann::json;

struct TokenizeOptions {
  std::string tokenizer;
  std::string text;
  std::string file;
  std::string jsonl;
  bool json = false;
  bool no_special = false;
  bool no_decode = false;
  bool time = false;
};

std::string read_all(std::istream& in) { return std::string(std::istreambuf_iterator<char>(in), {}); }

std::string read_input(const std::string& path) {
  if (path == "-") return read_all(std::cin);
  std::ifstream in(path, std::ios::binary);
  LLMS_CHECK(in, "cannot open ", path);
  return read_all(in);
}

// ensure_ascii for machine output (JSONL/--json: safe for any consumer), raw UTF-8 for humans.
std::string dump(const json& j, bool ascii = true) { return j.dump(-1, ' ', ascii, json::error_handler_t::replace); }

// One JSONL input line: a JSON string, {"text": "..."} or {"hex": "<bytes in hex>"} (for invalid UTF-8).
std::string line_text(const std::string& line, std::size_t lineno, const std::string& source) {
  const json j = io::parse_json(line, source + ":" + std::to_string(lineno));
  if (j.is_string()) return j.get<std::string>();
  if (j.is_object() && j.contains("text") && j["text"].is_string()) return j["text"].get<std::string>();
  if (j.is_object() && j.contains("hex") && j["hex"].is_string()) {
    const auto& h = j["hex"].get_ref<const std::string&>();
    LLMS_CHECK(h.size() % 2 == 0, source, ":", lineno, ": \"hex\" must have an even number of digits");
    std::string out;
    for (std::size_t i = 0; i < h.size(); i += 2) out.push_back(static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16)));
    return out;
  }
  fail(source, ":", lineno, ": expected a JSON string, {\"text\": ...} or {\"hex\": ...}, found ", line.substr(0, 80));
}

void run_jsonl(const TokenizeOptions& o, const tokenizer::Tokenizer& tok) {
  std::string data = read_input(o.jsonl);
  std::vector<std::string> texts;
  std::size_t pos = 0, lineno = 0;
  while (pos < data.size()) {
    std::size_t e = data.find('\n', pos);
    if (e == std::string::npos) e = data.size();
    std::string line = data.substr(pos, e - pos);
    pos = e + 1;
    ++lineno;
    if (line.empty()) continue;
    texts.push_back(line_text(line, lineno, o.jsonl));
  }
  std::vector<std::vector<int32_t>> all_ids(texts.size());
  auto t0 = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < texts.size(); ++i) all_ids[i] = tok.encode(texts[i], !o.no_special);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (o.time) {
    std::size_t bytes = 0, ntok = 0;
    for (std::size_t i = 0; i < texts.size(); ++i) {
      bytes += texts[i].size();
      ntok += all_ids[i].size();
    }
    std::cerr << json{{"texts", texts.size()}, {"bytes", bytes}, {"tokens", ntok}, {"encode_seconds", seconds}}.dump()
              << "\n";
  }
  std::string out;
  for (const auto& ids : all_ids) {
    json j{{"ids", ids}};
    if (!o.no_decode) {
      j["decoded"] = tok.decode(ids, false);
      j["decoded_skip_special"] = tok.decode(ids, true);
    }
    out += dump(j);
    out += '\n';
  }
  std::cout << out;
}

void setup_tokenize(CLI::App& app) {
  auto o = std::make_shared<TokenizeOptions>();
  auto* cmd = app.add_subcommand(
      "tokenize",
      "Encode text with a Hugging Face tokenizer.json (same ids as the Python `tokenizers` library).\n"
      "Prints the ids on one line, then one `id<TAB>token` line per token (--json: {\"ids\", \"tokens\"}).\n"
      "Batch mode --jsonl IN (IN '-' = stdin): each input line is a JSON string, {\"text\": ...} or {\"hex\": ...}\n"
      "(raw bytes, for invalid UTF-8, which is read as U+FFFD like Python's errors='replace'); each output line is\n"
      "{\"ids\": [...], \"decoded\": decode(ids), \"decoded_skip_special\": decode(ids, skip_special_tokens)}\n"
      "(--no-decode: ids only; --time: encode throughput as JSON on stderr).");
  cmd->add_option("--tokenizer", o->tokenizer, "Model folder with tokenizer.json, or the tokenizer.json file")
      ->required();
  cmd->add_option("text", o->text, "Text to encode ('-' reads stdin); use -- before text that starts with '-'");
  cmd->add_option("--file", o->file, "Encode the contents of this file ('-' = stdin)");
  cmd->add_option("--jsonl", o->jsonl, "Batch mode: JSONL input file ('-' = stdin), JSONL on stdout");
  cmd->add_flag("--json", o->json, "Print {\"ids\": [...], \"tokens\": [...]} as JSON");
  cmd->add_flag("--no-special", o->no_special, "add_special_tokens=false (no BOS/EOS from the post-processor)");
  cmd->add_flag("--no-decode", o->no_decode, "Batch mode: write only the ids");
  cmd->add_flag("--time", o->time, "Batch mode: report encode time and bytes on stderr");
  cmd->callback([o] {
    auto tok = tokenizer::Tokenizer::from_path(o->tokenizer);
    if (!o->jsonl.empty()) {
      run_jsonl(*o, tok);
      return;
    }
    std::string text;
    if (!o->file.empty())
      text = read_input(o->file);
    else if (o->text == "-")
      text = read_all(std::cin);
    else
      text = o->text;
    auto ids = tok.encode(text, !o->no_special);
    if (o->json) {
      json tokens = json::array();
      for (int32_t id : ids) tokens.push_back(tok.id_to_token(id).value_or(""));
      std::cout << dump(json{{"ids", ids}, {"tokens", tokens}}) << "\n";
      return;
    }
    std::string line;
    for (std::size_t i = 0; i < ids.size(); ++i) line += (i ? " " : "") + std::to_string(ids[i]);
    std::cout << line << "\n";
    for (int32_t id : ids) std::cout << id << "\t" << dump(json(tok.id_to_token(id).value_or("")), false) << "\n";
  });
}

struct DetokenizeOptions {
  std::string tokenizer;
  std::vector<int64_t> ids;
  bool skip_special = false;
};

void setup_detokenize(CLI::App& app) {
  auto o = std::make_shared<DetokenizeOptions>();
  auto* cmd = app.add_subcommand("detokenize", "Decode token ids back to text with a Hugging Face tokenizer.json");
  cmd->add_option("--tokenizer", o->tokenizer, "Model folder with tokenizer.json, or the tokenizer.json file")
      ->required();
  cmd->add_flag("--skip-special", o->skip_special, "Drop special tokens (skip_special_tokens=true)");
  cmd->add_option("ids", o->ids, "Token ids (space or comma separated)")->delimiter(',');
  cmd->callback([o] {
    auto tok = tokenizer::Tokenizer::from_path(o->tokenizer);
    std::vector<int32_t> ids;
    for (int64_t id : o->ids) {
      LLMS_CHECK(id >= 0 && id <= INT32_MAX, "detokenize: id ", id, " out of range");
      ids.push_back(static_cast<int32_t>(id));
    }
    std::cout << tok.decode(ids, o->skip_special) << "\n";
  });
}

}  // namespace
LLMS_COMMAND(30, setup_tokenize);
LLMS_COMMAND(31, setup_detokenize);
}  // namespace llmstudio::cli
