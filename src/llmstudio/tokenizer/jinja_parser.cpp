// Recursive-descent parser for the Jinja grammar (see jinja_parser.h).
#include "llmstudio/tokenizer/jinja_parser.h"

#include <algorithm>
#include <initializer_list>

namespace llmstudio::tokenizer::jinja {
namespace {

std::string describe(const Token& t) {
  switch (t.type) {
    case TokenType::Data: return "template data";
    case TokenType::BlockBegin: return "begin of statement block";
    case TokenType::BlockEnd: return "end of statement block";
    case TokenType::VarBegin: return "begin of print statement";
    case TokenType::VarEnd: return "end of print statement";
    case TokenType::Eof: return "end of template";
    case TokenType::String: return "string";
    case TokenType::Integer: return "integer";
    case TokenType::Float: return "float";
    default: return t.value;
  }
}

class Parser {
 public:
  Parser(const SourceInfo& src, const std::vector<Token>& toks) : src_(src), t_(toks) {}

  std::vector<StmtPtr> run() {
    std::string found;
    auto body = subparse({}, found);
    return body;
  }

 private:
  const Token& cur() const { return t_[i_]; }
  const Token& peek(std::size_t n = 1) const { return t_[std::min(i_ + n, t_.size() - 1)]; }
  const Token& next() { return t_[i_ < t_.size() - 1 ? i_++ : i_]; }
  bool is_op(const char* op) const { return cur().type == TokenType::Operator && cur().value == op; }
  bool is_name(const char* n) const { return cur().type == TokenType::Name && cur().value == n; }
  bool skip_op(const char* op) {
    if (!is_op(op)) return false;
    next();
    return true;
  }
  bool skip_name(const char* n) {
    if (!is_name(n)) return false;
    next();
    return true;
  }
  [[noreturn]] void fail(const std::string& msg) const { src_.fail(cur().offset, msg); }
  [[noreturn]] void fail_at(std::size_t off, const std::string& msg) const { src_.fail(off, msg); }
  void expect_op(const char* op) {
    if (!skip_op(op)) fail("expected token '" + std::string(op) + "', got '" + describe(cur()) + "'");
  }
  std::string expect_name() {
    if (cur().type != TokenType::Name) fail("expected token 'name', got '" + describe(cur()) + "'");
    return next().value;
  }
  void expect_block_end() {
    if (cur().type != TokenType::BlockEnd) fail("expected token 'end of statement block', got '" + describe(cur()) + "'");
    next();
  }

  static ExprPtr make(ExprKind k, std::size_t off) {
    auto e = std::make_unique<Expr>();
    e->kind = k;
    e->offset = off;
    return e;
  }
  static StmtPtr make_stmt(StmtKind k, std::size_t off) {
    auto s = std::make_unique<Stmt>();
    s->kind = k;
    s->offset = off;
    return s;
  }

  // ---- statements ----

  // Parses until a block tag named in `ends`; leaves the stream after that name and stores it in `found`.
  std::vector<StmtPtr> subparse(std::initializer_list<const char*> ends, std::string& found,
                                const char* opener = nullptr, std::size_t opener_off = 0) {
    std::vector<StmtPtr> body;
    while (true) {
      const Token& tok = cur();
      if (tok.type == TokenType::Data) {
        auto s = make_stmt(StmtKind::Text, tok.offset);
        s->text = tok.value;
        body.push_back(std::move(s));
        next();
      } else if (tok.type == TokenType::VarBegin) {
        next();
        auto s = make_stmt(StmtKind::Output, tok.offset);
        s->expr = parse_tuple(true, false);
        if (cur().type != TokenType::VarEnd)
          fail("expected token 'end of print statement', got '" + describe(cur()) + "'");
        next();
        body.push_back(std::move(s));
      } else if (tok.type == TokenType::BlockBegin) {
        const Token& name = peek();
        if (name.type == TokenType::Name) {
          for (const char* e : ends) {
            if (name.value == e) {
              next();
              next();
              found = e;
              return body;
            }
          }
        }
        next();
        body.push_back(parse_statement(tok.offset));
      } else if (tok.type == TokenType::Eof) {
        if (ends.size() == 0) return body;
        std::string want;
        for (const char* e : ends) want += (want.empty() ? "'" : " or '") + std::string(e) + "'";
        fail_at(opener_off, std::string("unexpected end of template: Jinja was looking for ") + want +
                                ", the innermost block that needs to be closed is '" + (opener ? opener : "?") + "'");
      } else {
        fail("unexpected '" + describe(tok) + "'");
      }
    }
  }

  StmtPtr parse_statement(std::size_t off) {
    if (cur().type != TokenType::Name) fail("tag name expected");
    std::string tag = cur().value;
    std::size_t tag_off = cur().offset;
    next();
    if (tag == "for") return parse_for(off);
    if (tag == "if") return parse_if(off);
    if (tag == "set") return parse_set(off);
    if (tag == "macro") return parse_macro(off);
    if (tag == "call") return parse_call_block(off);
    if (tag == "filter") return parse_filter_block(off);
    if (tag == "with") return parse_with(off);
    if (tag == "generation") {
      expect_block_end();
      auto s = make_stmt(StmtKind::Scope, off);
      std::string found;
      s->body = subparse({"endgeneration"}, found, "generation", off);
      expect_block_end();
      return s;
    }
    if (tag == "break" || tag == "continue") {
      if (loop_depth_ == 0) fail_at(tag_off, "'" + tag + "' outside of a loop");
      expect_block_end();
      return make_stmt(tag == "break" ? StmtKind::Break : StmtKind::Continue, off);
    }
    if (tag == "extends" || tag == "include" || tag == "import" || tag == "from" || tag == "block")
      fail_at(tag_off, "'" + tag + "' is not supported in chat templates (no template loader)");
    fail_at(tag_off, "Encountered unknown tag '" + tag + "'.");
  }

  StmtPtr parse_for(std::size_t off) {
    auto s = make_stmt(StmtKind::For, off);
    s->target = parse_assign_target(false, "in");
    if (!skip_name("in")) fail("expected 'in' in for loop, got '" + describe(cur()) + "'");
    s->expr = parse_tuple(false, false, "recursive");
    if (skip_name("if")) s->cond = parse_expression(true);
    if (is_name("recursive")) fail("recursive loops are not supported");
    expect_block_end();
    std::string found;
    ++loop_depth_;
    s->body = subparse({"endfor", "else"}, found, "for", off);
    --loop_depth_;
    if (found == "else") {
      expect_block_end();
      s->else_body = subparse({"endfor"}, found, "for", off);
    }
    expect_block_end();
    return s;
  }

  StmtPtr parse_if(std::size_t off) {
    auto s = make_stmt(StmtKind::If, off);
    s->expr = parse_tuple(false, false);
    expect_block_end();
    std::string found;
    s->body = subparse({"elif", "else", "endif"}, found, "if", off);
    if (found == "elif") {
      s->else_body.push_back(parse_if(t_[i_ - 2].offset));  // the nested if consumes the shared endif
      return s;
    }
    if (found == "else") {
      expect_block_end();
      s->else_body = subparse({"endif"}, found, "if", off);
    }
    expect_block_end();
    return s;
  }

  StmtPtr parse_set(std::size_t off) {
    ExprPtr target = parse_assign_target(true, nullptr);
    if (skip_op("=")) {
      auto s = make_stmt(StmtKind::Set, off);
      s->target = std::move(target);
      s->expr = parse_tuple(true, false);
      expect_block_end();
      return s;
    }
    auto s = make_stmt(StmtKind::SetBlock, off);
    if (target->kind != ExprKind::Name) fail_at(target->offset, "block assignment needs a plain variable name");
    s->target = std::move(target);
    if (is_op("|")) s->expr = parse_filter_chain(nullptr);
    expect_block_end();
    std::string found;
    s->body = subparse({"endset"}, found, "set", off);
    expect_block_end();
    return s;
  }

  void parse_signature(Stmt& s) {
    expect_op("(");
    while (!is_op(")")) {
      if (!s.params.empty()) expect_op(",");
      if (is_op(")")) break;
      s.params.push_back(expect_name());
      if (skip_op("=")) {
        s.defaults.push_back(parse_expression(true));
      } else if (!s.defaults.empty()) {
        fail("non-default argument follows default argument");
      }
    }
    expect_op(")");
  }

  StmtPtr parse_macro(std::size_t off) {
    auto s = make_stmt(StmtKind::Macro, off);
    s->name = expect_name();
    parse_signature(*s);
    expect_block_end();
    std::string found;
    int saved = loop_depth_;
    loop_depth_ = 0;
    s->body = subparse({"endmacro"}, found, "macro", off);
    loop_depth_ = saved;
    expect_block_end();
    return s;
  }

  StmtPtr parse_call_block(std::size_t off) {
    auto s = make_stmt(StmtKind::CallBlock, off);
    if (is_op("(")) parse_signature(*s);
    s->expr = parse_expression(true);
    if (s->expr->kind != ExprKind::Call) fail_at(s->expr->offset, "expected call");
    expect_block_end();
    std::string found;
    s->body = subparse({"endcall"}, found, "call", off);
    expect_block_end();
    return s;
  }

  StmtPtr parse_filter_block(std::size_t off) {
    auto s = make_stmt(StmtKind::FilterBlock, off);
    s->expr = parse_filter_chain(nullptr, true);
    expect_block_end();
    std::string found;
    s->body = subparse({"endfilter"}, found, "filter", off);
    expect_block_end();
    return s;
  }

  StmtPtr parse_with(std::size_t off) {
    auto s = make_stmt(StmtKind::With, off);
    while (cur().type != TokenType::BlockEnd) {
      if (!s->params.empty()) expect_op(",");
      s->params.push_back(expect_name());
      expect_op("=");
      s->defaults.push_back(parse_expression(true));
    }
    expect_block_end();
    std::string found;
    s->body = subparse({"endwith"}, found, "with", off);
    expect_block_end();
    return s;
  }

  // Name, `ns.attr` (with_namespace) or a tuple of names, up to `extra_end` (e.g. "in").
  ExprPtr parse_assign_target(bool with_namespace, const char* extra_end) {
    std::size_t off = cur().offset;
    if (with_namespace && cur().type == TokenType::Name && peek().type == TokenType::Operator && peek().value == ".") {
      auto ns = make(ExprKind::Name, off);
      ns->name = next().value;
      next();
      auto e = make(ExprKind::GetAttr, off);
      e->name = expect_name();
      e->children.push_back(std::move(ns));
      return e;
    }
    std::vector<ExprPtr> names;
    bool is_tuple = false;
    bool paren = skip_op("(");
    while (true) {
      if (!names.empty()) expect_op(",");
      if (paren ? is_op(")") : (cur().type == TokenType::BlockEnd || is_op("=") || (extra_end && is_name(extra_end))))
        break;
      auto n = make(ExprKind::Name, cur().offset);
      n->name = expect_name();
      if (n->name == "true" || n->name == "false" || n->name == "none" || n->name == "True" || n->name == "False" ||
          n->name == "None" || n->name == "loop")
        fail_at(n->offset, "can't assign to '" + n->name + "'");
      names.push_back(std::move(n));
      if (is_op(",")) is_tuple = true;
      else break;
    }
    if (paren) expect_op(")");
    if (names.empty()) fail("expected an assignment target, got '" + describe(cur()) + "'");
    if (!is_tuple && !paren) return std::move(names[0]);
    if (!is_tuple && names.size() == 1) return std::move(names[0]);
    auto t = make(ExprKind::Tuple, off);
    t->children = std::move(names);
    return t;
  }

  // ---- expressions ----

  bool is_tuple_end(const char* extra_end) const {
    const Token& c = cur();
    if (c.type == TokenType::VarEnd || c.type == TokenType::BlockEnd || (c.type == TokenType::Operator && c.value == ")"))
      return true;
    return extra_end && c.type == TokenType::Name && c.value == extra_end;
  }

  ExprPtr parse_tuple(bool with_condexpr, bool explicit_parens, const char* extra_end = nullptr) {
    std::size_t off = cur().offset;
    std::vector<ExprPtr> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) expect_op(",");
      if (is_tuple_end(extra_end)) break;
      items.push_back(parse_expression(with_condexpr));
      if (is_op(",")) is_tuple = true;
      else break;
    }
    if (!is_tuple) {
      if (!items.empty()) return std::move(items[0]);
      if (!explicit_parens) fail("Expected an expression, got '" + describe(cur()) + "'");
    }
    auto t = make(ExprKind::Tuple, off);
    t->children = std::move(items);
    return t;
  }

  ExprPtr parse_expression(bool with_condexpr) { return with_condexpr ? parse_condexpr() : parse_or(); }

  ExprPtr parse_condexpr() {
    std::size_t off = cur().offset;
    ExprPtr e1 = parse_or();
    while (skip_name("if")) {
      ExprPtr test = parse_or();
      ExprPtr e3;
      if (skip_name("else")) e3 = parse_condexpr();
      auto c = make(ExprKind::CondExpr, off);
      c->children.push_back(std::move(e1));
      c->children.push_back(std::move(test));
      c->children.push_back(std::move(e3));
      e1 = std::move(c);
      off = cur().offset;
    }
    return e1;
  }

  ExprPtr binary(ExprKind k, ExprPtr l, ExprPtr r, std::size_t off, std::string op = "") {
    auto e = make(k, off);
    e->name = std::move(op);
    e->children.push_back(std::move(l));
    e->children.push_back(std::move(r));
    return e;
  }

  ExprPtr parse_or() {
    ExprPtr l = parse_and();
    while (is_name("or")) {
      std::size_t off = next().offset;
      l = binary(ExprKind::Or, std::move(l), parse_and(), off);
    }
    return l;
  }

  ExprPtr parse_and() {
    ExprPtr l = parse_not();
    while (is_name("and")) {
      std::size_t off = next().offset;
      l = binary(ExprKind::And, std::move(l), parse_not(), off);
    }
    return l;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      std::size_t off = next().offset;
      auto e = make(ExprKind::Not, off);
      e->children.push_back(parse_not());
      return e;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    std::size_t off = cur().offset;
    ExprPtr first = parse_math1();
    std::vector<std::string> ops;
    std::vector<ExprPtr> operands;
    while (true) {
      const Token& c = cur();
      if (c.type == TokenType::Operator &&
          (c.value == "==" || c.value == "!=" || c.value == "<" || c.value == "<=" || c.value == ">" || c.value == ">=")) {
        ops.push_back(next().value);
      } else if (is_name("in")) {
        next();
        ops.push_back("in");
      } else if (is_name("not") && peek().type == TokenType::Name && peek().value == "in") {
        next();
        next();
        ops.push_back("notin");
      } else {
        break;
      }
      operands.push_back(parse_math1());
    }
    if (ops.empty()) return first;
    auto e = make(ExprKind::Compare, off);
    e->children.push_back(std::move(first));
    for (auto& o : operands) e->children.push_back(std::move(o));
    e->ops = std::move(ops);
    return e;
  }

  ExprPtr parse_math1() {
    ExprPtr l = parse_concat();
    while (is_op("+") || is_op("-")) {
      const Token& op = next();
      l = binary(ExprKind::Binary, std::move(l), parse_concat(), op.offset, op.value);
    }
    return l;
  }

  ExprPtr parse_concat() {
    std::size_t off = cur().offset;
    ExprPtr first = parse_math2();
    if (!is_op("~")) return first;
    auto e = make(ExprKind::Concat, off);
    e->children.push_back(std::move(first));
    while (skip_op("~")) e->children.push_back(parse_math2());
    return e;
  }

  ExprPtr parse_math2() {
    ExprPtr l = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const Token& op = next();
      l = binary(ExprKind::Binary, std::move(l), parse_pow(), op.offset, op.value);
    }
    return l;
  }

  ExprPtr parse_pow() {
    ExprPtr l = parse_unary(true);
    while (is_op("**")) {
      const Token& op = next();
      l = binary(ExprKind::Binary, std::move(l), parse_unary(true), op.offset, op.value);
    }
    return l;
  }

  ExprPtr parse_unary(bool with_filter) {
    ExprPtr node;
    if (is_op("-") || is_op("+")) {
      const Token& op = next();
      node = make(op.value == "-" ? ExprKind::Neg : ExprKind::Pos, op.offset);
      node->children.push_back(parse_unary(false));
    } else {
      node = parse_primary();
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
  }

  ExprPtr parse_primary() {
    const Token& tok = cur();
    ExprPtr node;
    switch (tok.type) {
      case TokenType::Name: {
        const std::string& v = tok.value;
        if (v == "true" || v == "True" || v == "false" || v == "False") {
          node = make(ExprKind::Const, tok.offset);
          node->value = Value(v == "true" || v == "True");
        } else if (v == "none" || v == "None") {
          node = make(ExprKind::Const, tok.offset);
          node->value = Value::none();
        } else {
          node = make(ExprKind::Name, tok.offset);
          node->name = v;
        }
        next();
        return node;
      }
      case TokenType::String: {
        node = make(ExprKind::Const, tok.offset);
        std::string s;
        while (cur().type == TokenType::String) s += next().value;
        node->value = Value(std::move(s));
        return node;
      }
      case TokenType::Integer:
        node = make(ExprKind::Const, tok.offset);
        node->value = Value(tok.int_value);
        next();
        return node;
      case TokenType::Float:
        node = make(ExprKind::Const, tok.offset);
        node->value = Value(tok.float_value);
        next();
        return node;
      case TokenType::Operator:
        if (tok.value == "(") {
          next();
          node = parse_tuple(true, true);
          expect_op(")");
          return node;
        }
        if (tok.value == "[") return parse_list();
        if (tok.value == "{") return parse_dict();
        break;
      default: break;
    }
    fail("unexpected '" + describe(tok) + "'");
  }

  ExprPtr parse_list() {
    auto e = make(ExprKind::List, next().offset);
    while (!is_op("]")) {
      if (!e->children.empty()) expect_op(",");
      if (is_op("]")) break;
      e->children.push_back(parse_expression(true));
    }
    expect_op("]");
    return e;
  }

  ExprPtr parse_dict() {
    auto e = make(ExprKind::Dict, next().offset);
    while (!is_op("}")) {
      if (!e->children.empty()) expect_op(",");
      if (is_op("}")) break;
      e->children.push_back(parse_expression(true));
      expect_op(":");
      e->children.push_back(parse_expression(true));
    }
    expect_op("}");
    return e;
  }

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      if (is_op(".") || is_op("[")) {
        node = parse_subscript(std::move(node));
      } else if (is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_filter_expr(ExprPtr node) {
    while (true) {
      if (is_op("|")) {
        node = parse_filter_chain(std::move(node));
      } else if (is_name("is")) {
        node = parse_test(std::move(node));
      } else if (is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr node) {
    const Token& tok = next();
    if (tok.value == ".") {
      const Token& attr = cur();
      if (attr.type == TokenType::Name) {
        next();
        auto e = make(ExprKind::GetAttr, tok.offset);
        e->name = attr.value;
        e->children.push_back(std::move(node));
        return e;
      }
      if (attr.type != TokenType::Integer) fail("expected name or number");
      next();
      auto key = make(ExprKind::Const, attr.offset);
      key->value = Value(attr.int_value);
      auto e = make(ExprKind::GetItem, tok.offset);
      e->children.push_back(std::move(node));
      e->children.push_back(std::move(key));
      return e;
    }
    std::vector<ExprPtr> args;
    while (!is_op("]")) {
      if (!args.empty()) expect_op(",");
      args.push_back(parse_subscribed());
    }
    expect_op("]");
    auto e = make(ExprKind::GetItem, tok.offset);
    e->children.push_back(std::move(node));
    if (args.size() == 1) {
      e->children.push_back(std::move(args[0]));
    } else {
      auto t = make(ExprKind::Tuple, tok.offset);
      t->children = std::move(args);
      e->children.push_back(std::move(t));
    }
    return e;
  }

  ExprPtr parse_subscribed() {
    std::size_t off = cur().offset;
    std::vector<ExprPtr> parts;
    if (is_op(":")) {
      next();
      parts.push_back(nullptr);
    } else {
      ExprPtr node = parse_expression(true);
      if (!is_op(":")) return node;
      next();
      parts.push_back(std::move(node));
    }
    if (is_op(":") || is_op("]") || is_op(",")) parts.push_back(nullptr);
    else parts.push_back(parse_expression(true));
    if (skip_op(":")) {
      if (is_op("]") || is_op(",")) parts.push_back(nullptr);
      else parts.push_back(parse_expression(true));
    } else {
      parts.push_back(nullptr);
    }
    auto e = make(ExprKind::Slice, off);
    e->children = std::move(parts);
    return e;
  }

  void parse_call_args(Expr& e) {
    expect_op("(");
    bool first = true;
    while (!is_op(")")) {
      if (!first) {
        expect_op(",");
        if (is_op(")")) break;
      }
      first = false;
      if (skip_op("*")) {
        e.dyn_args = parse_expression(true);
      } else if (skip_op("**")) {
        e.dyn_kwargs = parse_expression(true);
      } else if (cur().type == TokenType::Name && peek().type == TokenType::Operator && peek().value == "=") {
        if (e.dyn_kwargs) fail("keyword argument after **kwargs");
        e.kw_names.push_back(next().value);
        next();
        e.kw_values.push_back(parse_expression(true));
      } else {
        if (!e.kw_names.empty() || e.dyn_args || e.dyn_kwargs) fail("positional argument follows keyword argument");
        e.children.push_back(parse_expression(true));
      }
    }
    expect_op(")");
  }

  ExprPtr parse_call(ExprPtr callee) {
    auto e = make(ExprKind::Call, cur().offset);
    e->children.push_back(std::move(callee));
    parse_call_args(*e);
    return e;
  }

  // `| name(args) | name ...`; with start_inline the first filter has no leading pipe ({% filter %}).
  ExprPtr parse_filter_chain(ExprPtr node, bool start_inline = false) {
    while (is_op("|") || start_inline) {
      if (!start_inline) next();
      start_inline = false;
      std::size_t off = cur().offset;
      std::string name = expect_name();
      while (skip_op(".")) name += "." + expect_name();
      auto e = make(ExprKind::Filter, off);
      e->name = name;
      e->children.push_back(std::move(node));
      if (is_op("(")) parse_call_args(*e);
      node = std::move(e);
    }
    return node;
  }

  ExprPtr parse_test(ExprPtr node) {
    next();  // 'is'
    auto e = make(ExprKind::Test, cur().offset);
    if (skip_name("not")) e->negated = true;
    e->name = expect_name();
    while (skip_op(".")) e->name += "." + expect_name();
    e->children.push_back(std::move(node));
    const Token& c = cur();
    if (is_op("(")) {
      parse_call_args(*e);
    } else if ((c.type == TokenType::Name || c.type == TokenType::String || c.type == TokenType::Integer ||
                c.type == TokenType::Float || is_op("[") || is_op("{")) &&
               !(is_name("else") || is_name("or") || is_name("and"))) {
      if (is_name("is")) fail("You cannot chain multiple tests with is");
      e->children.push_back(parse_postfix(parse_primary()));
    }
    return e;
  }

  const SourceInfo& src_;
  const std::vector<Token>& t_;
  std::size_t i_ = 0;
  int loop_depth_ = 0;
};

}  // namespace

std::vector<StmtPtr> parse(const SourceInfo& src, const std::vector<Token>& tokens) {
  return Parser(src, tokens).run();
}

}  // namespace llmstudio::tokenizer::jinja
