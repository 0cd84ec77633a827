// Unit tests of the Jinja engine (lexer, parser, interpreter) and the chat-template API. Expected strings were
// produced by jinja2 3.1.6 configured as transformers does (transformers.utils.chat_template_utils.
// _compile_jinja_template); the byte-for-byte comparison over real templates lives in
// tests/parity/test_chat_template_parity.py.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "llmstudio/core/error.h"
#include "llmstudio/tokenizer/chat_template.h"
#include "llmstudio/tokenizer/jinja_interpreter.h"
#include "llmstudio/tokenizer/jinja_lexer.h"
#include "llmstudio/tokenizer/jinja_text.h"
#include "shared_fixtures.h"

namespace jj = llmstudio::tokenizer::jinja;
using llmstudio::tokenizer::ChatTemplate;
using llmstudio::tokenizer::ChatTemplateOptions;
using json = nlohmann::ordered_json;

namespace {

std::string render(const std::string& src, const json& vars = json::object()) {
  jj::Dict ctx;
  for (auto it = vars.begin(); it != vars.end(); ++it) ctx.set(jj::Value(it.key()), jj::from_json(it.value()));
  return jj::Template(src).render(ctx);
}

// The message of the llmstudio::Error that rendering `src` throws ("" if it renders).
std::string error_of(const std::string& src, const json& vars = json::object()) {
  try {
    render(src, vars);
  } catch (const llmstudio::Error& e) {
    return e.what();
  }
  return "";
}

std::vector<jj::Token> lex(const std::string& src) {
  jj::SourceInfo info(jj::normalize_source(src, {}));
  return jj::tokenize(info, {});
}

}  // namespace

TEST(JinjaLexer, SplitsDataAndExpressionTokens) {
  auto toks = lex("Hi {{ a.b[1] | f(2, k='x') }}!");
  std::vector<std::pair<jj::TokenType, std::string>> want = {
      {jj::TokenType::Data, "Hi "},   {jj::TokenType::VarBegin, "{{"}, {jj::TokenType::Name, "a"},
      {jj::TokenType::Operator, "."}, {jj::TokenType::Name, "b"},      {jj::TokenType::Operator, "["},
      {jj::TokenType::Integer, "1"},  {jj::TokenType::Operator, "]"},  {jj::TokenType::Operator, "|"},
      {jj::TokenType::Name, "f"},     {jj::TokenType::Operator, "("},  {jj::TokenType::Integer, "2"},
      {jj::TokenType::Operator, ","}, {jj::TokenType::Name, "k"},      {jj::TokenType::Operator, "="},
      {jj::TokenType::String, "x"},   {jj::TokenType::Operator, ")"},  {jj::TokenType::VarEnd, "}}"},
      {jj::TokenType::Data, "!"},     {jj::TokenType::Eof, ""}};
  ASSERT_EQ(toks.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(toks[i].type, want[i].first) << i;
    EXPECT_EQ(toks[i].value, want[i].second) << i;
  }
}

TEST(JinjaLexer, NumbersAndStringEscapes) {
  // Python/jinja2 literal rules: underscores, hex, exponent floats; unicode-escape decoding keeps unknown escapes.
  EXPECT_EQ(render("{{ 'x\\ny' }}|{{ '\\u00e9\\d' }}|{{ 1_000 + 0x1F }}|{{ 1e3 }}|{{ 2.50 }}"), "x\ny|é\\d|1031|1000.0|2.5");
  auto toks = lex("{{ 0b101 }}{{ 1.5e-3 }}");
  EXPECT_EQ(toks[1].int_value, 5);
  EXPECT_DOUBLE_EQ(toks[4].float_value, 0.0015);
}

TEST(JinjaLexer, NormalisesNewlinesAndDropsOneTrailingNewline) {
  EXPECT_EQ(render("a\r\nb\rc\n\n"), "a\nb\nc\n");
}

TEST(JinjaLexer, TrimBlocksAndLstripBlocks) {
  // transformers renders with trim_blocks=True, lstrip_blocks=True.
  EXPECT_EQ(render("  {% if true %}\nX\n  {% endif %}\nY\n"), "X\nY");
  EXPECT_EQ(render("a  {%- if true -%}  b  {%- endif -%}  c"), "abc");
  EXPECT_EQ(render("  {%+ if true %}x{% endif +%}\ny"), "  x\ny");  // + opts out of both
  EXPECT_EQ(render("  {{ 'v' }}\n"), "  v");                          // lstrip_blocks leaves {{ }} alone
}

TEST(JinjaLexer, CommentsAndRaw) {
  EXPECT_EQ(render("a {# c #} b{#- x -#} c {% raw %}{{ x }}{% endraw %}"), "a  bc {{ x }}");
}

TEST(JinjaParser, OperatorPrecedence) {
  // ** > * > ~ > +; filters bind tighter than unary minus' operand; `not` wraps the test.
  EXPECT_EQ(render("{{ 1 + 2 * 3 ** 2 }}|{{ 'a' ~ 2 * 3 }}|{{ -2 | abs }}|{{ not x is defined }}|{{ 'y' if x else 'n' }}"),
            "19|a6|2|True|n");
  // `~` binds tighter than `+`, so this is 1 + '23' and fails like in Python.
  EXPECT_NE(error_of("{{ 1 + 2 ~ 3 }}").find("unsupported operand type(s) for +: 'int' and 'str'"), std::string::npos);
}

TEST(JinjaParser, SyntaxErrorsCarryLineAndColumn) {
  std::string e = error_of("{% for x in %}{% endfor %}");
  EXPECT_NE(e.find("Expected an expression, got 'end of statement block'"), std::string::npos) << e;
  EXPECT_NE(e.find("template line 1, column 13"), std::string::npos) << e;

  e = error_of("line1\n{% if x %}\nno end");
  EXPECT_NE(e.find("unexpected end of template"), std::string::npos) << e;
  EXPECT_NE(e.find("'endif'"), std::string::npos) << e;
  EXPECT_NE(e.find("template line 2, column 1"), std::string::npos) << e;
  EXPECT_NE(e.find("\n  {% if x %}\n  ^"), std::string::npos) << e;  // snippet with caret

  e = error_of("{{ a $ b }}");
  EXPECT_NE(e.find("unexpected char '$'"), std::string::npos) << e;
  EXPECT_NE(e.find("column 6"), std::string::npos) << e;

  e = error_of("ok\n  {% frobnicate %}");
  EXPECT_NE(e.find("Encountered unknown tag 'frobnicate'"), std::string::npos) << e;
  EXPECT_NE(e.find("template line 2, column 6"), std::string::npos) << e;

  EXPECT_NE(error_of("{% break %}").find("outside of a loop"), std::string::npos);
  EXPECT_NE(error_of("{{ x is defined if y else 'g' }}").find("expected token 'end of print statement'"),
            std::string::npos);  // jinja2 reads `if` as the test's argument here too
}

TEST(JinjaInterpreter, ForLoopVariablesFilterElseAndUnpacking) {
  json vars = {{"pairs", json::array({json::array({"a", 1}), json::array({"b", 0}), json::array({"c", 2})})}};
  // The loop filter runs before `loop` exists, so loop.index/last count the kept items only.
  EXPECT_EQ(render("{% for a, b in pairs if b %}{{ loop.index }}{{ a }}{{ b }}{% if loop.last %}.{% endif %}"
                   "{% else %}E{% endfor %}",
                   vars),
            "1a12c2.");
  EXPECT_EQ(render("{% for x in [] %}x{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(render("{% for x in [1, 2, 3] %}{{ loop.revindex0 }}{{ loop.previtem | default('-') }}{% endfor %}"),
            "2-1102");
}

TEST(JinjaInterpreter, LoopScopeDoesNotLeakButNamespaceDoes) {
  EXPECT_EQ(render("{% set x = 1 %}{% for i in [1,2] %}{% set x = x + i %}{{ x }}{% endfor %}{{ x }}"), "231");
  EXPECT_EQ(render("{% set ns = namespace(t=0) %}{% for i in [1,2,3] %}{% set ns.t = ns.t + i %}"
                   "{% if i == 2 %}{% break %}{% endif %}{% endfor %}{{ ns.t }}"),
            "3");
  EXPECT_EQ(render("{% if true %}{% set y = 'if-blocks share the scope' %}{% endif %}{{ y }}"),
            "if-blocks share the scope");
  EXPECT_NE(error_of("{% set d = {} %}{% set d.x = 1 %}").find("cannot assign attribute on non-namespace object"),
            std::string::npos);
  EXPECT_NE(error_of("{% set ns = namespace() %}{% set ns._x = 1 %}").find("underscore-prefixed"), std::string::npos);
}

TEST(JinjaInterpreter, MacrosAndCallBlocks) {
  EXPECT_EQ(render("{% macro m(a, b='B') %}{{ a }}{{ b }}{{ caller() if caller is defined else '' }}{% endmacro %}"
                   "{{ m(1) }}|{% call m(2, 3) %}C{% endcall %}"),
            "1B|23C");
}

TEST(JinjaInterpreter, UndefinedSemantics) {
  EXPECT_EQ(render("[{{ nope }}][{{ nope is defined }}][{{ d.missing }}][{{ nope | default('D') }}]",
                   {{"d", json::object()}}),
            "[][False][][D]");
  std::string e = error_of("ab\n {{ x.y }}");
  EXPECT_NE(e.find("'x' is undefined"), std::string::npos) << e;
  EXPECT_NE(e.find("template line 2, column 6"), std::string::npos) << e;
  e = error_of("{{ messages[0].role }}", {{"messages", json::array()}});
  EXPECT_NE(e.find("'list object' has no element 0"), std::string::npos) << e;
  EXPECT_NE(error_of("{% for x in 5 %}{% endfor %}").find("'int' object is not iterable"), std::string::npos);
}

TEST(JinjaInterpreter, SlicesAndMethods) {
  json vars = {{"s", "héllo"}, {"l", {1, 2, 3, 4}}};
  EXPECT_EQ(render("{{ s[::-1] }}|{{ s[1:3] }}|{{ l[1:] }}|{{ l[-1] }}|{{ l[::2] }}|{{ s.upper() }}|{{ ' a b '.split() }}",
                   vars),
            "olléh|él|[2, 3, 4]|4|[1, 3]|HÉLLO|['a', 'b']");
  EXPECT_NE(error_of("{% set l = [] %}{{ l.append(1) }}").find("unsafe"), std::string::npos);
}

TEST(JinjaInterpreter, TojsonMatchesTransformersJsonDumps) {
  json vars = {{"d", {{"z", "é"}, {"a", {1, 2.0, nullptr}}}}};
  EXPECT_EQ(render("{{ d | tojson }}|{{ d | tojson(indent=2) }}|{{ d | tojson(sort_keys=true) }}", vars),
            "{\"z\": \"é\", \"a\": [1, 2.0, null]}|{\n  \"z\": \"é\",\n  \"a\": [\n    1,\n    2.0,\n    null\n  ]\n}|"
            "{\"a\": [1, 2.0, null], \"z\": \"é\"}");
}

TEST(JinjaInterpreter, RaiseExceptionReportsTheTemplatesMessage) {
  std::string e = error_of("{% if true %}\n  {{ raise_exception('roles must alternate') }}{% endif %}");
  EXPECT_NE(e.find("raise_exception: roles must alternate"), std::string::npos) << e;
  EXPECT_NE(e.find("template line 2"), std::string::npos) << e;
}

TEST(JinjaText, PythonReprAndFloatRepr) {
  EXPECT_EQ(jj::text::py_repr("it's"), "\"it's\"");
  EXPECT_EQ(jj::text::py_repr("a\n\x01"), "'a\\n\\x01'");
  EXPECT_EQ(jj::text::float_repr(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(jj::text::float_repr(1e16), "1e+16");
  EXPECT_EQ(jj::text::float_repr(1e-5), "1e-05");
  EXPECT_EQ(jj::text::float_repr(123456.0), "123456.0");
  EXPECT_EQ(jj::text::float_repr(-0.0001), "-0.0001");
}

TEST(ChatTemplate, NormalisesMessagesLikeApplyChatTemplate) {
  // transformers drops null-valued keys and aliases reasoning to both `thinking` and `reasoning_content`.
  ChatTemplate t(
      "{{ messages[0].content is defined }}{{ 'content' in messages[0] }}{{ messages[0].reasoning_content }}"
      "{{ messages[0] | tojson }}");
  json msgs = json::array({{{"role", "assistant"}, {"thinking", "T"}, {"content", nullptr}, {"tool_calls", {1}}}});
  EXPECT_EQ(t.render(msgs, {}),
            "FalseFalseT{\"thinking\": \"T\", \"role\": \"assistant\", \"tool_calls\": [1], \"reasoning_content\": \"T\"}");
}

TEST(ChatTemplate, PassesGenerationPromptSpecialTokensAndExtras) {
  ChatTemplate t("{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}{{ eos_token }}{% endfor %}"
                 "{% if add_generation_prompt %}<assistant>{% endif %}{{ tools is none }}{{ flag }}");
  ChatTemplateOptions o;
  o.bos_token = "<s>";
  o.eos_token = "</s>";
  o.add_generation_prompt = true;
  o.extra = {{"flag", 7}};
  EXPECT_EQ(t.render(std::vector<llmstudio::tokenizer::ChatMessage>{{"user", "hi"}}, o), "<s><user>hi</s><assistant>True7");
}

TEST(ChatTemplate, LoadsTemplateAndSpecialTokensFromTokenizerFolder) {
  auto dir = std::filesystem::temp_directory_path() / ("llms_chat_tpl_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  {
    std::ofstream(dir / "tokenizer_config.json")
        << R"({"bos_token": {"content": "<s>", "lstrip": false}, "eos_token": "</s>", "pad_token": null,
              "chat_template": [{"name": "default", "template": "D{{ bos_token }}"},
                                {"name": "tool_use", "template": "T"}]})";
  }
  auto cfg = llmstudio::tokenizer::load_chat_template_config(dir);
  EXPECT_EQ(cfg.chat_template, "D{{ bos_token }}");
  EXPECT_EQ(cfg.bos_token().value_or(""), "<s>");
  EXPECT_EQ(cfg.eos_token().value_or(""), "</s>");
  EXPECT_FALSE(cfg.special_tokens.contains("pad_token"));
  EXPECT_EQ(llmstudio::tokenizer::load_chat_template_config(dir, "tool_use").chat_template, "T");
  try {
    llmstudio::tokenizer::load_chat_template_config(dir, "nope");
    ADD_FAILURE() << "expected an error";
  } catch (const llmstudio::Error& e) {
    EXPECT_NE(std::string(e.what()).find("available: default, tool_use"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

TEST(ChatTemplate, Llama3FixtureRendersLikeTransformers) {
  std::filesystem::path dir = llms_test::shared_fixtures_dir() / "tokenizers" / "llama3";
  LLMS_SHARED_FIXTURE_OR_SKIP(dir / "tokenizer_config.json");
  auto cfg = llmstudio::tokenizer::load_chat_template_config(dir);
  ChatTemplateOptions o = cfg.options();
  o.add_generation_prompt = true;
  // transformers: AutoTokenizer.from_pretrained(dir).apply_chat_template([...], tokenize=False, add_generation_prompt=True)
  EXPECT_EQ(ChatTemplate(cfg.chat_template).render(json::array({{{"role", "user"}, {"content", "hi"}}}), o),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}
