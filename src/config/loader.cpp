#include "robometer/config/loader.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include "robometer/core/error.h"

namespace robometer::config {
namespace fs = std::filesystem;

namespace {

// "file.yaml:12" for a node, or the override text for command-line values.
struct Origin {
  std::string where;
  std::string at(const YAML::Node& n) const {
    if (n.Mark().line >= 0 && where.rfind("override", 0) != 0)
      return where + ":" + std::to_string(n.Mark().line + 1);
    return where;
  }
};

std::string describe(const YAML::Node& n) {
  if (!n.IsDefined() || n.IsNull()) return "null";
  if (n.IsScalar()) return "'" + n.Scalar() + "'";
  if (n.IsSequence()) return "a list";
  return "a mapping";
}

[[noreturn]] void fail(const std::string& where, const std::string& key, const std::string& msg) {
  throw ConfigError(where + ": " + key + ": " + msg);
}

// Every dotted key of RunConfig, for did-you-mean.
struct KeyLister {
  std::string prefix;
  std::vector<std::string>* out;
  template <class T>
  void operator()(const char* name, T& value, const FieldSpec& = {}) {
    const std::string key = prefix + name;
    out->push_back(key);
    if constexpr (is_config_struct<T>::value) {
      KeyLister sub{key + ".", out};
      value.visit(sub);
    }
  }
};

const std::vector<std::string>& all_keys() {
  static const std::vector<std::string> keys = [] {
    std::vector<std::string> out;
    RunConfig cfg;
    KeyLister lister{"", &out};
    cfg.visit(lister);
    return out;
  }();
  return keys;
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// ---------------------------------------------------------------- scalar conversion
template <class T>
T convert(const YAML::Node& n, const std::string& where, const std::string& key) {
  if constexpr (std::is_same_v<T, std::string>) {
    if (n.IsNull()) return "";
    if (!n.IsScalar()) fail(where, key, "expected a string, got " + describe(n));
    return n.Scalar();
  } else if constexpr (std::is_same_v<T, bool>) {
    bool v;
    if (!n.IsScalar() || !YAML::convert<bool>::decode(n, v))
      fail(where, key, "expected true or false, got " + describe(n));
    return v;
  } else if constexpr (std::is_integral_v<T>) {
    long long v;
    if (!n.IsScalar() || !YAML::convert<long long>::decode(n, v)) {
      // Accept 1e3-style integers written as floats, but not 1.5.
      double d;
      if (!(n.IsScalar() && YAML::convert<double>::decode(n, d) && std::isfinite(d) && d == std::floor(d) &&
            std::fabs(d) < 9e15))
        fail(where, key, "expected an integer, got " + describe(n));
      v = static_cast<long long>(d);
    }
    // Checked before the cast: a wrapped value would pass the range check silently.
    const bool fits = std::is_signed_v<T>
                          ? v >= static_cast<long long>(std::numeric_limits<T>::min()) &&
                                v <= static_cast<long long>(std::numeric_limits<T>::max())
                          : v >= 0 && static_cast<unsigned long long>(v) <=
                                          static_cast<unsigned long long>(std::numeric_limits<T>::max());
    if (!fits)
      fail(where, key,
           "integer " + describe(n) + " does not fit (at most " +
               std::to_string(std::numeric_limits<T>::max()) + ")");
    return static_cast<T>(v);
  } else {
    double v;
    if (!n.IsScalar() || !YAML::convert<double>::decode(n, v))
      fail(where, key, "expected a number, got " + describe(n));
    if (std::isnan(v)) fail(where, key, "expected a number, got " + describe(n) + " (NaN)");
    return static_cast<T>(v);
  }
}

// ---------------------------------------------------------------- applying one YAML layer
struct Applier {
  const YAML::Node& node;  // a mapping
  std::string prefix;      // "train."
  const Origin& origin;
  std::map<std::string, std::string>* where_set;  // dotted key -> origin of its value

  template <class T>
  void operator()(const char* name, T& value, const FieldSpec& = {}) {
    const YAML::Node child = node[name];
    if (!child.IsDefined()) return;
    const std::string key = prefix + name;
    const std::string where = origin.at(child);
    assign(value, child, key, where);
    (*where_set)[key] = where;
  }

  template <class T>
  void assign(T& value, const YAML::Node& n, const std::string& key, const std::string& where) {
    if constexpr (is_config_struct<T>::value) {
      if (!n.IsMap()) fail(where, key, "expected a mapping, got " + describe(n));
      apply_map(value, n, key + ".", origin, where_set);
    } else if constexpr (std::is_same_v<T, std::vector<std::string>> ||
                         std::is_same_v<T, std::vector<double>> || std::is_same_v<T, std::vector<int>>) {
      if (!n.IsSequence()) fail(where, key, "expected a list, got " + describe(n));
      T out;
      for (size_t i = 0; i < n.size(); ++i)
        out.push_back(
            convert<typename T::value_type>(n[i], origin.at(n[i]), key + "[" + std::to_string(i) + "]"));
      value = std::move(out);
    } else if constexpr (std::is_same_v<T, std::map<std::string, double>> ||
                         std::is_same_v<T, std::map<std::string, std::string>>) {
      // Maps merge entry by entry, so a later layer overrides single sources of a shipped table.
      if (!n.IsMap()) fail(where, key, "expected a mapping of name: value, got " + describe(n));
      for (auto it = n.begin(); it != n.end(); ++it) {
        const std::string k = it->first.Scalar();
        value[k] = convert<typename T::mapped_type>(it->second, origin.at(it->second), key + "." + k);
      }
    } else if constexpr (is_vector_of_structs<T>::value) {
      if (!n.IsSequence()) fail(where, key, "expected a list, got " + describe(n));
      T out;
      for (size_t i = 0; i < n.size(); ++i) {
        const std::string item_key = key + "[" + std::to_string(i) + "]";
        typename T::value_type item{};
        if (n[i].IsScalar() && !field_names(item).empty()) {
          // Shorthand: a bare scalar sets the first field (e.g. a dataset path).
          YAML::Node m;
          m[field_names(item).front()] = n[i];
          apply_map(item, m, item_key + ".", origin, where_set);
        } else {
          if (!n[i].IsMap()) fail(origin.at(n[i]), item_key, "expected a mapping, got " + describe(n[i]));
          apply_map(item, n[i], item_key + ".", origin, where_set);
        }
        out.push_back(std::move(item));
      }
      value = std::move(out);
    } else {
      value = convert<T>(n, where, key);
    }
  }

  template <class T, class = void>
  struct is_vector_of_structs : std::false_type {};
  template <class T>
  struct is_vector_of_structs<std::vector<T>, std::enable_if_t<is_config_struct<T>::value>> : std::true_type {
  };

  template <class S>
  static void apply_map(S& s, const YAML::Node& n, const std::string& prefix, const Origin& origin,
                        std::map<std::string, std::string>* where_set) {
    // Unknown keys first, so a typo is reported as a typo rather than as a type error.
    const auto known = field_names(s);
    for (auto it = n.begin(); it != n.end(); ++it) {
      const std::string k = it->first.as<std::string>("");
      if (std::find(known.begin(), known.end(), k) != known.end()) continue;
      if (prefix.empty() && k == "defaults") continue;  // handled by the file loader
      const std::string full = prefix + k;
      if (k.find('.') != std::string::npos)
        throw ConfigError(origin.at(it->first) + ": key '" + k +
                          "': dotted keys are for command-line "
                          "overrides only; in a file nest them (e.g. train: {lr: 1e-4})");
      std::string msg = "unknown key '" + full + "'";
      const std::string hint = suggest_key(full);
      if (!hint.empty())
        msg += " (did you mean '" + hint + "'?)";
      else
        msg += "; known keys here: " + [&] {
          std::string list;
          for (const auto& kk : known) list += (list.empty() ? "" : ", ") + kk;
          return list;
        }();
      throw ConfigError(origin.at(it->first) + ": " + msg);
    }
    Applier a{n, prefix, origin, where_set};
    s.visit(a);
  }
};

// ---------------------------------------------------------------- validation
struct Validator {
  std::string prefix;
  const std::map<std::string, std::string>* where_set;
  std::vector<std::string>* missing_paths = nullptr;  // collect instead of throwing when set

  std::string where(const std::string& key) const {
    auto it = where_set->find(key);
    return it == where_set->end() ? std::string("default value") : it->second;
  }

  template <class T>
  void operator()(const char* name, T& value, const FieldSpec& spec = {}) {
    const std::string key = prefix + name;
    if constexpr (is_config_struct<T>::value) {
      Validator sub{key + ".", where_set, missing_paths};
      value.visit(sub);
      if constexpr (has_cross_check<T>::value) {
        const std::string err = value.check([&](const std::string& k) { return where(key + "." + k); });
        if (!err.empty()) throw ConfigError(err);
      }
    } else if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) {
      const double v = static_cast<double>(value);
      const bool low = spec.min_exclusive ? v <= spec.min : v < spec.min;
      if (low || v > spec.max) {
        std::ostringstream msg;
        msg << key << " = " << v << " is out of range: expected ";
        if (std::isinf(spec.max))
          msg << (spec.min_exclusive ? "a value > " : "a value >= ") << spec.min;
        else
          msg << "a value in " << (spec.min_exclusive ? "(" : "[") << spec.min << ", " << spec.max << "]";
        throw ConfigError(where(key) + ": " + msg.str());
      }
    } else if constexpr (std::is_same_v<T, std::string>) {
      if (!spec.one_of.empty() &&
          std::find(spec.one_of.begin(), spec.one_of.end(), value) == spec.one_of.end()) {
        std::string opts;
        for (const auto& o : spec.one_of) opts += (opts.empty() ? "" : ", ") + o;
        throw ConfigError(where(key) + ": " + key + " = '" + value + "' is not one of: " + opts);
      }
      if (spec.check) {
        const std::string expected = spec.check(value);
        if (!expected.empty())
          throw ConfigError(where(key) + ": " + key + " = '" + value + "' is not valid: expected " +
                            expected);
      }
      if (spec.must_exist && !value.empty() && !fs::exists(value)) {
        const std::string msg = where(key) + ": " + key + ": path '" + value + "' does not exist" +
                                " (relative paths are resolved against " + fs::current_path().string() + ")";
        if (!missing_paths) throw ConfigError(msg);
        missing_paths->push_back(msg);
      }
    } else if constexpr (Applier::is_vector_of_structs<T>::value) {
      for (size_t i = 0; i < value.size(); ++i) {
        Validator sub{key + "[" + std::to_string(i) + "].", where_set, missing_paths};
        value[i].visit(sub);
      }
    } else if constexpr (std::is_same_v<T, std::map<std::string, double>>) {
      for (const auto& [k, v] : value) {
        if (!std::isfinite(v))
          throw ConfigError(where(key + "." + k) + ": " + key + "." + k + " must be finite");
        if (v < spec.min || v > spec.max)
          throw ConfigError(where(key) + ": " + key + "." + k + " = " + std::to_string(v) +
                            " is out of range [" + std::to_string(spec.min) + ", " +
                            std::to_string(spec.max) + "]");
      }
    } else if constexpr (std::is_same_v<T, std::map<std::string, std::string>>) {
      for (const auto& [k, v] : value)
        if (!spec.one_of.empty() &&
            std::find(spec.one_of.begin(), spec.one_of.end(), v) == spec.one_of.end()) {
          std::string opts;
          for (const auto& o : spec.one_of) opts += (opts.empty() ? "" : ", ") + o;
          throw ConfigError(where(key) + ": " + key + "." + k + " = '" + v + "' is not one of: " + opts);
        }
    }
  }
};

// ---------------------------------------------------------------- printing
struct Emitter {
  YAML::Emitter& out;
  template <class T>
  void operator()(const char* name, T& value, const FieldSpec& = {}) {
    out << YAML::Key << name << YAML::Value;
    emit(value);
  }
  template <class T>
  void emit(T& value) {
    if constexpr (is_config_struct<T>::value) {
      out << YAML::BeginMap;
      value.visit(*this);
      out << YAML::EndMap;
    } else if constexpr (Applier::is_vector_of_structs<T>::value) {
      out << YAML::BeginSeq;
      for (auto& item : value) emit(item);
      out << YAML::EndSeq;
    } else if constexpr (std::is_same_v<T, std::vector<std::string>> ||
                         std::is_same_v<T, std::vector<double>> || std::is_same_v<T, std::vector<int>>) {
      out << YAML::Flow << YAML::BeginSeq;
      for (auto& item : value) out << item;
      out << YAML::EndSeq;
    } else if constexpr (std::is_same_v<T, std::map<std::string, double>> ||
                         std::is_same_v<T, std::map<std::string, std::string>>) {
      out << YAML::BeginMap;
      for (auto& [k, v] : value) out << YAML::Key << k << YAML::Value << v;
      out << YAML::EndMap;
    } else if constexpr (std::is_same_v<T, bool>) {
      out << (value ? "true" : "false");
    } else {
      out << value;
    }
  }
};

// ---------------------------------------------------------------- files
YAML::Node parse_file(const fs::path& path, const std::string& referenced_from) {
  if (!fs::exists(path)) throw ConfigError(referenced_from + "config file '" + path.string() + "' not found");
  if (!fs::is_regular_file(path))
    throw ConfigError(referenced_from + "config file '" + path.string() + "' is not a regular file");
  try {
    return YAML::LoadFile(path.string());
  } catch (const YAML::Exception& e) {
    throw ConfigError(path.string() + ":" + std::to_string(e.mark.line + 1) + ": invalid YAML: " + e.msg);
  } catch (const std::exception& e) {
    throw ConfigError(path.string() + ": cannot read: " + e.what());
  }
}

void apply_file(RunConfig& cfg, const fs::path& path, std::vector<std::string>& stack,
                std::vector<std::string>& files, std::map<std::string, std::string>& where_set,
                const std::string& referenced_from) {
  const std::string canon = fs::weakly_canonical(path).string();
  if (std::find(stack.begin(), stack.end(), canon) != stack.end())
    throw ConfigError(referenced_from + "defaults cycle: '" + path.string() + "' includes itself");
  YAML::Node root = parse_file(path, referenced_from);
  if (root.IsNull()) return;  // empty file
  if (!root.IsMap())
    throw ConfigError(path.string() + ":1: expected a mapping at the top level, got " + describe(root));
  stack.push_back(canon);
  if (YAML::Node defs = root["defaults"]) {
    const Origin o{path.string()};
    if (!defs.IsSequence())
      throw ConfigError(o.at(defs) + ": defaults: expected a list of files, got " + describe(defs));
    for (const auto& d : defs) {
      if (!d.IsScalar()) throw ConfigError(o.at(d) + ": defaults: expected a file name, got " + describe(d));
      fs::path base = fs::path(d.Scalar());
      if (base.is_relative()) base = path.parent_path() / base;
      if (!fs::exists(base) && base.extension().empty()) base += ".yaml";
      apply_file(cfg, base, stack, files, where_set, o.at(d) + ": defaults: ");
    }
  }
  Applier::apply_map(cfg, root, "", Origin{path.string()}, &where_set);
  files.push_back(path.string());
  stack.pop_back();
}

void apply_override(RunConfig& cfg, const std::string& text, std::map<std::string, std::string>& where_set) {
  const auto eq = text.find('=');
  const std::string origin = "override '" + text + "'";
  if (eq == std::string::npos || eq == 0) throw ConfigError(origin + ": expected key.sub=value");
  const std::string key = text.substr(0, eq);
  const std::string raw = text.substr(eq + 1);
  YAML::Node value;
  try {
    value = raw.empty() ? YAML::Node(YAML::NodeType::Null) : YAML::Load(raw);
  } catch (const YAML::Exception& e) {
    throw ConfigError(origin + ": value is not valid YAML: " + e.msg);
  }
  // Turn a.b.c=v into {a: {b: {c: v}}}.
  std::vector<std::string> parts;
  std::stringstream ss(key);
  for (std::string p; std::getline(ss, p, '.');) parts.push_back(p);
  // Built from the leaf up: yaml-cpp's Node::operator= assigns through, it does not rebind.
  YAML::Node root = value;
  for (size_t i = parts.size(); i-- > 0;) {
    YAML::Node parent(YAML::NodeType::Map);
    parent[parts[i]] = root;
    root.reset(parent);
  }
  const auto& keys = all_keys();
  if (std::find(keys.begin(), keys.end(), key) == keys.end()) {
    std::string msg = origin + ": unknown key '" + key + "'";
    const std::string hint = suggest_key(key);
    if (!hint.empty()) msg += " (did you mean '" + hint + "'?)";
    throw ConfigError(msg);
  }
  Applier::apply_map(cfg, root, "", Origin{origin}, &where_set);
}

}  // namespace

std::string suggest_key(const std::string& key) {
  std::string best;
  size_t best_d = std::string::npos;
  for (const auto& k : all_keys()) {
    const size_t d = edit_distance(key, k);
    if (d < best_d) best_d = d, best = k;
  }
  // Also match on the last component alone (train.lr vs optim.lr).
  const auto leaf = key.substr(key.rfind('.') == std::string::npos ? 0 : key.rfind('.') + 1);
  const size_t limit = std::max<size_t>(2, key.size() / 4);
  if (best_d <= limit) return best;
  // A truncated or extended name under the same parent (train.warmup -> train.warmup_ratio).
  const auto parent = key.substr(0, key.size() - leaf.size());
  for (const auto& k : all_keys()) {
    if (k.size() <= parent.size() || k.compare(0, parent.size(), parent) != 0) continue;
    const auto kl = k.substr(parent.size());
    if (kl.find('.') != std::string::npos || leaf.size() < 3) continue;
    if (kl.rfind(leaf, 0) == 0 || leaf.rfind(kl, 0) == 0) return k;
  }
  for (const auto& k : all_keys()) {
    const auto kl = k.substr(k.rfind('.') == std::string::npos ? 0 : k.rfind('.') + 1);
    if (kl == leaf) return k;
  }
  return "";
}

LoadResult load_run_config(const std::string& path, const std::vector<std::string>& overrides,
                           MissingPaths missing) {
  LoadResult result;
  std::vector<std::string> stack;
  std::map<std::string, std::string> where_set;
  apply_file(result.config, path, stack, result.files, where_set, "");
  for (const auto& o : overrides) apply_override(result.config, o, where_set);
  Validator v{"", &where_set, missing == MissingPaths::Warn ? &result.missing_paths : nullptr};
  result.config.visit(v);
  return result;
}

void apply_overrides(RunConfig& cfg, const std::vector<std::string>& overrides) {
  std::map<std::string, std::string> where_set;
  for (const auto& o : overrides) apply_override(cfg, o, where_set);
  Validator v{"", &where_set};
  cfg.visit(v);
}

void validate(const RunConfig& cfg) {
  std::map<std::string, std::string> where_set;
  Validator v{"", &where_set};
  const_cast<RunConfig&>(cfg).visit(v);
}

std::string to_yaml(const RunConfig& cfg) {
  YAML::Emitter out;
  out.SetDoublePrecision(10);
  Emitter e{out};
  e.emit(const_cast<RunConfig&>(cfg));
  return std::string(out.c_str()) + "\n";
}

void write_resolved_config(const RunConfig& cfg, const std::string& dir) {
  fs::create_directories(dir);
  const fs::path final_path = fs::path(dir) / "config.yaml";
  const fs::path tmp = fs::path(dir) / ".config.yaml.tmp";
  {
    std::ofstream f(tmp);
    f << "# Resolved robometer config (defaults, file and overrides applied).\n" << to_yaml(cfg);
    if (!f) throw Error("cannot write " + tmp.string());
  }
  fs::rename(tmp, final_path);
}

}  // namespace robometer::config
