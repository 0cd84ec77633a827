// The runtime value of the Jinja engine, modelled on the Python objects jinja2 works with: Undefined, None, bool,
// int, float, str, list, tuple, dict (insertion-ordered), objects with attributes (namespace, loop) and callables.
// Owns Python semantics of these values: truthiness, ==, ordering, str()/repr(), json.dumps (transformers' tojson)
// and the conversion from/to nlohmann::ordered_json.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "llmstudio/core/error.h"

namespace llmstudio::tokenizer::jinja {

class Value;
struct Dict;
struct Object;
struct CallArgs;
using List = std::vector<Value>;
using ListPtr = std::shared_ptr<const List>;
using DictPtr = std::shared_ptr<const Dict>;
using ObjectPtr = std::shared_ptr<Object>;
using Function = std::function<Value(CallArgs&)>;
using FunctionPtr = std::shared_ptr<const Function>;

// Raised for errors of the template's own making at run time (TypeError, UndefinedError, raise_exception, ...).
// The interpreter catches it and rethrows an llmstudio::Error that carries the template position.
class RuntimeError : public Error {
 public:
  explicit RuntimeError(const std::string& message, bool from_template = false)
      : Error(message), from_template_(from_template) {}
  bool from_template() const { return from_template_; }  // raise_exception(): the template's own message

 private:
  bool from_template_;
};

struct NoneType {
  bool operator==(const NoneType&) const = default;
};

// Why a value is undefined, for jinja2's error messages ("'x' is undefined", "'dict object' has no attribute 'y'").
struct UndefinedInfo {
  std::string message;
};

class Value {
 public:
  enum class Kind { Undefined, None, Bool, Int, Float, String, List, Tuple, Dict, Object, Function };

  Value() : data_(UndefinedInfo{}) {}
  static Value undefined(std::string message) { return Value(UndefinedInfo{std::move(message)}); }
  static Value none() { return Value(NoneType{}); }
  Value(bool b) : data_(b) {}
  Value(int v) : data_(static_cast<int64_t>(v)) {}
  Value(int64_t v) : data_(v) {}
  Value(double v) : data_(v) {}
  Value(std::string s, bool safe = false) : data_(std::move(s)), safe_(safe) {}
  Value(const char* s) : data_(std::string(s)) {}
  static Value list(List items);
  static Value tuple(List items);
  static Value dict(Dict d);
  Value(ObjectPtr o) : data_(std::move(o)) {}
  static Value function(Function f);

  Kind kind() const;
  bool is_undefined() const { return std::holds_alternative<UndefinedInfo>(data_); }
  bool is_none() const { return std::holds_alternative<NoneType>(data_); }
  bool is_bool() const { return std::holds_alternative<bool>(data_); }
  bool is_int() const { return std::holds_alternative<int64_t>(data_); }
  bool is_float() const { return std::holds_alternative<double>(data_); }
  bool is_number() const { return is_int() || is_float() || is_bool(); }  // Python: bool is an int
  bool is_string() const { return std::holds_alternative<std::string>(data_); }
  bool is_list() const { return std::holds_alternative<ListPtr>(data_) && !is_tuple_; }
  bool is_tuple() const { return std::holds_alternative<ListPtr>(data_) && is_tuple_; }
  bool is_sequence() const { return std::holds_alternative<ListPtr>(data_); }  // list or tuple
  bool is_dict() const { return std::holds_alternative<DictPtr>(data_); }
  bool is_object() const { return std::holds_alternative<ObjectPtr>(data_); }
  bool is_function() const { return std::holds_alternative<FunctionPtr>(data_); }
  bool is_safe() const { return safe_; }  // markupsafe.Markup

  bool as_bool() const { return std::get<bool>(data_); }
  int64_t as_int() const;  // int or bool
  double as_double() const;  // any number
  const std::string& as_string() const { return std::get<std::string>(data_); }
  const List& as_list() const { return *std::get<ListPtr>(data_); }  // list or tuple
  const Dict& as_dict() const { return *std::get<DictPtr>(data_); }
  const ObjectPtr& as_object() const { return std::get<ObjectPtr>(data_); }
  const Function& as_function() const { return *std::get<FunctionPtr>(data_); }
  const std::string& undefined_message() const { return std::get<UndefinedInfo>(data_).message; }

  bool truthy() const;
  std::string str() const;   // Python str(); Undefined -> ""
  std::string repr() const;  // Python repr()
  std::string type_name() const;  // Python type name: 'str', 'dict', 'NoneType', ...
  // Throws the UndefinedError this value stands for (used when an operation needs a defined value).
  [[noreturn]] void fail_undefined() const;

  // Python ==. Numbers compare across int/float/bool; list vs tuple is never equal.
  friend bool operator==(const Value& a, const Value& b);
  // Python <; throws RuntimeError for unorderable types.
  static bool less(const Value& a, const Value& b);

 private:
  explicit Value(UndefinedInfo u) : data_(std::move(u)) {}
  explicit Value(NoneType n) : data_(n) {}
  std::variant<UndefinedInfo, NoneType, bool, int64_t, double, std::string, ListPtr, DictPtr, ObjectPtr, FunctionPtr>
      data_;
  bool is_tuple_ = false;
  bool safe_ = false;
};

// Insertion-ordered mapping (Python dict).
struct Dict {
  std::vector<std::pair<Value, Value>> items;
  const Value* find(const Value& key) const;
  const Value* find(const std::string& key) const;
  void set(const Value& key, Value value);
};

// Objects with attributes: jinja2's Namespace, the loop variable, ...
struct Object {
  virtual ~Object() = default;
  virtual std::string type_name() const = 0;
  virtual std::optional<Value> get_attr(const std::string& name) const = 0;
  // Assignment through `{% set obj.attr = ... %}`; only namespaces accept it.
  virtual bool set_attr(const std::string& /*name*/, Value /*value*/) { return false; }
  virtual std::string repr() const { return "<" + type_name() + " object>"; }
};

// jinja2.utils.Namespace as transformers subclasses it (underscore-prefixed names are rejected).
struct Namespace : Object {
  Dict attrs;
  std::string type_name() const override { return "Namespace"; }
  std::optional<Value> get_attr(const std::string& name) const override;
  bool set_attr(const std::string& name, Value value) override;
  std::string repr() const override;
};

struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;

  // Binds arguments to parameter names like a Python signature (name, has default?); missing optional
  // parameters come back as Undefined. Throws RuntimeError for unexpected or missing arguments.
  std::vector<Value> bind(const std::string& fn_name, const std::vector<std::string>& params,
                          std::size_t required) const;
};

// json.dumps(value, ensure_ascii=False, indent=indent, separators=separators, sort_keys=sort_keys).
struct JsonOptions {
  std::optional<std::string> indent;  // None, or the indent string (int n -> n spaces)
  std::optional<std::pair<std::string, std::string>> separators;
  bool sort_keys = false;
  bool ensure_ascii = false;  // escape non-ASCII as \uXXXX (surrogate pairs above the BMP)
};
std::string to_json(const Value& v, const JsonOptions& opts);

Value from_json(const nlohmann::ordered_json& j);
nlohmann::ordered_json to_json_value(const Value& v);

}  // namespace llmstudio::tokenizer::jinja
