// llms_bleu_tool: BLEU (llmstudio/train/bleu.h) for tests/parity/test_bleu_parity.py.
//   llms_bleu_tool CASES.json   CASES: [{"hyps": [str...], "refs": [[str...] per reference stream]}, ...]
// prints one JSON array with, per case: corpus {score, bp, precisions, sys_len, ref_len, correct, total},
// sentence (per-hypothesis sentence BLEU with effective order) and tokens13a (the 13a tokenisation of each
// hypothesis). Exit 1 with the error on stderr when a case is invalid.
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "llmstudio/core/error.h"
#include "llmstudio/train/bleu.h"

using nlohmann::json;
using namespace llmstudio;

namespace {

json to_json(const train::BleuScore& s) {
  return {{"score", s.score}, {"bp", s.bp}, {"precisions", s.precisions}, {"sys_len", s.stats.sys_len},
          {"ref_len", s.stats.ref_len}, {"correct", s.stats.correct}, {"total", s.stats.total}};
}

}  // namespace

int main(int argc, char** argv) {
  try {
    LLMS_CHECK(argc == 2, "usage: llms_bleu_tool CASES.json");
    std::ifstream in(argv[1], std::ios::binary);
    LLMS_CHECK(in.good(), "cannot read ", argv[1]);
    std::stringstream ss;
    ss << in.rdbuf();
    json out = json::array();
    for (const auto& c : json::parse(ss.str())) {
      const auto hyps = c.at("hyps").get<std::vector<std::string>>();
      const auto refs = c.at("refs").get<std::vector<std::vector<std::string>>>();
      const json corpus = to_json(train::corpus_bleu(hyps, refs));  // checks the streams' lengths first
      json sentence = json::array(), tokens = json::array();
      for (std::size_t i = 0; i < hyps.size(); ++i) {
        std::vector<std::string> r;
        for (const auto& stream : refs) r.push_back(stream.at(i));
        sentence.push_back(train::sentence_bleu(hyps[i], r).score);
        tokens.push_back(train::tokenize_13a(hyps[i]));
      }
      out.push_back({{"corpus", corpus}, {"sentence", sentence}, {"tokens13a", tokens}});
    }
    // Scores with all 17 significant digits, so that the test compares the doubles themselves.
    std::cout << out.dump() << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
