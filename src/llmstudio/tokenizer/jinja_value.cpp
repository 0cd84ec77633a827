// Python semantics of Jinja runtime values (see jinja_value.h).
#include "llmstudio/tokenizer/jinja_value.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "llmstudio/tokenizer/jinja_text.h"

namespace llmstudio::tokenizer::jinja {

Value Value::list(List items) {
  Value v;
  v.data_ = std::make_shared<const List>(std::move(items));
  return v;
}

Value Value::tuple(List items) {
  Value v = list(std::move(items));
  v.is_tuple_ = true;
  return v;
}

Value Value::dict(Dict d) {
  Value v;
  v.data_ = std::make_shared<const Dict>(std::move(d));
  return v;
}

Value Value::function(Function f) {
  Value v;
  v.data_ = std::make_shared<const Function>(std::move(f));
  return v;
}

Value::Kind Value::kind() const {
  switch (data_.index()) {
    case 0: return Kind::Undefined;
    case 1: return Kind::None;
    case 2: return Kind::Bool;
    case 3: return Kind::Int;
    case 4: return Kind::Float;
    case 5: return Kind::String;
    case 6: return is_tuple_ ? Kind::Tuple : Kind::List;
    case 7: return Kind::Dict;
    case 8: return Kind::Object;
    default: return Kind::Function;
  }
}

int64_t Value::as_int() const {
  if (is_bool()) return as_bool() ? 1 : 0;
  return std::get<int64_t>(data_);
}

double Value::as_double() const {
  if (is_float()) return std::get<double>(data_);
  return static_cast<double>(as_int());
}

bool Value::truthy() const {
  switch (kind()) {
    case Kind::Undefined:
    case Kind::None: return false;
    case Kind::Bool: return as_bool();
    case Kind::Int: return as_int() != 0;
    case Kind::Float: return as_double() != 0.0;
    case Kind::String: return !as_string().empty();
    case Kind::List:
    case Kind::Tuple: return !as_list().empty();
    case Kind::Dict: return !as_dict().items.empty();
    default: return true;
  }
}

std::string Value::type_name() const {
  switch (kind()) {
    case Kind::Undefined: return "Undefined";
    case Kind::None: return "NoneType";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::Float: return "float";
    case Kind::String: return "str";
    case Kind::List: return "list";
    case Kind::Tuple: return "tuple";
    case Kind::Dict: return "dict";
    case Kind::Object: return as_object()->type_name();
    default: return "function";
  }
}

void Value::fail_undefined() const {
  const std::string& m = undefined_message();
  throw RuntimeError(m.empty() ? "value is undefined" : m);
}

std::string Value::str() const {
  switch (kind()) {
    case Kind::Undefined: return "";
    case Kind::String: return as_string();
    default: return repr();
  }
}

std::string Value::repr() const {
  switch (kind()) {
    case Kind::Undefined: return "Undefined";
    case Kind::None: return "None";
    case Kind::Bool: return as_bool() ? "True" : "False";
    case Kind::Int: return std::to_string(as_int());
    case Kind::Float: return text::float_repr(as_double());
    case Kind::String: return is_safe() ? "Markup(" + text::py_repr(as_string()) + ")" : text::py_repr(as_string());
    case Kind::List:
    case Kind::Tuple: {
      const List& l = as_list();
      std::string out = is_tuple_ ? "(" : "[";
      for (std::size_t i = 0; i < l.size(); ++i) {
        if (i) out += ", ";
        out += l[i].repr();
      }
      if (is_tuple_ && l.size() == 1) out += ",";
      return out + (is_tuple_ ? ")" : "]");
    }
    case Kind::Dict: {
      std::string out = "{";
      bool first = true;
      for (const auto& [k, v] : as_dict().items) {
        if (!first) out += ", ";
        first = false;
        out += k.repr() + ": " + v.repr();
      }
      return out + "}";
    }
    case Kind::Object: return as_object()->repr();
    default: return "<function>";
  }
}

bool operator==(const Value& a, const Value& b) {
  using K = Value::Kind;
  K ka = a.kind(), kb = b.kind();
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_double() == b.as_double();
    return a.as_int() == b.as_int();
  }
  if (ka != kb) return false;
  switch (ka) {
    case K::Undefined:
    case K::None: return true;
    case K::String: return a.as_string() == b.as_string();
    case K::List:
    case K::Tuple: {
      const List &x = a.as_list(), &y = b.as_list();
      if (x.size() != y.size()) return false;
      for (std::size_t i = 0; i < x.size(); ++i)
        if (!(x[i] == y[i])) return false;
      return true;
    }
    case K::Dict: {
      const Dict &x = a.as_dict(), &y = b.as_dict();
      if (x.items.size() != y.items.size()) return false;
      for (const auto& [k, v] : x.items) {
        const Value* o = y.find(k);
        if (!o || !(*o == v)) return false;
      }
      return true;
    }
    case K::Object: return a.as_object() == b.as_object();
    case K::Function: return &a.as_function() == &b.as_function();
    default: return false;
  }
}

bool Value::less(const Value& a, const Value& b) {
  if (a.is_undefined()) a.fail_undefined();
  if (b.is_undefined()) b.fail_undefined();
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_double() < b.as_double();
    return a.as_int() < b.as_int();
  }
  if (a.is_string() && b.is_string()) return a.as_string() < b.as_string();  // UTF-8 order == code point order
  if ((a.is_list() && b.is_list()) || (a.is_tuple() && b.is_tuple())) {
    const List &x = a.as_list(), &y = b.as_list();
    for (std::size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (x[i] == y[i]) continue;
      return less(x[i], y[i]);
    }
    return x.size() < y.size();
  }
  throw RuntimeError("'<' not supported between instances of '" + a.type_name() + "' and '" + b.type_name() + "'");
}

const Value* Dict::find(const Value& key) const {
  for (const auto& [k, v] : items)
    if (k == key) return &v;
  return nullptr;
}

const Value* Dict::find(const std::string& key) const {
  for (const auto& [k, v] : items)
    if (k.is_string() && k.as_string() == key) return &v;
  return nullptr;
}

void Dict::set(const Value& key, Value value) {
  for (auto& [k, v] : items) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  items.emplace_back(key, std::move(value));
}

std::optional<Value> Namespace::get_attr(const std::string& name) const {
  if (const Value* v = attrs.find(name)) return *v;
  return std::nullopt;
}

bool Namespace::set_attr(const std::string& name, Value value) {
  if (!name.empty() && name[0] == '_')
    throw RuntimeError("Chat templates cannot store underscore-prefixed attributes on a namespace, but got '" +
                       name + "'. Please rename the attribute.");
  attrs.set(Value(name), std::move(value));
  return true;
}

std::string Namespace::repr() const {
  std::string out = "<Namespace {";
  bool first = true;
  for (const auto& [k, v] : attrs.items) {
    if (!first) out += ", ";
    first = false;
    out += k.repr() + ": " + v.repr();
  }
  return out + "}>";
}

std::vector<Value> CallArgs::bind(const std::string& fn_name, const std::vector<std::string>& params,
                                  std::size_t required) const {
  if (positional.size() > params.size())
    throw RuntimeError(fn_name + "() takes at most " + std::to_string(params.size()) + " positional arguments (" +
                       std::to_string(positional.size()) + " given)");
  std::vector<Value> out(params.size());
  std::vector<bool> set(params.size(), false);
  for (std::size_t i = 0; i < positional.size(); ++i) {
    out[i] = positional[i];
    set[i] = true;
  }
  for (const auto& [name, value] : keyword) {
    auto it = std::find(params.begin(), params.end(), name);
    if (it == params.end()) throw RuntimeError(fn_name + "() got an unexpected keyword argument '" + name + "'");
    auto idx = static_cast<std::size_t>(it - params.begin());
    if (set[idx]) throw RuntimeError(fn_name + "() got multiple values for argument '" + name + "'");
    out[idx] = value;
    set[idx] = true;
  }
  for (std::size_t i = 0; i < required; ++i)
    if (!set[i]) throw RuntimeError(fn_name + "() missing required argument '" + params[i] + "'");
  return out;
}

namespace {

std::string quote(const std::string& s, bool ensure_ascii) {
  std::string q = text::json_quote(s);
  if (!ensure_ascii || text::is_ascii(q)) return q;
  std::string out;
  char buf[16];
  for (char32_t c : text::decode(q)) {
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
    } else if (c < 0x10000) {
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      out += buf;
    } else {
      char32_t v = c - 0x10000;
      std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", static_cast<unsigned>(0xD800 + (v >> 10)),
                    static_cast<unsigned>(0xDC00 + (v & 0x3FF)));
      out += buf;
    }
  }
  return out;
}

std::string json_key(const Value& k) {
  if (k.is_string()) return k.as_string();
  if (k.is_bool()) return k.as_bool() ? "true" : "false";
  if (k.is_int()) return std::to_string(k.as_int());
  if (k.is_float()) return text::float_repr(k.as_double());
  if (k.is_none()) return "null";
  throw RuntimeError("keys must be str, int, float, bool or None, not " + k.type_name());
}

void dump(const Value& v, const JsonOptions& o, int depth, std::string& out) {
  const std::string item_sep = o.separators ? o.separators->first : (o.indent ? "," : ", ");
  const std::string key_sep = o.separators ? o.separators->second : ": ";
  auto newline = [&](int d) {
    out.push_back('\n');
    for (int i = 0; i < d; ++i) out += *o.indent;
  };
  switch (v.kind()) {
    case Value::Kind::None: out += "null"; return;
    case Value::Kind::Bool: out += v.as_bool() ? "true" : "false"; return;
    case Value::Kind::Int: out += std::to_string(v.as_int()); return;
    case Value::Kind::Float: {
      double d = v.as_double();
      out += std::isnan(d) ? "NaN" : std::isinf(d) ? (d < 0 ? "-Infinity" : "Infinity") : text::float_repr(d);
      return;
    }
    case Value::Kind::String: out += quote(v.as_string(), o.ensure_ascii); return;
    case Value::Kind::List:
    case Value::Kind::Tuple: {
      const List& l = v.as_list();
      if (l.empty()) {
        out += "[]";
        return;
      }
      out.push_back('[');
      for (std::size_t i = 0; i < l.size(); ++i) {
        if (i) out += item_sep;
        if (o.indent) newline(depth + 1);
        dump(l[i], o, depth + 1, out);
      }
      if (o.indent) newline(depth);
      out.push_back(']');
      return;
    }
    case Value::Kind::Dict: {
      const Dict& d = v.as_dict();
      if (d.items.empty()) {
        out += "{}";
        return;
      }
      std::vector<std::pair<std::string, const Value*>> entries;
      for (const auto& [k, val] : d.items) entries.emplace_back(json_key(k), &val);
      if (o.sort_keys)
        std::stable_sort(entries.begin(), entries.end(), [](auto& a, auto& b) { return a.first < b.first; });
      out.push_back('{');
      for (std::size_t i = 0; i < entries.size(); ++i) {
        if (i) out += item_sep;
        if (o.indent) newline(depth + 1);
        out += quote(entries[i].first, o.ensure_ascii) + key_sep;
        dump(*entries[i].second, o, depth + 1, out);
      }
      if (o.indent) newline(depth);
      out.push_back('}');
      return;
    }
    default:
      throw RuntimeError("Object of type " + v.type_name() + " is not JSON serializable");
  }
}

}  // namespace

std::string to_json(const Value& v, const JsonOptions& opts) {
  std::string out;
  dump(v, opts, 0, out);
  return out;
}

Value from_json(const nlohmann::ordered_json& j) {
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null: return Value::none();
    case nlohmann::ordered_json::value_t::boolean: return Value(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer: return Value(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      auto u = j.get<uint64_t>();
      if (u <= static_cast<uint64_t>(INT64_MAX)) return Value(static_cast<int64_t>(u));
      return Value(static_cast<double>(u));
    }
    case nlohmann::ordered_json::value_t::number_float: return Value(j.get<double>());
    case nlohmann::ordered_json::value_t::string: return Value(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      List l;
      l.reserve(j.size());
      for (const auto& e : j) l.push_back(from_json(e));
      return Value::list(std::move(l));
    }
    case nlohmann::ordered_json::value_t::object: {
      Dict d;
      d.items.reserve(j.size());
      for (auto it = j.begin(); it != j.end(); ++it) d.items.emplace_back(Value(it.key()), from_json(it.value()));
      return Value::dict(std::move(d));
    }
    default: throw Error("unsupported JSON value (binary) in template input");
  }
}

nlohmann::ordered_json to_json_value(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::None:
    case Value::Kind::Undefined: return nullptr;
    case Value::Kind::Bool: return v.as_bool();
    case Value::Kind::Int: return v.as_int();
    case Value::Kind::Float: return v.as_double();
    case Value::Kind::String: return v.as_string();
    case Value::Kind::List:
    case Value::Kind::Tuple: {
      auto arr = nlohmann::ordered_json::array();
      for (const auto& e : v.as_list()) arr.push_back(to_json_value(e));
      return arr;
    }
    case Value::Kind::Dict: {
      auto obj = nlohmann::ordered_json::object();
      for (const auto& [k, e] : v.as_dict().items) obj[k.str()] = to_json_value(e);
      return obj;
    }
    default: return v.repr();
  }
}

}  // namespace llmstudio::tokenizer::jinja
