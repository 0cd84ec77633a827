// Jinja parser: the abstract syntax tree of a template and the recursive-descent parser that builds it from lexer
// tokens with jinja2's grammar and operator precedence (condexpr < or < and < not < compare < +,- < ~ < *,/,//,% <
// ** < unary < postfix/filters/tests). Statements: for (filter, else, tuple targets), if/elif/else, set (plain,
// tuple, namespace attribute, block), macro, call, filter, with, break/continue, generation.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "llmstudio/tokenizer/jinja_lexer.h"
#include "llmstudio/tokenizer/jinja_value.h"

namespace llmstudio::tokenizer::jinja {

enum class ExprKind {
  Const,     // value
  Name,      // name
  List,      // children = items
  Tuple,     // children = items
  Dict,      // children = k0, v0, k1, v1, ...
  GetAttr,   // children = [object], name = attribute
  GetItem,   // children = [object, key]
  Slice,     // children = [start, stop, step], each may be null
  Call,      // children = [callee, positional...], kw_names/kw_values, dyn_args/dyn_kwargs
  Filter,    // children = [subject (null inside {% filter %}), positional...], name, kw_*
  Test,      // children = [subject, positional...], name, kw_*, negated
  Not,       // children = [operand]
  Neg,       // children = [operand]
  Pos,       // children = [operand]
  Binary,    // children = [left, right], name = + - * / // % **
  And,       // children = [left, right]
  Or,        // children = [left, right]
  Concat,    // children = operands of ~
  Compare,   // children = [first, operand...], ops = == != < <= > >= in notin
  CondExpr,  // children = [then, test, else (may be null)]
};

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  ExprKind kind;
  std::size_t offset = 0;  // source offset for error messages
  Value value;
  std::string name;
  std::vector<ExprPtr> children;
  std::vector<std::string> kw_names;
  std::vector<ExprPtr> kw_values;
  std::vector<std::string> ops;
  ExprPtr dyn_args, dyn_kwargs;
  bool negated = false;
};

enum class StmtKind {
  Text,         // text
  Output,       // expr
  For,          // target, expr (iterable), cond (loop filter, may be null), body, else_body
  If,           // expr (test), body, else_body (elif chains nest an If in else_body)
  Set,          // target (Name, Tuple of Names or GetAttr on a namespace), expr
  SetBlock,     // target (Name), body, expr (Filter with null subject, may be null)
  Macro,        // name, params, defaults (aligned to the last params), body
  CallBlock,    // expr (the Call), params/defaults of caller(), body
  FilterBlock,  // expr (Filter chain with null innermost subject), body
  With,         // params (names), defaults (values), body
  Scope,        // body (e.g. transformers' {% generation %})
  Break,
  Continue,
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;

struct Stmt {
  StmtKind kind;
  std::size_t offset = 0;
  std::string text;
  std::string name;
  ExprPtr expr, target, cond;
  std::vector<StmtPtr> body, else_body;
  std::vector<std::string> params;
  std::vector<ExprPtr> defaults;
};

// Parses tokens of `src` into the template body; throws llmstudio::Error with position on syntax errors.
std::vector<StmtPtr> parse(const SourceInfo& src, const std::vector<Token>& tokens);

}  // namespace llmstudio::tokenizer::jinja
