// Tree-walking renderer for parsed Jinja templates (see jinja_interpreter.h).
#include "llmstudio/tokenizer/jinja_interpreter.h"

#include <cmath>
#include <unordered_map>

#include "llmstudio/tokenizer/jinja_filters.h"
#include "llmstudio/tokenizer/jinja_methods.h"
#include "llmstudio/tokenizer/jinja_text.h"

namespace llmstudio::tokenizer::jinja {
namespace {

struct Scope {
  std::unordered_map<std::string, Value> vars;
  std::shared_ptr<Scope> parent;
};
using ScopePtr = std::shared_ptr<Scope>;

ScopePtr child_of(const ScopePtr& parent) {
  auto s = std::make_shared<Scope>();
  s->parent = parent;
  return s;
}

enum class Flow { Normal, Break, Continue };

// The `loop` variable of a for-loop iteration.
struct LoopObject : Object {
  std::shared_ptr<const List> items;
  int64_t index0 = 0;
  int64_t depth = 1;
  std::shared_ptr<Value> last_changed;

  std::string type_name() const override { return "LoopContext"; }
  std::optional<Value> get_attr(const std::string& name) const override {
    auto n = static_cast<int64_t>(items->size());
    if (name == "index") return Value(index0 + 1);
    if (name == "index0") return Value(index0);
    if (name == "revindex") return Value(n - index0);
    if (name == "revindex0") return Value(n - index0 - 1);
    if (name == "first") return Value(index0 == 0);
    if (name == "last") return Value(index0 == n - 1);
    if (name == "length") return Value(n);
    if (name == "depth") return Value(depth);
    if (name == "depth0") return Value(depth - 1);
    if (name == "previtem")
      return index0 > 0 ? (*items)[static_cast<std::size_t>(index0 - 1)]
                        : Value::undefined("there is no previous item");
    if (name == "nextitem")
      return index0 + 1 < n ? (*items)[static_cast<std::size_t>(index0 + 1)] : Value::undefined("there is no next item");
    if (name == "cycle") {
      int64_t i = index0;
      return Value::function([i](CallArgs& a) {
        if (a.positional.empty()) throw RuntimeError("no items for cycling given");
        return a.positional[static_cast<std::size_t>(i % static_cast<int64_t>(a.positional.size()))];
      });
    }
    if (name == "changed") {
      auto last = last_changed;
      return Value::function([last](CallArgs& a) {
        Value v = Value::list(a.positional);
        if (!last->is_undefined() && *last == v) return Value(false);
        *last = v;
        return Value(true);
      });
    }
    return std::nullopt;
  }
};

Value arithmetic(const std::string& op, const Value& a, const Value& b) {
  if (a.is_undefined()) a.fail_undefined();
  if (b.is_undefined()) b.fail_undefined();
  auto unsupported = [&]() -> Value {
    throw RuntimeError("unsupported operand type(s) for " + op + ": '" + a.type_name() + "' and '" + b.type_name() + "'");
  };
  bool num = a.is_number() && b.is_number();
  bool flt = num && (a.is_float() || b.is_float());
  if (op == "+") {
    if (num) return flt ? Value(a.as_double() + b.as_double()) : Value(a.as_int() + b.as_int());
    if (a.is_string() && b.is_string()) return Value(a.as_string() + b.as_string());
    if ((a.is_list() && b.is_list()) || (a.is_tuple() && b.is_tuple())) {
      List l = a.as_list();
      l.insert(l.end(), b.as_list().begin(), b.as_list().end());
      return a.is_tuple() ? Value::tuple(std::move(l)) : Value::list(std::move(l));
    }
    if (a.is_string()) throw RuntimeError("can only concatenate str (not \"" + b.type_name() + "\") to str");
    if (a.is_list()) throw RuntimeError("can only concatenate list (not \"" + b.type_name() + "\") to list");
    return unsupported();
  }
  if (op == "-") {
    if (!num) return unsupported();
    return flt ? Value(a.as_double() - b.as_double()) : Value(a.as_int() - b.as_int());
  }
  if (op == "*") {
    if (num) return flt ? Value(a.as_double() * b.as_double()) : Value(a.as_int() * b.as_int());
    const Value* seq = (a.is_string() || a.is_sequence()) ? &a : (b.is_string() || b.is_sequence()) ? &b : nullptr;
    const Value* n = seq == &a ? &b : &a;
    if (!seq || !(n->is_int() || n->is_bool())) {
      if (seq) throw RuntimeError("can't multiply sequence by non-int of type '" + n->type_name() + "'");
      return unsupported();
    }
    int64_t times = std::max<int64_t>(n->as_int(), 0);
    if (seq->is_string()) {
      std::string out;
      for (int64_t i = 0; i < times; ++i) out += seq->as_string();
      return Value(out);
    }
    List l;
    for (int64_t i = 0; i < times; ++i) l.insert(l.end(), seq->as_list().begin(), seq->as_list().end());
    return seq->is_tuple() ? Value::tuple(std::move(l)) : Value::list(std::move(l));
  }
  if (op == "%" && a.is_string()) return Value(percent_format(a.as_string(), b));
  if (!num) return unsupported();
  if (op == "/") {
    if (b.as_double() == 0.0) throw RuntimeError("division by zero");
    return Value(a.as_double() / b.as_double());
  }
  if (op == "//" || op == "%") {
    if (b.as_double() == 0.0) throw RuntimeError(op == "%" ? "integer modulo by zero" : "integer division or modulo by zero");
    if (flt) {
      double x = a.as_double(), y = b.as_double();
      double m = std::fmod(x, y);
      if (m != 0.0 && ((m < 0) != (y < 0))) m += y;
      return op == "%" ? Value(m) : Value(std::floor((x - m) / y + 0.5));
    }
    int64_t x = a.as_int(), y = b.as_int();
    int64_t q = x / y, r = x % y;
    if (r != 0 && ((r < 0) != (y < 0))) {
      --q;
      r += y;
    }
    return op == "%" ? Value(r) : Value(q);
  }
  if (op == "**") {
    if (!flt && b.as_int() >= 0) {
      int64_t r = 1, base = a.as_int();
      for (int64_t i = 0; i < b.as_int(); ++i) r *= base;
      return Value(r);
    }
    return Value(std::pow(a.as_double(), b.as_double()));
  }
  return unsupported();
}

class Renderer {
 public:
  Renderer(const SourceInfo& src, const Dict& context, const Dict& globals)
      : src_(src), context_(context), globals_(globals) {}

  std::string run(const std::vector<StmtPtr>& body) {
    std::string out;
    exec_block(body, std::make_shared<Scope>(), out);
    return out;
  }

 private:
  [[noreturn]] void rethrow(const RuntimeError& e, std::size_t offset) const {
    std::string msg = e.from_template() ? std::string("raise_exception: ") + e.what() : std::string(e.what());
    src_.fail(offset, msg);
  }

  Flow exec_block(const std::vector<StmtPtr>& body, const ScopePtr& scope, std::string& out) {
    for (const auto& s : body) {
      Flow f = exec(*s, scope, out);
      if (f != Flow::Normal) return f;
    }
    return Flow::Normal;
  }

  Flow exec(const Stmt& s, const ScopePtr& scope, std::string& out) {
    try {
      return exec_inner(s, scope, out);
    } catch (const RuntimeError& e) {
      rethrow(e, s.offset);
    }
  }

  Flow exec_inner(const Stmt& s, const ScopePtr& scope, std::string& out) {
    switch (s.kind) {
      case StmtKind::Text: out += s.text; return Flow::Normal;
      case StmtKind::Output: out += eval(*s.expr, scope).str(); return Flow::Normal;
      case StmtKind::If:
        return exec_block(eval(*s.expr, scope).truthy() ? s.body : s.else_body, scope, out);
      case StmtKind::For: return exec_for(s, scope, out);
      case StmtKind::Set: assign(*s.target, eval(*s.expr, scope), scope); return Flow::Normal;
      case StmtKind::SetBlock: {
        std::string body;
        exec_block(s.body, child_of(scope), body);
        Value v(body);
        if (s.expr) v = eval_filter(*s.expr, scope, v);
        assign(*s.target, v, scope);
        return Flow::Normal;
      }
      case StmtKind::FilterBlock: {
        std::string body;
        exec_block(s.body, child_of(scope), body);
        out += eval_filter(*s.expr, scope, Value(body)).str();
        return Flow::Normal;
      }
      case StmtKind::Macro: scope->vars[s.name] = make_macro(s, scope); return Flow::Normal;
      case StmtKind::CallBlock: {
        const Expr& call = *s.expr;
        Value callee = eval(*call.children[0], scope);
        CallArgs args = eval_args(call, scope);
        args.keyword.emplace_back("caller", make_macro(s, scope));
        out += call_value(callee, args, call).str();
        return Flow::Normal;
      }
      case StmtKind::With: {
        auto inner = child_of(scope);
        for (std::size_t i = 0; i < s.params.size(); ++i) inner->vars[s.params[i]] = eval(*s.defaults[i], scope);
        return exec_block(s.body, inner, out);
      }
      case StmtKind::Scope: return exec_block(s.body, scope, out);
      case StmtKind::Break: return Flow::Break;
      case StmtKind::Continue: return Flow::Continue;
    }
    return Flow::Normal;
  }

  Flow exec_for(const Stmt& s, const ScopePtr& scope, std::string& out) {
    Value iterable = eval(*s.expr, scope);
    List items;
    try {
      items = iterate(iterable);
    } catch (const RuntimeError& e) {
      rethrow(e, s.expr->offset);
    }
    if (s.cond) {
      List kept;
      for (auto& item : items) {
        auto probe = child_of(scope);
        assign(*s.target, item, probe);
        if (eval(*s.cond, probe).truthy()) kept.push_back(item);
      }
      items = std::move(kept);
    }
    if (items.empty()) return exec_block(s.else_body, child_of(scope), out);
    auto shared = std::make_shared<const List>(std::move(items));
    auto changed = std::make_shared<Value>();
    int64_t depth = 1;  // loop.depth counts recursive-loop levels only; nested loops all report 1
    for (std::size_t i = 0; i < shared->size(); ++i) {
      auto iter_scope = child_of(scope);
      assign(*s.target, (*shared)[i], iter_scope);
      auto loop = std::make_shared<LoopObject>();
      loop->items = shared;
      loop->index0 = static_cast<int64_t>(i);
      loop->depth = depth;
      loop->last_changed = changed;
      iter_scope->vars["loop"] = Value(ObjectPtr(loop));
      if (exec_block(s.body, iter_scope, out) == Flow::Break) break;
    }
    return Flow::Normal;
  }

  void assign(const Expr& target, const Value& v, const ScopePtr& scope) {
    if (target.kind == ExprKind::Name) {
      scope->vars[target.name] = v;
      return;
    }
    if (target.kind == ExprKind::GetAttr) {
      Value ns = eval(*target.children[0], scope);
      if (!ns.is_object() || !ns.as_object()->set_attr(target.name, v))
        src_.fail(target.offset, "cannot assign attribute on non-namespace object");
      return;
    }
    // Tuple unpacking.
    List values;
    try {
      values = iterate(v);
    } catch (const RuntimeError&) {
      rethrow(RuntimeError("cannot unpack non-iterable " + v.type_name() + " object"), target.offset);
    }
    std::size_t n = target.children.size();
    if (values.size() != n)
      src_.fail(target.offset, values.size() > n ? "too many values to unpack (expected " + std::to_string(n) + ")"
                                                 : "not enough values to unpack (expected " + std::to_string(n) +
                                                       ", got " + std::to_string(values.size()) + ")");
    for (std::size_t i = 0; i < n; ++i) assign(*target.children[i], values[i], scope);
  }

  Value make_macro(const Stmt& s, const ScopePtr& scope) {
    const Stmt* def = &s;
    Renderer* self = this;
    ScopePtr defining = scope;
    std::string name = s.kind == StmtKind::Macro ? s.name : "caller";
    return Value::function([self, def, defining, name](CallArgs& args) {
      auto local = child_of(defining);
      std::size_t n = def->params.size(), first_default = n - def->defaults.size();
      List extra;
      for (std::size_t i = 0; i < args.positional.size(); ++i) {
        if (i < n) local->vars[def->params[i]] = args.positional[i];
        else extra.push_back(args.positional[i]);
      }
      Dict extra_kw;
      for (auto& [k, v] : args.keyword) {
        if (k == "caller") {
          local->vars["caller"] = v;
          continue;
        }
        auto it = std::find(def->params.begin(), def->params.end(), k);
        if (it == def->params.end()) {
          extra_kw.set(Value(k), v);
          continue;
        }
        local->vars[k] = v;
      }
      for (std::size_t i = 0; i < n; ++i) {
        if (local->vars.count(def->params[i])) continue;
        local->vars[def->params[i]] = i >= first_default ? self->eval(*def->defaults[i - first_default], local)
                                                         : Value::undefined("parameter '" + def->params[i] +
                                                                            "' was not provided");
      }
      local->vars["varargs"] = Value::tuple(std::move(extra));
      local->vars["kwargs"] = Value::dict(std::move(extra_kw));
      std::string out;
      self->exec_block(def->body, local, out);
      return Value(out);
    });
  }

  std::optional<Value> lookup_opt(const std::string& name, const ScopePtr& scope) const {
    for (const Scope* s = scope.get(); s; s = s->parent.get()) {
      auto it = s->vars.find(name);
      if (it != s->vars.end()) return it->second;
    }
    if (const Value* v = context_.find(name)) return *v;
    if (const Value* v = globals_.find(name)) return *v;
    return std::nullopt;
  }

  CallArgs eval_args(const Expr& e, const ScopePtr& scope, std::size_t first = 1) {
    CallArgs args;
    for (std::size_t i = first; i < e.children.size(); ++i) args.positional.push_back(eval(*e.children[i], scope));
    for (std::size_t i = 0; i < e.kw_names.size(); ++i) args.keyword.emplace_back(e.kw_names[i], eval(*e.kw_values[i], scope));
    if (e.dyn_args)
      for (auto& v : iterate(eval(*e.dyn_args, scope))) args.positional.push_back(v);
    if (e.dyn_kwargs) {
      Value kw = eval(*e.dyn_kwargs, scope);
      if (!kw.is_dict()) throw RuntimeError("argument after ** must be a mapping, not " + kw.type_name());
      for (const auto& [k, v] : kw.as_dict().items) args.keyword.emplace_back(k.str(), v);
    }
    return args;
  }

  Value call_value(const Value& callee, CallArgs& args, const Expr& e) {
    if (callee.is_undefined()) callee.fail_undefined();
    if (!callee.is_function()) throw RuntimeError("'" + callee.type_name() + "' object is not callable");
    (void)e;
    return callee.as_function()(args);
  }

  // Evaluates a filter chain whose innermost subject is null ({% filter %} / {% set x | f %}) on `subject`.
  Value eval_filter(const Expr& e, const ScopePtr& scope, const Value& subject) {
    Value inner = e.children[0] ? eval_filter(*e.children[0], scope, subject) : subject;
    CallArgs args = eval_args(e, scope);
    try {
      return apply_filter(e.name, inner, args);
    } catch (const RuntimeError& err) {
      rethrow(err, e.offset);
    }
  }

  Value eval(const Expr& e, const ScopePtr& scope) {
    try {
      return eval_inner(e, scope);
    } catch (const RuntimeError& err) {
      rethrow(err, e.offset);
    }
  }

  Value eval_inner(const Expr& e, const ScopePtr& scope) {
    switch (e.kind) {
      case ExprKind::Const: return e.value;
      case ExprKind::Name: {
        if (auto v = lookup_opt(e.name, scope)) return *v;
        return Value::undefined("'" + e.name + "' is undefined");
      }
      case ExprKind::List:
      case ExprKind::Tuple: {
        List l;
        for (const auto& c : e.children) l.push_back(eval(*c, scope));
        return e.kind == ExprKind::List ? Value::list(std::move(l)) : Value::tuple(std::move(l));
      }
      case ExprKind::Dict: {
        Dict d;
        for (std::size_t i = 0; i + 1 < e.children.size(); i += 2)
          d.set(eval(*e.children[i], scope), eval(*e.children[i + 1], scope));
        return Value::dict(std::move(d));
      }
      case ExprKind::GetAttr: return get_attr(eval(*e.children[0], scope), e.name);
      case ExprKind::GetItem: {
        Value obj = eval(*e.children[0], scope);
        const Expr& key = *e.children[1];
        if (key.kind == ExprKind::Slice) {
          auto part = [&](std::size_t i) { return key.children[i] ? eval(*key.children[i], scope) : Value::none(); };
          return get_slice(obj, part(0), part(1), part(2));
        }
        return get_item(obj, eval(key, scope));
      }
      case ExprKind::Slice: throw RuntimeError("slice outside of a subscript");
      case ExprKind::Call: {
        Value callee = eval(*e.children[0], scope);
        CallArgs args = eval_args(e, scope);
        return call_value(callee, args, e);
      }
      case ExprKind::Filter: {
        Value subject = eval(*e.children[0], scope);
        CallArgs args = eval_args(e, scope);
        return apply_filter(e.name, subject, args);
      }
      case ExprKind::Test: {
        Value subject = eval(*e.children[0], scope);
        CallArgs args = eval_args(e, scope);
        return Value(apply_test(e.name, subject, args) != e.negated);
      }
      case ExprKind::Not: return Value(!eval(*e.children[0], scope).truthy());
      case ExprKind::Neg:
      case ExprKind::Pos: {
        Value v = eval(*e.children[0], scope);
        if (v.is_undefined()) v.fail_undefined();
        if (!v.is_number()) throw RuntimeError("bad operand type for unary " + std::string(e.kind == ExprKind::Neg ? "-" : "+") + ": '" + v.type_name() + "'");
        if (e.kind == ExprKind::Pos) return v.is_float() ? v : Value(v.as_int());
        return v.is_float() ? Value(-v.as_double()) : Value(-v.as_int());
      }
      case ExprKind::Binary: return arithmetic(e.name, eval(*e.children[0], scope), eval(*e.children[1], scope));
      case ExprKind::And: {
        Value l = eval(*e.children[0], scope);
        return l.truthy() ? eval(*e.children[1], scope) : l;
      }
      case ExprKind::Or: {
        Value l = eval(*e.children[0], scope);
        return l.truthy() ? l : eval(*e.children[1], scope);
      }
      case ExprKind::Concat: {
        std::string s;
        for (const auto& c : e.children) s += eval(*c, scope).str();
        return Value(s);
      }
      case ExprKind::Compare: {
        Value left = eval(*e.children[0], scope);
        for (std::size_t i = 0; i < e.ops.size(); ++i) {
          Value right = eval(*e.children[i + 1], scope);
          const std::string& op = e.ops[i];
          bool r;
          if (op == "==") r = left == right;
          else if (op == "!=") r = !(left == right);
          else if (op == "<") r = Value::less(left, right);
          else if (op == ">") r = Value::less(right, left);
          else if (op == "<=") r = Value::less(left, right) || left == right;
          else if (op == ">=") r = Value::less(right, left) || left == right;
          else if (op == "in") r = contains(right, left);
          else r = !contains(right, left);
          if (!r) return Value(false);
          left = std::move(right);
        }
        return Value(true);
      }
      case ExprKind::CondExpr: {
        if (eval(*e.children[1], scope).truthy()) return eval(*e.children[0], scope);
        if (e.children[2]) return eval(*e.children[2], scope);
        return Value::undefined("the inline if-expression evaluated to false and no else section was defined.");
      }
    }
    return Value();
  }

  const SourceInfo& src_;
  const Dict& context_;
  const Dict& globals_;
};

}  // namespace

Template::Template(std::string_view source, const LexerOptions& opts)
    : src_(std::make_unique<SourceInfo>(normalize_source(source, opts))) {
  body_ = parse(*src_, tokenize(*src_, opts));
}

Template::~Template() = default;
Template::Template(Template&&) noexcept = default;
Template& Template::operator=(Template&&) noexcept = default;

std::string Template::render(const Dict& context) const {
  static const Dict globals = make_globals();
  return Renderer(*src_, context, globals).run(body_);
}

}  // namespace llmstudio::tokenizer::jinja
