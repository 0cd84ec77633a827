// Sandboxed attribute/item access, Python methods of str/dict/list, iteration and string formatting
// (see jinja_methods.h).
#include "llmstudio/tokenizer/jinja_methods.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "llmstudio/tokenizer/jinja_text.h"

namespace llmstudio::tokenizer::jinja {
namespace {

std::string object_type(const Value& v) {
  if (v.is_none()) return "'None'";
  return "'" + v.type_name() + " object'";
}

Value no_attribute(const Value& obj, const std::string& name) {
  return Value::undefined(object_type(obj) + " has no attribute " + text::py_repr(name));
}

Value no_element(const Value& obj, const Value& key) {
  if (key.is_string()) return no_attribute(obj, key.as_string());
  return Value::undefined(object_type(obj) + " has no element " + key.repr());
}

Value unsafe(const Value& obj, const std::string& name) {
  return Value::undefined("access to attribute " + text::py_repr(name) + " of " + text::py_repr(obj.type_name()) +
                          " object is unsafe.");
}

std::optional<std::string> opt_str(const Value& v, const char* what) {
  if (v.is_none() || v.is_undefined()) return std::nullopt;
  if (!v.is_string()) throw RuntimeError(std::string(what) + " arg must be None or str");
  return v.as_string();
}

int64_t opt_int(const Value& v, int64_t dflt) {
  if (v.is_none() || v.is_undefined()) return dflt;
  if (!v.is_int() && !v.is_bool()) throw RuntimeError("'" + v.type_name() + "' object cannot be interpreted as an integer");
  return v.as_int();
}

Value string_list(const std::vector<std::string>& parts) {
  List l;
  l.reserve(parts.size());
  for (const auto& p : parts) l.emplace_back(p);
  return Value::list(std::move(l));
}

bool affix_match(const std::string& s, const Value& affix, bool prefix) {
  auto one = [&](const Value& a) {
    if (!a.is_string()) throw RuntimeError(std::string(prefix ? "startswith" : "endswith") +
                                           " first arg must be str or a tuple of str, not " + a.type_name());
    const std::string& x = a.as_string();
    if (x.size() > s.size()) return false;
    return prefix ? s.compare(0, x.size(), x) == 0 : s.compare(s.size() - x.size(), x.size(), x) == 0;
  };
  if (affix.is_tuple()) {
    for (const auto& a : affix.as_list())
      if (one(a)) return true;
    return false;
  }
  return one(affix);
}

std::string pad(const std::string& s, int64_t width, char align, const std::string& fill) {
  auto len = static_cast<int64_t>(text::length(s));
  if (width <= len) return s;
  int64_t total = width - len;
  int64_t left = align == '<' ? 0 : align == '>' ? total : total / 2;
  if (align == '^' && fill.empty()) left = total / 2;
  std::string out;
  for (int64_t i = 0; i < left; ++i) out += fill;
  out += s;
  for (int64_t i = 0; i < total - left; ++i) out += fill;
  return out;
}

template <typename F>
Value method(F f) {
  return Value::function(Function(std::move(f)));
}

std::optional<Value> str_method(const std::string& s, const std::string& name) {
  static const std::vector<std::string> kChars = {"chars"};
  if (name == "strip" || name == "lstrip" || name == "rstrip")
    return method([s, name](CallArgs& a) {
      auto v = a.bind(name, kChars, 0);
      return Value(text::strip(s, opt_str(v[0], name.c_str()), name != "rstrip", name != "lstrip"));
    });
  if (name == "split" || name == "rsplit")
    return method([s, name](CallArgs& a) {
      auto v = a.bind(name, {"sep", "maxsplit"}, 0);
      return string_list(text::split(s, opt_str(v[0], "sep"), opt_int(v[1], -1), name == "rsplit"));
    });
  if (name == "splitlines")
    return method([s](CallArgs& a) {
      auto v = a.bind("splitlines", {"keepends"}, 0);
      return string_list(text::splitlines(s, v[0].truthy()));
    });
  if (name == "startswith" || name == "endswith")
    return method([s, name](CallArgs& a) {
      auto v = a.bind(name, {"affix"}, 1);
      return Value(affix_match(s, v[0], name == "startswith"));
    });
  if (name == "upper") return method([s](CallArgs&) { return Value(text::upper(s)); });
  if (name == "lower" || name == "casefold") return method([s](CallArgs&) { return Value(text::lower(s)); });
  if (name == "title") return method([s](CallArgs&) { return Value(text::title(s)); });
  if (name == "capitalize") return method([s](CallArgs&) { return Value(text::capitalize(s)); });
  if (name == "replace")
    return method([s](CallArgs& a) {
      auto v = a.bind("replace", {"old", "new", "count"}, 2);
      if (!v[0].is_string() || !v[1].is_string()) throw RuntimeError("replace() arguments must be str");
      return Value(text::replace(s, v[0].as_string(), v[1].as_string(), opt_int(v[2], -1)));
    });
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex")
    return method([s, name](CallArgs& a) {
      auto v = a.bind(name, {"sub"}, 1);
      if (!v[0].is_string()) throw RuntimeError("must be str, not " + v[0].type_name());
      int64_t r = text::find(s, v[0].as_string(), name[0] == 'r');
      if (r < 0 && name.find("index") != std::string::npos) throw RuntimeError("substring not found");
      return Value(r);
    });
  if (name == "count")
    return method([s](CallArgs& a) {
      auto v = a.bind("count", {"sub"}, 1);
      if (!v[0].is_string()) throw RuntimeError("must be str, not " + v[0].type_name());
      return Value(text::count(s, v[0].as_string()));
    });
  if (name == "join")
    return method([s](CallArgs& a) {
      auto v = a.bind("join", {"iterable"}, 1);
      std::string out;
      std::size_t i = 0;
      for (const auto& item : iterate(v[0])) {
        if (!item.is_string())
          throw RuntimeError("sequence item " + std::to_string(i) + ": expected str instance, " + item.type_name() +
                             " found");
        if (i++) out += s;
        out += item.as_string();
      }
      return Value(out);
    });
  if (name == "format") return method([s](CallArgs& a) { return Value(str_format(s, a)); });
  if (name == "isdigit" || name == "isalpha" || name == "isalnum" || name == "isspace" || name == "isupper" ||
      name == "islower" || name == "isnumeric" || name == "isdecimal")
    return method([s, name](CallArgs&) {
      std::u32string cps = text::decode(s);
      if (cps.empty()) return Value(false);
      bool cased = false;
      for (char32_t c : cps) {
        bool digit = c >= '0' && c <= '9';
        bool alpha = text::to_upper(c) != text::to_lower(c) || (c >= 0x80 && !text::is_space(c) && !digit);
        if (name == "isdigit" || name == "isnumeric" || name == "isdecimal") {
          if (!digit) return Value(false);
        } else if (name == "isalpha") {
          if (!alpha) return Value(false);
        } else if (name == "isalnum") {
          if (!alpha && !digit) return Value(false);
        } else if (name == "isspace") {
          if (!text::is_space(c)) return Value(false);
        } else if (text::to_upper(c) != text::to_lower(c)) {
          cased = true;
          if (name == "isupper" && text::to_upper(c) != c) return Value(false);
          if (name == "islower" && text::to_lower(c) != c) return Value(false);
        }
      }
      return Value(name == "isupper" || name == "islower" ? cased : true);
    });
  if (name == "zfill")
    return method([s](CallArgs& a) {
      auto v = a.bind("zfill", {"width"}, 1);
      int64_t w = opt_int(v[0], 0), len = static_cast<int64_t>(text::length(s));
      if (w <= len) return Value(s);
      std::size_t sign = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
      return Value(s.substr(0, sign) + std::string(static_cast<std::size_t>(w - len), '0') + s.substr(sign));
    });
  if (name == "center" || name == "ljust" || name == "rjust")
    return method([s, name](CallArgs& a) {
      auto v = a.bind(name, {"width", "fillchar"}, 1);
      std::string fill = v[1].is_string() ? v[1].as_string() : " ";
      return Value(pad(s, opt_int(v[0], 0), name == "center" ? '^' : name == "ljust" ? '<' : '>', fill));
    });
  if (name == "removeprefix" || name == "removesuffix")
    return method([s, name](CallArgs& a) {
      auto v = a.bind(name, {"affix"}, 1);
      if (!v[0].is_string()) throw RuntimeError(name + "() argument must be str");
      const std::string& x = v[0].as_string();
      if (name == "removeprefix") return Value(s.rfind(x, 0) == 0 ? s.substr(x.size()) : s);
      return Value(s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0
                       ? s.substr(0, s.size() - x.size())
                       : s);
    });
  if (name == "partition" || name == "rpartition")
    return method([s, name](CallArgs& a) {
      auto v = a.bind(name, {"sep"}, 1);
      if (!v[0].is_string() || v[0].as_string().empty()) throw RuntimeError("empty separator");
      const std::string& sep = v[0].as_string();
      std::size_t f = name == "partition" ? s.find(sep) : s.rfind(sep);
      if (f == std::string::npos)
        return name == "partition" ? Value::tuple({Value(s), Value(""), Value("")})
                                   : Value::tuple({Value(""), Value(""), Value(s)});
      return Value::tuple({Value(s.substr(0, f)), Value(sep), Value(s.substr(f + sep.size()))});
    });
  return std::nullopt;
}

std::optional<Value> dict_method(const Value& obj, const std::string& name) {
  if (name == "items")
    return method([obj](CallArgs&) {
      List l;
      for (const auto& [k, v] : obj.as_dict().items) l.push_back(Value::tuple({k, v}));
      return Value::list(std::move(l));
    });
  if (name == "keys")
    return method([obj](CallArgs&) {
      List l;
      for (const auto& kv : obj.as_dict().items) l.push_back(kv.first);
      return Value::list(std::move(l));
    });
  if (name == "values")
    return method([obj](CallArgs&) {
      List l;
      for (const auto& kv : obj.as_dict().items) l.push_back(kv.second);
      return Value::list(std::move(l));
    });
  if (name == "get")
    return method([obj](CallArgs& a) {
      auto v = a.bind("get", {"key", "default"}, 1);
      const Value* found = obj.as_dict().find(v[0]);
      return found ? *found : (v[1].is_undefined() ? Value::none() : v[1]);
    });
  if (name == "copy") return method([obj](CallArgs&) { return Value::dict(obj.as_dict()); });
  return std::nullopt;
}

std::optional<Value> list_method(const Value& obj, const std::string& name) {
  if (name == "index")
    return method([obj](CallArgs& a) {
      auto v = a.bind("index", {"value"}, 1);
      const List& l = obj.as_list();
      for (std::size_t i = 0; i < l.size(); ++i)
        if (l[i] == v[0]) return Value(static_cast<int64_t>(i));
      throw RuntimeError(v[0].repr() + " is not in list");
    });
  if (name == "count")
    return method([obj](CallArgs& a) {
      auto v = a.bind("count", {"value"}, 1);
      int64_t n = 0;
      for (const auto& x : obj.as_list()) n += (x == v[0]) ? 1 : 0;
      return Value(n);
    });
  if (name == "copy" && obj.is_list()) return method([obj](CallArgs&) { return Value::list(obj.as_list()); });
  return std::nullopt;
}

bool is_unsafe_method(const Value& obj, const std::string& name) {
  static const std::vector<std::string> kList = {"append", "extend", "insert", "pop", "remove", "reverse", "sort", "clear",
                                                 "__setitem__", "__delitem__"};
  static const std::vector<std::string> kDict = {"clear", "pop", "popitem", "setdefault", "update"};
  if (!name.empty() && name[0] == '_') return true;
  if (obj.is_list()) return std::find(kList.begin(), kList.end(), name) != kList.end();
  if (obj.is_dict()) return std::find(kDict.begin(), kDict.end(), name) != kDict.end();
  return false;
}

}  // namespace

Value get_attr_only(const Value& obj, const std::string& name) {
  if (obj.is_undefined()) obj.fail_undefined();
  if (is_unsafe_method(obj, name)) return unsafe(obj, name);
  std::optional<Value> m;
  if (obj.is_string()) m = str_method(obj.as_string(), name);
  else if (obj.is_dict()) m = dict_method(obj, name);
  else if (obj.is_sequence()) m = list_method(obj, name);
  else if (obj.is_object()) m = obj.as_object()->get_attr(name);
  if (m) return *m;
  return no_attribute(obj, name);
}

Value get_attr(const Value& obj, const std::string& name) {
  if (obj.is_undefined()) obj.fail_undefined();
  Value v = get_attr_only(obj, name);
  if (!v.is_undefined()) return v;
  if (obj.is_dict()) {
    if (const Value* found = obj.as_dict().find(name)) return *found;
  }
  return v;
}

Value get_item(const Value& obj, const Value& key) {
  if (obj.is_undefined()) obj.fail_undefined();
  if (obj.is_dict()) {
    if (const Value* found = obj.as_dict().find(key)) return *found;
  } else if ((obj.is_sequence() || obj.is_string()) && (key.is_int() || key.is_bool())) {
    int64_t i = key.as_int();
    if (obj.is_string()) {
      const std::string& s = obj.as_string();
      auto n = static_cast<int64_t>(text::is_ascii(s) ? s.size() : text::length(s));
      if (i < 0) i += n;
      if (i >= 0 && i < n) return Value(text::slice(s, i, i + 1, 1));
    } else {
      const List& l = obj.as_list();
      auto n = static_cast<int64_t>(l.size());
      if (i < 0) i += n;
      if (i >= 0 && i < n) return l[static_cast<std::size_t>(i)];
    }
  }
  if (key.is_string()) {
    Value v = get_attr_only(obj, key.as_string());
    if (!v.is_undefined()) return v;
  }
  return no_element(obj, key);
}

Value get_slice(const Value& obj, const Value& start, const Value& stop, const Value& step) {
  if (obj.is_undefined()) obj.fail_undefined();
  auto bound = [](const Value& v) -> std::optional<int64_t> {
    if (v.is_none() || v.is_undefined()) return std::nullopt;
    if (!v.is_int() && !v.is_bool())
      throw RuntimeError("slice indices must be integers or None, not " + v.type_name());
    return v.as_int();
  };
  auto b = bound(start), e = bound(stop), st = bound(step);
  if (obj.is_string()) return Value(text::slice(obj.as_string(), b, e, st));
  if (obj.is_sequence()) {
    const List& l = obj.as_list();
    List out;
    for (int64_t i : text::slice_indices(static_cast<int64_t>(l.size()), b, e, st))
      out.push_back(l[static_cast<std::size_t>(i)]);
    return obj.is_tuple() ? Value::tuple(std::move(out)) : Value::list(std::move(out));
  }
  return Value::undefined(object_type(obj) + " has no element slice");
}

List iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::Undefined: return {};
    case Value::Kind::List:
    case Value::Kind::Tuple: return v.as_list();
    case Value::Kind::String: {
      List out;
      for (char32_t c : text::decode(v.as_string())) out.emplace_back(text::encode(std::u32string(1, c)));
      return out;
    }
    case Value::Kind::Dict: {
      List out;
      for (const auto& kv : v.as_dict().items) out.push_back(kv.first);
      return out;
    }
    default: throw RuntimeError("'" + v.type_name() + "' object is not iterable");
  }
}

int64_t py_len(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::Undefined: return 0;
    case Value::Kind::String: return static_cast<int64_t>(text::length(v.as_string()));
    case Value::Kind::List:
    case Value::Kind::Tuple: return static_cast<int64_t>(v.as_list().size());
    case Value::Kind::Dict: return static_cast<int64_t>(v.as_dict().items.size());
    default: throw RuntimeError("object of type '" + v.type_name() + "' has no len()");
  }
}

bool contains(const Value& container, const Value& item) {
  if (container.is_string()) {
    if (item.is_undefined()) item.fail_undefined();
    if (!item.is_string())
      throw RuntimeError("'in <string>' requires string as left operand, not " + item.type_name());
    return container.as_string().find(item.as_string()) != std::string::npos;
  }
  if (container.is_dict()) return container.as_dict().find(item) != nullptr;
  if (container.is_sequence() || container.is_undefined()) {
    for (const auto& x : iterate(container))
      if (x == item) return true;
    return false;
  }
  throw RuntimeError("argument of type '" + container.type_name() + "' is not iterable");
}

namespace {

// Formats one value with a Python format spec ([[fill]align][sign][0][width][,][.precision][type]).
std::string format_spec(const Value& v, const std::string& spec) {
  std::size_t i = 0;
  std::string fill = " ";
  char align = 0, sign = '-';
  auto is_align = [](char c) { return c == '<' || c == '>' || c == '^' || c == '='; };
  if (spec.size() >= 2 && is_align(spec[1])) {
    fill = spec.substr(0, 1);
    align = spec[1];
    i = 2;
  } else if (!spec.empty() && is_align(spec[0])) {
    align = spec[0];
    i = 1;
  }
  if (i < spec.size() && (spec[i] == '+' || spec[i] == '-' || spec[i] == ' ')) sign = spec[i++];
  if (i < spec.size() && spec[i] == '0') {
    if (!align) {
      fill = "0";
      align = '=';
    }
    ++i;
  }
  int64_t width = 0;
  while (i < spec.size() && std::isdigit(static_cast<unsigned char>(spec[i]))) width = width * 10 + (spec[i++] - '0');
  int precision = -1;
  if (i < spec.size() && spec[i] == '.') {
    precision = 0;
    ++i;
    while (i < spec.size() && std::isdigit(static_cast<unsigned char>(spec[i]))) precision = precision * 10 + (spec[i++] - '0');
  }
  char type = i < spec.size() ? spec[i] : 0;
  std::string body;
  bool numeric = v.is_number() && !(v.is_bool() && type == 0);
  if (type == 'f' || type == 'F' || type == 'e' || type == 'E' || type == '%' || (type == 0 && v.is_float() && precision >= 0)) {
    char buf[512];
    double d = v.as_double() * (type == '%' ? 100.0 : 1.0);
    char t = type == 0 ? 'g' : type == '%' ? 'f' : type;
    std::snprintf(buf, sizeof buf, (std::string("%.*") + t).c_str(), precision < 0 ? 6 : precision, std::fabs(d));
    body = buf;
    if (type == '%') body += "%";
    if (std::signbit(d)) body = "-" + body;
    else if (sign != '-') body = std::string(1, sign) + body;
  } else if (type == 'd' || type == 'x' || type == 'X' || type == 'b' || type == 'o' || (type == 0 && numeric && !v.is_float())) {
    int64_t n = v.as_int();
    char buf[80];
    const char* f = type == 'x' ? "%llx" : type == 'X' ? "%llX" : type == 'o' ? "%llo" : "%llu";
    unsigned long long mag = n < 0 ? static_cast<unsigned long long>(-(n + 1)) + 1 : static_cast<unsigned long long>(n);
    if (type == 'b') {
      body.clear();
      do {
        body.insert(body.begin(), static_cast<char>('0' + (mag & 1)));
        mag >>= 1;
      } while (mag);
    } else {
      std::snprintf(buf, sizeof buf, f, mag);
      body = buf;
    }
    if (n < 0) body = "-" + body;
    else if (sign != '-') body = std::string(1, sign) + body;
  } else {
    body = v.str();
    if (precision >= 0) body = text::slice(body, std::nullopt, precision, std::nullopt);
  }
  if (!align) align = numeric ? '>' : '<';
  if (align == '=') {
    std::size_t sgn = (!body.empty() && (body[0] == '-' || body[0] == '+' || body[0] == ' ')) ? 1 : 0;
    return body.substr(0, sgn) + pad(body.substr(sgn), width - static_cast<int64_t>(sgn), '>', fill);
  }
  return pad(body, width, align, fill);
}

}  // namespace

std::string str_format(const std::string& fmt, const CallArgs& args) {
  std::string out;
  std::size_t auto_idx = 0;
  for (std::size_t i = 0; i < fmt.size(); ++i) {
    char c = fmt[i];
    if (c == '}') {
      if (i + 1 < fmt.size() && fmt[i + 1] == '}') ++i;
      else throw RuntimeError("Single '}' encountered in format string");
      out.push_back('}');
      continue;
    }
    if (c != '{') {
      out.push_back(c);
      continue;
    }
    if (i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out.push_back('{');
      ++i;
      continue;
    }
    std::size_t close = fmt.find('}', i);
    if (close == std::string::npos) throw RuntimeError("Single '{' encountered in format string");
    std::string field = fmt.substr(i + 1, close - i - 1);
    i = close;
    std::string spec, conv;
    if (auto colon = field.find(':'); colon != std::string::npos) {
      spec = field.substr(colon + 1);
      field.resize(colon);
    }
    if (auto bang = field.find('!'); bang != std::string::npos) {
      conv = field.substr(bang + 1);
      field.resize(bang);
    }
    std::size_t name_end = field.find_first_of(".[");
    std::string head = field.substr(0, name_end);
    Value v;
    if (head.empty()) {
      if (auto_idx >= args.positional.size()) throw RuntimeError("Replacement index " + std::to_string(auto_idx) + " out of range");
      v = args.positional[auto_idx++];
    } else if (std::all_of(head.begin(), head.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
      std::size_t idx = std::stoul(head);
      if (idx >= args.positional.size()) throw RuntimeError("Replacement index " + head + " out of range");
      v = args.positional[idx];
    } else {
      auto it = std::find_if(args.keyword.begin(), args.keyword.end(), [&](auto& kv) { return kv.first == head; });
      if (it == args.keyword.end()) throw RuntimeError("KeyError: " + text::py_repr(head));
      v = it->second;
    }
    for (std::size_t p = name_end; p != std::string::npos && p < field.size();) {
      if (field[p] == '.') {
        std::size_t e = field.find_first_of(".[", p + 1);
        v = get_attr(v, field.substr(p + 1, e == std::string::npos ? std::string::npos : e - p - 1));
        p = e;
      } else {
        std::size_t e = field.find(']', p);
        std::string k = field.substr(p + 1, e - p - 1);
        bool digits = !k.empty() && std::all_of(k.begin(), k.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
        v = get_item(v, digits ? Value(static_cast<int64_t>(std::stoll(k))) : Value(k));
        p = e + 1;
      }
    }
    if (conv == "r") v = Value(v.repr());
    else if (conv == "s") v = Value(v.str());
    out += format_spec(v, spec);
  }
  return out;
}

std::string percent_format(const std::string& fmt, const Value& args) {
  List positional = args.is_tuple() ? args.as_list() : List{args};
  std::size_t next_arg = 0;
  std::string out;
  for (std::size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%') {
      out.push_back(fmt[i]);
      continue;
    }
    if (++i >= fmt.size()) throw RuntimeError("incomplete format");
    Value v;
    bool have = false;
    if (fmt[i] == '(') {
      std::size_t e = fmt.find(')', i);
      if (e == std::string::npos || !args.is_dict()) throw RuntimeError("format requires a mapping");
      const Value* found = args.as_dict().find(fmt.substr(i + 1, e - i - 1));
      if (!found) throw RuntimeError("KeyError: " + text::py_repr(fmt.substr(i + 1, e - i - 1)));
      v = *found;
      have = true;
      i = e + 1;
    }
    std::string flags;
    while (i < fmt.size() && std::string_view("-+ 0#").find(fmt[i]) != std::string_view::npos) flags += fmt[i++];
    std::string spec;
    while (i < fmt.size() && (std::isdigit(static_cast<unsigned char>(fmt[i])) || fmt[i] == '.')) spec += fmt[i++];
    if (i >= fmt.size()) throw RuntimeError("incomplete format");
    char t = fmt[i];
    if (t == '%') {
      out.push_back('%');
      continue;
    }
    if (!have) {
      if (next_arg >= positional.size()) throw RuntimeError("not enough arguments for format string");
      v = positional[next_arg++];
    }
    char align = flags.find('-') != std::string::npos ? '<' : '>';
    // "%05d" zero-pads after the sign (Python's "=" alignment); "%-5d" ignores the 0 flag.
    bool zero = flags.find('0') != std::string::npos && align == '>';
    std::string pyspec = zero ? "" : std::string(1, align);
    if (flags.find('+') != std::string::npos) pyspec += "+";
    if (zero) pyspec += "0";
    std::string width = spec.substr(0, spec.find('.'));
    std::string prec = spec.find('.') == std::string::npos ? "" : spec.substr(spec.find('.'));
    if (t == 's' || t == 'r' || t == 'a') {
      std::string s = t == 's' ? v.str() : v.repr();
      if (!prec.empty()) s = text::slice(s, std::nullopt, std::stoll("0" + prec.substr(1)), std::nullopt);
      out += pad(s, width.empty() ? 0 : std::stoll(width), align, " ");
    } else if (t == 'd' || t == 'i' || t == 'x' || t == 'X' || t == 'o') {
      if (!v.is_number()) throw RuntimeError("%" + std::string(1, t) + " format: a real number is required, not " + v.type_name());
      Value iv(static_cast<int64_t>(v.is_float() ? std::trunc(v.as_double()) : v.as_int()));
      out += format_spec(iv, pyspec + width + (t == 'i' ? 'd' : t));
    } else if (t == 'f' || t == 'F' || t == 'e' || t == 'E' || t == 'g') {
      if (!v.is_number()) throw RuntimeError("must be real number, not " + v.type_name());
      out += format_spec(Value(v.as_double()), pyspec + width + (prec.empty() ? ".6" : prec) + t);
    } else {
      throw RuntimeError("unsupported format character '" + std::string(1, t) + "'");
    }
  }
  if (next_arg < positional.size() && !args.is_dict() && args.is_tuple())
    throw RuntimeError("not all arguments converted during string formatting");
  return out;
}

}  // namespace llmstudio::tokenizer::jinja
