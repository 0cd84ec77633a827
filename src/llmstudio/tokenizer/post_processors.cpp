// Post-processor implementations and their JSON factory (see post_processors.h).
#include "llmstudio/tokenizer/post_processors.h"

#include "llmstudio/io/json_text.h"
#include "llmstudio/tokenizer/json_util.h"

namespace llmstudio::tokenizer {
namespace {

using json_util::json;

class NoopPostProcessor : public PostProcessor {
 public:
  void process(std::vector<int32_t>&) const override {}
};

// A list of items: literal ids (special tokens) or the sequence itself (marked by an empty optional).
class TemplatePostProcessor : public PostProcessor {
 public:
  struct Item {
    bool is_sequence = false;
    std::vector<int32_t> ids;
  };
  explicit TemplatePostProcessor(std::vector<Item> items) : items_(std::move(items)) {}
  void process(std::vector<int32_t>& ids) const override {
    std::vector<int32_t> out;
    out.reserve(ids.size() + items_.size());
    for (const auto& item : items_) {
      if (item.is_sequence)
        out.insert(out.end(), ids.begin(), ids.end());
      else
        out.insert(out.end(), item.ids.begin(), item.ids.end());
    }
    ids = std::move(out);
  }

 private:
  std::vector<Item> items_;
};

class SequencePostProcessor : public PostProcessor {
 public:
  explicit SequencePostProcessor(std::vector<std::unique_ptr<PostProcessor>> parts) : parts_(std::move(parts)) {}
  void process(std::vector<int32_t>& ids) const override {
    for (const auto& p : parts_) p->process(ids);
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> parts_;
};

std::unique_ptr<PostProcessor> make_template(const json& j, const std::string& where) {
  const json& single = json_util::require(j, "single", where);
  const json& special = j.contains("special_tokens") ? j["special_tokens"] : json::object();
  LLMS_CHECK(special.is_object(), where, ": \"special_tokens\" must be an object");
  std::vector<TemplatePostProcessor::Item> items;
  auto special_ids = [&](const std::string& name) {
    auto it = special.find(name);
    LLMS_CHECK(it != special.end(), where, ": template uses special token \"", name,
               "\" which is missing from \"special_tokens\"");
    std::vector<int32_t> ids;
    for (const auto& id : json_util::get_array(*it, "ids", where + " special token " + name)) {
      LLMS_CHECK(id.is_number_integer(), where, ": special token \"", name, "\" ids must be integers");
      ids.push_back(id.get<int32_t>());
    }
    return ids;
  };
  if (single.is_string()) {
    // Textual form, e.g. "<s> $A </s>" or "$0"; tokens separated by spaces, "$..." is the sequence.
    const auto& s = single.get_ref<const std::string&>();
    std::size_t i = 0;
    while (i < s.size()) {
      std::size_t e = s.find(' ', i);
      if (e == std::string::npos) e = s.size();
      std::string part = s.substr(i, e - i);
      i = e + 1;
      if (part.empty()) continue;
      if (part[0] == '$') {
        LLMS_CHECK(part == "$" || part == "$A" || part == "$0" || part.rfind("$A:", 0) == 0 ||
                       part.rfind("$0:", 0) == 0 || part.rfind("$:", 0) == 0,
                   where, ": single template piece \"", part, "\" is not the first sequence ($A)");
        items.push_back({true, {}});
      } else {
        items.push_back({false, special_ids(part.substr(0, part.find(':')))});
      }
    }
  } else {
    LLMS_CHECK(single.is_array(), where, ": \"single\" must be an array or a string, found ", single.type_name());
    for (const auto& it : single) {
      if (it.contains("Sequence")) {
        std::string id = json_util::get_string(it["Sequence"], "id", where + " Sequence item");
        LLMS_CHECK(id == "A", where, ": single template must use sequence A, found \"", id, "\"");
        items.push_back({true, {}});
      } else if (it.contains("SpecialToken")) {
        items.push_back({false, special_ids(json_util::get_string(it["SpecialToken"], "id", where))});
      } else {
        fail(where, ": template item must be {\"Sequence\": ...} or {\"SpecialToken\": ...}, found ", io::json_preview(it));
      }
    }
  }
  return std::make_unique<TemplatePostProcessor>(std::move(items));
}

// [token, id] pairs of Roberta/BertProcessing.
int32_t pair_id(const json& j, const char* key, const std::string& where) {
  const json& p = json_util::require(j, key, where);
  LLMS_CHECK(p.is_array() && p.size() == 2 && p[1].is_number_integer(), where, ": \"", key,
             "\" must be [token, id], found ", io::json_preview(p));
  return p[1].get<int32_t>();
}

}  // namespace

std::unique_ptr<PostProcessor> make_post_processor(const json& j, const std::string& file) {
  const std::string where0 = file + ": post_processor";
  std::string type = json_util::component_type(j, where0);
  const std::string where = where0 + " " + type;
  if (type == "TemplateProcessing") return make_template(j, where);
  if (type == "ByteLevel") return std::make_unique<NoopPostProcessor>();
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    std::vector<TemplatePostProcessor::Item> items;
    items.push_back({false, {pair_id(j, "cls", where)}});
    items.push_back({true, {}});
    items.push_back({false, {pair_id(j, "sep", where)}});
    return std::make_unique<TemplatePostProcessor>(std::move(items));
  }
  if (type == "Sequence") {
    std::vector<std::unique_ptr<PostProcessor>> parts;
    for (const auto& p : json_util::get_array(j, "processors", where)) parts.push_back(make_post_processor(p, file));
    return std::make_unique<SequencePostProcessor>(std::move(parts));
  }
  fail(file, ": unsupported post_processor type \"", type,
       "\" (supported: TemplateProcessing, ByteLevel, RobertaProcessing, BertProcessing, Sequence)");
}

}  // namespace llmstudio::tokenizer
