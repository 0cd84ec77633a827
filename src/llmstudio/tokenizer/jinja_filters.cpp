// Jinja built-in filters, tests and chat-template globals (see jinja_filters.h).
#include "llmstudio/tokenizer/jinja_filters.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <unordered_map>

#include "llmstudio/tokenizer/jinja_methods.h"
#include "llmstudio/tokenizer/jinja_text.h"

namespace llmstudio::tokenizer::jinja {
namespace {

using FilterFn = Value (*)(const Value&, CallArgs&);
using TestFn = bool (*)(const Value&, CallArgs&);

std::string soft_str(const Value& v) { return v.str(); }

// jinja2's make_attrgetter: "a.b.0" looks each part up with getitem (digit parts as ints).
Value lookup_attribute(const Value& item, const Value& attribute, const Value& dflt = Value()) {
  Value cur = item;
  std::vector<Value> parts;
  if (attribute.is_string()) {
    for (const auto& p : text::split(attribute.as_string(), std::string("."), -1)) {
      bool digits = !p.empty() && std::all_of(p.begin(), p.end(), [](char c) { return c >= '0' && c <= '9'; });
      parts.push_back(digits ? Value(static_cast<int64_t>(std::stoll(p))) : Value(p));
    }
  } else {
    parts.push_back(attribute);
  }
  for (const auto& p : parts) {
    cur = get_item(cur, p);
    if (cur.is_undefined() && !dflt.is_undefined()) return dflt;
  }
  return cur;
}

Value lower_if_str(const Value& v) { return v.is_string() ? Value(text::lower(v.as_string())) : v; }

Value keyed(const Value& item, const Value& attribute, bool case_sensitive) {
  Value k = attribute.is_undefined() || attribute.is_none() ? item : lookup_attribute(item, attribute);
  return case_sensitive ? k : lower_if_str(k);
}

Value arith_add(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return Value(a.as_double() + b.as_double());
    return Value(a.as_int() + b.as_int());
  }
  throw RuntimeError("unsupported operand type(s) for +: '" + a.type_name() + "' and '" + b.type_name() + "'");
}

Value f_default(const Value& v, CallArgs& a) {
  auto p = a.bind("default", {"default_value", "boolean"}, 0);
  Value dflt = p[0].is_undefined() ? Value("") : p[0];
  if (v.is_undefined() || (p[1].truthy() && !v.truthy())) return dflt;
  return v;
}

Value f_length(const Value& v, CallArgs& a) {
  a.bind("length", {}, 0);
  return Value(py_len(v));
}

Value f_first(const Value& v, CallArgs& a) {
  a.bind("first", {}, 0);
  List l = iterate(v);
  return l.empty() ? Value::undefined("No first item, sequence was empty.") : l.front();
}

Value f_last(const Value& v, CallArgs& a) {
  a.bind("last", {}, 0);
  List l = iterate(v);
  return l.empty() ? Value::undefined("No last item, sequence was empty.") : l.back();
}

Value f_join(const Value& v, CallArgs& a) {
  auto p = a.bind("join", {"d", "attribute"}, 0);
  std::string sep = p[0].is_undefined() ? "" : soft_str(p[0]);
  std::string out;
  bool first = true;
  for (const auto& item : iterate(v)) {
    if (!first) out += sep;
    first = false;
    out += soft_str(p[1].is_undefined() || p[1].is_none() ? item : lookup_attribute(item, p[1]));
  }
  return Value(out);
}

Value f_tojson(const Value& v, CallArgs& a) {
  auto p = a.bind("tojson", {"ensure_ascii", "indent", "separators", "sort_keys"}, 0);
  JsonOptions o;
  o.ensure_ascii = p[0].truthy();
  if (p[1].is_int()) {
    o.indent = std::string(static_cast<std::size_t>(std::max<int64_t>(p[1].as_int(), 0)), ' ');
  } else if (p[1].is_string()) {
    o.indent = p[1].as_string();
  }
  if (p[2].is_sequence() && p[2].as_list().size() == 2)
    o.separators = std::make_pair(p[2].as_list()[0].str(), p[2].as_list()[1].str());
  o.sort_keys = p[3].truthy();
  return Value(to_json(v, o));
}

Value f_trim(const Value& v, CallArgs& a) {
  auto p = a.bind("trim", {"chars"}, 0);
  std::optional<std::string> chars;
  if (p[0].is_string()) chars = p[0].as_string();
  return Value(text::strip(soft_str(v), chars, true, true));
}

Value f_upper(const Value& v, CallArgs&) { return Value(text::upper(soft_str(v))); }
Value f_lower(const Value& v, CallArgs&) { return Value(text::lower(soft_str(v))); }
Value f_capitalize(const Value& v, CallArgs&) { return Value(text::capitalize(soft_str(v))); }
Value f_title(const Value& v, CallArgs&) { return Value(text::jinja_title(soft_str(v))); }
Value f_string(const Value& v, CallArgs&) { return v.is_string() ? v : Value(soft_str(v)); }
Value f_safe(const Value& v, CallArgs&) { return Value(soft_str(v), true); }

Value f_escape(const Value& v, CallArgs&) {
  if (v.is_string() && v.is_safe()) return v;
  return Value(text::html_escape(soft_str(v)), true);
}

Value f_forceescape(const Value& v, CallArgs&) { return Value(text::html_escape(soft_str(v)), true); }

Value f_replace(const Value& v, CallArgs& a) {
  auto p = a.bind("replace", {"old", "new", "count"}, 2);
  int64_t count = p[2].is_int() ? p[2].as_int() : -1;
  return Value(text::replace(soft_str(v), soft_str(p[0]), soft_str(p[1]), count));
}

Value f_list(const Value& v, CallArgs&) { return Value::list(iterate(v)); }

Value f_items(const Value& v, CallArgs&) {
  if (v.is_undefined()) return Value::list({});
  if (!v.is_dict()) throw RuntimeError("Can only get item pairs from a mapping.");
  List l;
  for (const auto& [k, x] : v.as_dict().items) l.push_back(Value::tuple({k, x}));
  return Value::list(std::move(l));
}

std::optional<int64_t> parse_int(std::string s, int64_t base) {
  s = text::strip(s, std::nullopt, true, true);
  s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(s.c_str(), &end, static_cast<int>(base));
  if (errno || *end) return std::nullopt;
  return v;
}

std::optional<double> parse_float(std::string s) {
  s = text::strip(s, std::nullopt, true, true);
  if (s.empty() || s.find_first_of("xXpP") != std::string::npos) return std::nullopt;
  char* end = nullptr;
  double d = std::strtod(s.c_str(), &end);
  if (*end) return std::nullopt;
  return d;
}

Value f_int(const Value& v, CallArgs& a) {
  auto p = a.bind("int", {"default", "base"}, 0);
  Value dflt = p[0].is_undefined() ? Value(int64_t{0}) : p[0];
  int64_t base = p[1].is_int() ? p[1].as_int() : 10;
  if (v.is_string()) {
    if (auto i = parse_int(v.as_string(), base)) return Value(*i);
    if (auto d = parse_float(v.as_string()); d && std::isfinite(*d)) return Value(static_cast<int64_t>(std::trunc(*d)));
    return dflt;
  }
  if (v.is_float()) return std::isfinite(v.as_double()) ? Value(static_cast<int64_t>(std::trunc(v.as_double()))) : dflt;
  if (v.is_number()) return Value(v.as_int());
  return dflt;
}

Value f_float(const Value& v, CallArgs& a) {
  auto p = a.bind("float", {"default"}, 0);
  Value dflt = p[0].is_undefined() ? Value(0.0) : p[0];
  if (v.is_number()) return Value(v.as_double());
  if (v.is_string())
    if (auto d = parse_float(v.as_string())) return Value(*d);
  return dflt;
}

Value f_abs(const Value& v, CallArgs&) {
  if (v.is_float()) return Value(std::fabs(v.as_double()));
  if (v.is_number()) return Value(static_cast<int64_t>(std::llabs(v.as_int())));
  throw RuntimeError("bad operand type for abs(): '" + v.type_name() + "'");
}

Value f_round(const Value& v, CallArgs& a) {
  auto p = a.bind("round", {"precision", "method"}, 0);
  int64_t prec = p[0].is_int() ? p[0].as_int() : 0;
  std::string m = p[1].is_string() ? p[1].as_string() : "common";
  if (!v.is_number()) throw RuntimeError("type " + v.type_name() + " doesn't define __round__ method");
  if (m == "common") {
    if (!v.is_float()) return Value(v.as_int());
    char buf[512];
    std::snprintf(buf, sizeof buf, "%.*f", static_cast<int>(std::max<int64_t>(prec, 0)), v.as_double());
    return Value(std::strtod(buf, nullptr));
  }
  if (m != "ceil" && m != "floor") throw RuntimeError("method must be common, ceil or floor");
  double scale = std::pow(10.0, static_cast<double>(prec));
  double x = v.as_double() * scale;
  return Value((m == "ceil" ? std::ceil(x) : std::floor(x)) / scale);
}

Value f_sum(const Value& v, CallArgs& a) {
  auto p = a.bind("sum", {"attribute", "start"}, 0);
  Value total = p[1].is_undefined() ? Value(int64_t{0}) : p[1];
  for (const auto& item : iterate(v))
    total = arith_add(total, p[0].is_undefined() || p[0].is_none() ? item : lookup_attribute(item, p[0]));
  return total;
}

Value min_max(const Value& v, CallArgs& a, bool want_max) {
  auto p = a.bind(want_max ? "max" : "min", {"case_sensitive", "attribute"}, 0);
  List l = iterate(v);
  if (l.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  const Value* best = &l[0];
  Value best_key = keyed(l[0], p[1], p[0].truthy());
  for (std::size_t i = 1; i < l.size(); ++i) {
    Value k = keyed(l[i], p[1], p[0].truthy());
    if (want_max ? Value::less(best_key, k) : Value::less(k, best_key)) {
      best = &l[i];
      best_key = k;
    }
  }
  return *best;
}

Value f_max(const Value& v, CallArgs& a) { return min_max(v, a, true); }
Value f_min(const Value& v, CallArgs& a) { return min_max(v, a, false); }

Value f_sort(const Value& v, CallArgs& a) {
  auto p = a.bind("sort", {"reverse", "case_sensitive", "attribute"}, 0);
  List l = iterate(v);
  std::vector<std::pair<Value, Value>> keyed_items;
  for (auto& x : l) keyed_items.emplace_back(keyed(x, p[2], p[1].truthy()), x);
  bool rev = p[0].truthy();
  std::stable_sort(keyed_items.begin(), keyed_items.end(), [rev](const auto& x, const auto& y) {
    return rev ? Value::less(y.first, x.first) : Value::less(x.first, y.first);
  });
  List out;
  for (auto& kv : keyed_items) out.push_back(kv.second);
  return Value::list(std::move(out));
}

Value f_dictsort(const Value& v, CallArgs& a) {
  auto p = a.bind("dictsort", {"case_sensitive", "by", "reverse"}, 0);
  if (!v.is_dict()) throw RuntimeError("You can only sort by either \"key\" or \"value\"");
  bool by_value = p[1].is_string() && p[1].as_string() == "value";
  std::vector<std::pair<Value, Value>> items = v.as_dict().items;
  bool cs = p[0].truthy(), rev = p[2].truthy();
  std::stable_sort(items.begin(), items.end(), [&](const auto& x, const auto& y) {
    Value kx = by_value ? x.second : x.first, ky = by_value ? y.second : y.first;
    if (!cs) {
      kx = lower_if_str(kx);
      ky = lower_if_str(ky);
    }
    return rev ? Value::less(ky, kx) : Value::less(kx, ky);
  });
  List out;
  for (auto& [k, x] : items) out.push_back(Value::tuple({k, x}));
  return Value::list(std::move(out));
}

Value f_unique(const Value& v, CallArgs& a) {
  auto p = a.bind("unique", {"case_sensitive", "attribute"}, 0);
  List out, seen;
  for (const auto& x : iterate(v)) {
    Value k = keyed(x, p[1], p[0].truthy());
    if (std::find(seen.begin(), seen.end(), k) != seen.end()) continue;
    seen.push_back(k);
    out.push_back(x);
  }
  return Value::list(std::move(out));
}

Value f_reverse(const Value& v, CallArgs&) {
  if (v.is_string()) return Value(text::slice(v.as_string(), std::nullopt, std::nullopt, -1));
  List l = iterate(v);
  std::reverse(l.begin(), l.end());
  return Value::list(std::move(l));
}

Value f_batch(const Value& v, CallArgs& a) {
  auto p = a.bind("batch", {"linecount", "fill_with"}, 1);
  int64_t n = p[0].as_int();
  if (n <= 0) throw RuntimeError("batch size must be positive");
  List out, cur;
  for (const auto& x : iterate(v)) {
    cur.push_back(x);
    if (static_cast<int64_t>(cur.size()) == n) {
      out.push_back(Value::list(std::move(cur)));
      cur.clear();
    }
  }
  if (!cur.empty()) {
    if (!p[1].is_undefined() && !p[1].is_none())
      while (static_cast<int64_t>(cur.size()) < n) cur.push_back(p[1]);
    out.push_back(Value::list(std::move(cur)));
  }
  return Value::list(std::move(out));
}

Value f_center(const Value& v, CallArgs& a) {
  auto p = a.bind("center", {"width"}, 0);
  int64_t w = p[0].is_int() ? p[0].as_int() : 80;
  CallArgs inner;
  inner.positional.push_back(Value(w));
  return get_attr(Value(soft_str(v)), "center").as_function()(inner);
}

Value f_indent(const Value& v, CallArgs& a) {
  auto p = a.bind("indent", {"width", "first", "blank"}, 0);
  std::string ind = p[0].is_string() ? p[0].as_string()
                                     : std::string(static_cast<std::size_t>(p[0].is_int() ? p[0].as_int() : 4), ' ');
  std::string s = soft_str(v) + "\n";
  std::vector<std::string> lines = text::splitlines(s, false);
  std::string rv;
  if (p[2].truthy()) {
    for (std::size_t i = 0; i < lines.size(); ++i) rv += (i ? "\n" + ind : "") + lines[i];
  } else {
    rv = lines.empty() ? "" : lines[0];
    for (std::size_t i = 1; i < lines.size(); ++i) rv += "\n" + (lines[i].empty() ? "" : ind) + lines[i];
  }
  if (p[1].truthy()) rv = ind + rv;
  return Value(rv);
}

Value f_truncate(const Value& v, CallArgs& a) {
  auto p = a.bind("truncate", {"length", "killwords", "end", "leeway"}, 0);
  std::string s = soft_str(v);
  int64_t length = p[0].is_int() ? p[0].as_int() : 255;
  std::string end = p[2].is_string() ? p[2].as_string() : "...";
  int64_t leeway = p[3].is_int() ? p[3].as_int() : 5;
  auto n = static_cast<int64_t>(text::length(s));
  if (n <= length + leeway) return Value(s);
  int64_t keep = length - static_cast<int64_t>(text::length(end));
  std::string head = text::slice(s, std::nullopt, keep, std::nullopt);
  if (p[1].truthy()) return Value(head + end);
  return Value(text::split(head, std::string(" "), 1, true)[0] + end);
}

Value f_wordcount(const Value& v, CallArgs&) {
  int64_t n = 0;
  bool in_word = false;
  for (char32_t c : text::decode(soft_str(v))) {
    bool w = (c >= '0' && c <= '9') || c == '_' || text::to_upper(c) != text::to_lower(c) ||
             (c >= 0x80 && !text::is_space(c));
    if (w && !in_word) ++n;
    in_word = w;
  }
  return Value(n);
}

Value f_attr(const Value& v, CallArgs& a) {
  auto p = a.bind("attr", {"name"}, 1);
  return get_attr_only(v, soft_str(p[0]));
}

Value f_format(const Value& v, CallArgs& a) {
  if (!a.positional.empty() && !a.keyword.empty())
    throw RuntimeError("can't handle positional and keyword arguments at the same time");
  if (!a.keyword.empty()) {
    Dict d;
    for (auto& [k, x] : a.keyword) d.set(Value(k), x);
    return Value(percent_format(soft_str(v), Value::dict(std::move(d))));
  }
  return Value(percent_format(soft_str(v), Value::tuple(a.positional)));
}

Value f_map(const Value& v, CallArgs& a) {
  List out;
  if (a.positional.empty()) {
    auto p = a.bind("map", {"attribute", "default"}, 1);
    for (const auto& x : iterate(v)) out.push_back(lookup_attribute(x, p[0], p[1]));
    return Value::list(std::move(out));
  }
  std::string name = soft_str(a.positional[0]);
  CallArgs rest;
  rest.positional.assign(a.positional.begin() + 1, a.positional.end());
  rest.keyword = a.keyword;
  for (const auto& x : iterate(v)) {
    CallArgs copy = rest;
    out.push_back(apply_filter(name, x, copy));
  }
  return Value::list(std::move(out));
}

Value select_impl(const Value& v, CallArgs& a, bool lookup, bool keep) {
  std::size_t off = lookup ? 1 : 0;
  if (lookup && a.positional.empty()) throw RuntimeError("Missing parameter for attribute name");
  List out;
  for (const auto& x : iterate(v)) {
    Value subject = lookup ? lookup_attribute(x, a.positional[0]) : x;
    bool r;
    if (a.positional.size() > off) {
      CallArgs ta;
      ta.positional.assign(a.positional.begin() + static_cast<std::ptrdiff_t>(off) + 1, a.positional.end());
      ta.keyword = a.keyword;
      r = apply_test(soft_str(a.positional[off]), subject, ta);
    } else {
      r = subject.truthy();
    }
    if (r == keep) out.push_back(x);
  }
  return Value::list(std::move(out));
}

Value f_select(const Value& v, CallArgs& a) { return select_impl(v, a, false, true); }
Value f_reject(const Value& v, CallArgs& a) { return select_impl(v, a, false, false); }
Value f_selectattr(const Value& v, CallArgs& a) { return select_impl(v, a, true, true); }
Value f_rejectattr(const Value& v, CallArgs& a) { return select_impl(v, a, true, false); }

const std::unordered_map<std::string, FilterFn>& filters() {
  static const std::unordered_map<std::string, FilterFn> m = {
      {"abs", f_abs},         {"attr", f_attr},           {"batch", f_batch},       {"capitalize", f_capitalize},
      {"center", f_center},   {"count", f_length},        {"d", f_default},         {"default", f_default},
      {"dictsort", f_dictsort}, {"e", f_escape},          {"escape", f_escape},     {"first", f_first},
      {"float", f_float},     {"forceescape", f_forceescape}, {"format", f_format}, {"indent", f_indent},
      {"int", f_int},         {"items", f_items},         {"join", f_join},         {"last", f_last},
      {"length", f_length},   {"list", f_list},           {"lower", f_lower},       {"map", f_map},
      {"max", f_max},         {"min", f_min},             {"reject", f_reject},     {"rejectattr", f_rejectattr},
      {"replace", f_replace}, {"reverse", f_reverse},     {"round", f_round},       {"safe", f_safe},
      {"select", f_select},   {"selectattr", f_selectattr}, {"sort", f_sort},       {"string", f_string},
      {"sum", f_sum},         {"title", f_title},         {"tojson", f_tojson},     {"trim", f_trim},
      {"truncate", f_truncate}, {"unique", f_unique},     {"upper", f_upper},       {"wordcount", f_wordcount},
  };
  return m;
}

// ---- tests ----

Value arg0(CallArgs& a, const char* name) {
  auto p = a.bind(name, {"other"}, 1);
  return p[0];
}

bool t_defined(const Value& v, CallArgs&) { return !v.is_undefined(); }
bool t_undefined(const Value& v, CallArgs&) { return v.is_undefined(); }
bool t_none(const Value& v, CallArgs&) { return v.is_none(); }
bool t_boolean(const Value& v, CallArgs&) { return v.is_bool(); }
bool t_false(const Value& v, CallArgs&) { return v.is_bool() && !v.as_bool(); }
bool t_true(const Value& v, CallArgs&) { return v.is_bool() && v.as_bool(); }
bool t_integer(const Value& v, CallArgs&) { return v.is_int(); }
bool t_float(const Value& v, CallArgs&) { return v.is_float(); }
bool t_number(const Value& v, CallArgs&) { return v.is_number(); }
bool t_string(const Value& v, CallArgs&) { return v.is_string(); }
bool t_mapping(const Value& v, CallArgs&) { return v.is_dict(); }
bool t_iterable(const Value& v, CallArgs&) { return v.is_string() || v.is_sequence() || v.is_dict() || v.is_undefined(); }
bool t_sequence(const Value& v, CallArgs&) { return v.is_string() || v.is_sequence() || v.is_dict() || v.is_undefined(); }
bool t_callable(const Value& v, CallArgs&) { return v.is_function() || v.is_undefined(); }
bool t_escaped(const Value& v, CallArgs&) { return v.is_string() && v.is_safe(); }
bool t_odd(const Value& v, CallArgs&) { return v.is_number() && ((v.as_int() % 2) + 2) % 2 == 1; }
bool t_even(const Value& v, CallArgs&) { return v.is_number() && v.as_int() % 2 == 0; }
bool t_lower(const Value& v, CallArgs&) {
  CallArgs none;
  return get_attr(Value(v.str()), "islower").as_function()(none).truthy();
}
bool t_upper(const Value& v, CallArgs&) {
  CallArgs none;
  return get_attr(Value(v.str()), "isupper").as_function()(none).truthy();
}
bool t_divisibleby(const Value& v, CallArgs& a) {
  Value n = arg0(a, "divisibleby");
  if (!v.is_number() || !n.is_number()) throw RuntimeError("divisibleby needs numbers");
  if (v.is_float() || n.is_float()) return std::fmod(v.as_double(), n.as_double()) == 0.0;
  if (n.as_int() == 0) throw RuntimeError("integer division or modulo by zero");
  return v.as_int() % n.as_int() == 0;
}
bool t_eq(const Value& v, CallArgs& a) { return v == arg0(a, "eq"); }
bool t_ne(const Value& v, CallArgs& a) { return !(v == arg0(a, "ne")); }
bool t_lt(const Value& v, CallArgs& a) { return Value::less(v, arg0(a, "lt")); }
bool t_le(const Value& v, CallArgs& a) {
  Value o = arg0(a, "le");
  return !Value::less(o, v);
}
bool t_gt(const Value& v, CallArgs& a) { return Value::less(arg0(a, "gt"), v); }
bool t_ge(const Value& v, CallArgs& a) { return !Value::less(v, arg0(a, "ge")); }
bool t_in(const Value& v, CallArgs& a) { return contains(arg0(a, "in"), v); }
bool t_sameas(const Value& v, CallArgs& a) {
  Value o = arg0(a, "sameas");
  if (v.kind() != o.kind()) return false;
  return v == o;
}
bool t_filter(const Value& v, CallArgs&) { return v.is_string() && has_filter(v.as_string()); }
bool t_test(const Value& v, CallArgs&) { return v.is_string() && has_test(v.as_string()); }

const std::unordered_map<std::string, TestFn>& tests() {
  static const std::unordered_map<std::string, TestFn> m = {
      {"defined", t_defined}, {"undefined", t_undefined}, {"none", t_none},         {"boolean", t_boolean},
      {"false", t_false},     {"true", t_true},           {"integer", t_integer},   {"float", t_float},
      {"number", t_number},   {"string", t_string},       {"mapping", t_mapping},   {"iterable", t_iterable},
      {"sequence", t_sequence}, {"callable", t_callable}, {"escaped", t_escaped},   {"odd", t_odd},
      {"even", t_even},       {"lower", t_lower},         {"upper", t_upper},       {"divisibleby", t_divisibleby},
      {"eq", t_eq},           {"equalto", t_eq},          {"==", t_eq},             {"ne", t_ne},
      {"!=", t_ne},           {"lt", t_lt},               {"lessthan", t_lt},       {"<", t_lt},
      {"le", t_le},           {"<=", t_le},               {"gt", t_gt},             {"greaterthan", t_gt},
      {">", t_gt},            {"ge", t_ge},               {">=", t_ge},             {"in", t_in},
      {"sameas", t_sameas},   {"filter", t_filter},       {"test", t_test},
  };
  return m;
}

}  // namespace

bool has_filter(const std::string& name) { return filters().count(name) > 0; }
bool has_test(const std::string& name) { return tests().count(name) > 0; }

Value apply_filter(const std::string& name, const Value& subject, CallArgs& args) {
  auto it = filters().find(name);
  if (it == filters().end()) throw RuntimeError("No filter named '" + name + "'.");
  return it->second(subject, args);
}

bool apply_test(const std::string& name, const Value& subject, CallArgs& args) {
  auto it = tests().find(name);
  if (it == tests().end()) throw RuntimeError("No test named '" + name + "'.");
  return it->second(subject, args);
}

Dict make_globals() {
  Dict g;
  g.set(Value("raise_exception"), Value::function([](CallArgs& a) -> Value {
          auto p = a.bind("raise_exception", {"message"}, 1);
          throw RuntimeError(p[0].str(), true);
        }));
  g.set(Value("strftime_now"), Value::function([](CallArgs& a) {
          auto p = a.bind("strftime_now", {"format"}, 1);
          std::time_t now = std::time(nullptr);
          std::tm tm{};
          localtime_r(&now, &tm);
          char buf[512];
          std::size_t n = std::strftime(buf, sizeof buf, p[0].str().c_str(), &tm);
          return Value(std::string(buf, n));
        }));
  g.set(Value("range"), Value::function([](CallArgs& a) {
          if (!a.keyword.empty()) throw RuntimeError("range() takes no keyword arguments");
          std::vector<int64_t> n;
          for (const auto& v : a.positional) {
            if (!v.is_int() && !v.is_bool())
              throw RuntimeError("'" + v.type_name() + "' object cannot be interpreted as an integer");
            n.push_back(v.as_int());
          }
          if (n.empty() || n.size() > 3) throw RuntimeError("range expected 1 to 3 arguments");
          int64_t start = n.size() == 1 ? 0 : n[0], stop = n.size() == 1 ? n[0] : n[1], step = n.size() == 3 ? n[2] : 1;
          if (step == 0) throw RuntimeError("range() arg 3 must not be zero");
          List l;
          for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
            l.emplace_back(i);
            if (l.size() > 100000) throw RuntimeError("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
          }
          return Value::list(std::move(l));
        }));
  g.set(Value("dict"), Value::function([](CallArgs& a) {
          Dict d;
          if (!a.positional.empty()) {
            if (a.positional.size() > 1 || !a.positional[0].is_dict())
              throw RuntimeError("dict() accepts one mapping argument in templates");
            d = a.positional[0].as_dict();
          }
          for (auto& [k, v] : a.keyword) d.set(Value(k), v);
          return Value::dict(std::move(d));
        }));
  g.set(Value("namespace"), Value::function([](CallArgs& a) {
          auto ns = std::make_shared<Namespace>();
          for (const auto& p : a.positional) {
            if (!p.is_dict()) throw RuntimeError("namespace() positional argument must be a mapping");
            for (const auto& [k, v] : p.as_dict().items) ns->set_attr(k.str(), v);
          }
          for (auto& [k, v] : a.keyword) ns->set_attr(k, v);
          return Value(ObjectPtr(ns));
        }));
  g.set(Value("joiner"), Value::function([](CallArgs& a) {
          auto p = a.bind("joiner", {"sep"}, 0);
          std::string sep = p[0].is_undefined() ? ", " : p[0].str();
          auto used = std::make_shared<bool>(false);
          return Value::function([sep, used](CallArgs&) {
            if (!*used) {
              *used = true;
              return Value("");
            }
            return Value(sep);
          });
        }));
  return g;
}

}  // namespace llmstudio::tokenizer::jinja
