// Declarative description of config fields. Each config struct lists its fields once in a
// `visit(V&)` template; loaders, printers and validators are visitors over that list, so a new
// key is one line and can never be parsed but not printed (or the reverse).
#pragma once
#include <limits>
#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace robometer::config {

// Constraints checked after every layer (defaults, file, overrides) has been applied.
struct FieldSpec {
  const char* help = "";
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
  bool min_exclusive = false;
  std::vector<std::string> one_of;  // allowed string values (empty: any)
  bool must_exist = false;          // a path that must exist (empty string allowed)
  // A string rule beyond a fixed list: returns "" when the value is fine, else what is expected.
  std::string (*check)(const std::string&) = nullptr;

  FieldSpec& range(double lo, double hi) {
    min = lo;
    max = hi;
    return *this;
  }
  FieldSpec& positive() {
    min = 0;
    min_exclusive = true;
    return *this;
  }
  FieldSpec& non_negative() {
    min = 0;
    return *this;
  }
  FieldSpec& choices(std::vector<std::string> c) {
    one_of = std::move(c);
    return *this;
  }
  FieldSpec& checked_by(std::string (*fn)(const std::string&)) {
    check = fn;
    return *this;
  }
  FieldSpec& existing_path() {
    must_exist = true;
    return *this;
  }
};

inline FieldSpec doc(const char* help) {
  FieldSpec s;
  s.help = help;
  return s;
}

struct FieldNameCollector {
  std::vector<std::string> names;
  template <class T>
  void operator()(const char* name, T&, const FieldSpec& = {}) {
    names.emplace_back(name);
  }
};

// Detects structs that describe their own fields (a `void visit(V&)` member template).
template <class T, class = void>
struct is_config_struct : std::false_type {};
template <class T>
struct is_config_struct<T,
                        std::void_t<decltype(std::declval<T&>().visit(std::declval<FieldNameCollector&>()))>>
    : std::true_type {};

// Structs with a cross-field rule: `std::string check(where) const` returns "" or the error.
template <class T, class = void>
struct has_cross_check : std::false_type {};
template <class T>
struct has_cross_check<T, std::void_t<decltype(std::declval<const T&>().check(
                              std::declval<std::string (*)(const std::string&)>()))>> : std::true_type {};

template <class T>
std::vector<std::string> field_names(T& s) {
  FieldNameCollector c;
  s.visit(c);
  return c.names;
}

}  // namespace robometer::config
