// Attribute and item access with the semantics of jinja2's ImmutableSandboxedEnvironment (obj.x tries the Python
// attribute then the item, obj[x] the item then the attribute; mutating methods are unsafe), the Python methods
// templates call on str/dict/list values, iteration, len(), and Python's `%` / str.format string formatting.
#pragma once

#include <string>

#include "llmstudio/tokenizer/jinja_value.h"

namespace llmstudio::tokenizer::jinja {

// `obj.name`: Python attribute (methods of str/dict/list, object attributes), else obj["name"], else Undefined.
Value get_attr(const Value& obj, const std::string& name);
// `obj|attr(name)`: Python attribute only, no item fallback.
Value get_attr_only(const Value& obj, const std::string& name);
// `obj[key]`: item (index with negative wrap, dict key, slice when key is a Slice tuple), else attribute.
Value get_item(const Value& obj, const Value& key);
// obj[start:stop:step] on str/list/tuple.
Value get_slice(const Value& obj, const Value& start, const Value& stop, const Value& step);

List iterate(const Value& v);     // iter(v): list/tuple items, str code points, dict keys, Undefined -> empty
int64_t py_len(const Value& v);   // len(v)
bool contains(const Value& container, const Value& item);  // `item in container`

std::string percent_format(const std::string& fmt, const Value& args);  // fmt % args
std::string str_format(const std::string& fmt, const CallArgs& args);   // fmt.format(*args, **kwargs)

}  // namespace llmstudio::tokenizer::jinja
