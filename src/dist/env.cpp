#include "robometer/dist/env.h"

#include <cstdlib>

#include "robometer/core/error.h"

namespace robometer::dist {
namespace {

int parse_int(const std::string& name, const std::string& value) {
  size_t used = 0;
  long v = 0;
  try {
    v = std::stol(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != value.size() || v < 0 || v > 1000000)
    throw ConfigError("environment variable " + name + "='" + value + "' is not a non-negative integer");
  return static_cast<int>(v);
}

}  // namespace

std::string first_slurm_host(const std::string& nodelist) {
  if (nodelist.empty()) throw ConfigError("SLURM node list is empty");
  // The first entry ends at the first comma outside brackets.
  std::string first;
  int depth = 0;
  for (char c : nodelist) {
    if (c == '[') ++depth;
    if (c == ']') --depth;
    if (c == ',' && depth == 0) break;
    first += c;
  }
  const auto open = first.find('[');
  if (open == std::string::npos) {
    if (first.empty() || first.find(']') != std::string::npos)
      throw ConfigError("SLURM node list '" + nodelist + "' is malformed");
    return first;
  }
  const auto close = first.find(']', open);
  if (close == std::string::npos || close != first.size() - 1 || open == 0)
    throw ConfigError("SLURM node list '" + nodelist + "' is malformed (brackets)");
  // Inside the brackets: "01-04,07" → the first range's start, digits kept as written.
  std::string range = first.substr(open + 1, close - open - 1);
  std::string start = range.substr(0, range.find_first_of(",-"));
  if (start.empty() || start.find_first_not_of("0123456789") != std::string::npos)
    throw ConfigError("SLURM node list '" + nodelist + "' is malformed (range '" + range + "')");
  return first.substr(0, open) + start;
}

DistEnv read_dist_env(const std::function<std::optional<std::string>(const std::string&)>& getenv_fn) {
  DistEnv e;
  auto get_int = [&](const std::string& name) -> std::optional<int> {
    auto v = getenv_fn(name);
    if (!v) return std::nullopt;
    return parse_int(name, *v);
  };
  if (getenv_fn("RANK") || getenv_fn("WORLD_SIZE")) {
    auto rank = get_int("RANK");
    auto world = get_int("WORLD_SIZE");
    if (!rank || !world) throw ConfigError("RANK and WORLD_SIZE must be set together");
    e.source = "torchrun";
    e.rank = *rank;
    e.world_size = *world;
    e.local_rank = get_int("LOCAL_RANK").value_or(e.rank);
    e.local_world_size = get_int("LOCAL_WORLD_SIZE").value_or(e.world_size);
    if (auto a = getenv_fn("MASTER_ADDR")) e.master_addr = *a;
    e.agent_store = getenv_fn("TORCHELASTIC_USE_AGENT_STORE").value_or("") == "True";
    e.restart_count = get_int("TORCHELASTIC_RESTART_COUNT").value_or(0);
  } else if (getenv_fn("SLURM_PROCID") && getenv_fn("SLURM_NTASKS")) {
    e.source = "slurm";
    e.rank = *get_int("SLURM_PROCID");
    e.world_size = *get_int("SLURM_NTASKS");
    e.local_rank = get_int("SLURM_LOCALID").value_or(0);
    e.local_world_size = get_int("SLURM_NTASKS_PER_NODE").value_or(e.world_size);
    if (auto a = getenv_fn("MASTER_ADDR")) {
      e.master_addr = *a;
    } else if (auto l = getenv_fn("SLURM_JOB_NODELIST")) {
      e.master_addr = first_slurm_host(*l);
    } else if (auto l2 = getenv_fn("SLURM_NODELIST")) {
      e.master_addr = first_slurm_host(*l2);
    }
  } else {
    return e;
  }
  if (auto p = get_int("MASTER_PORT")) {
    if (*p == 0 || *p > 65535) throw ConfigError("MASTER_PORT=" + std::to_string(*p) + " is not a TCP port");
    e.master_port = *p;
  }
  const std::string rank_var = e.source == "slurm" ? "SLURM_PROCID" : "RANK";
  const std::string world_var = e.source == "slurm" ? "SLURM_NTASKS" : "WORLD_SIZE";
  if (e.world_size < 1) throw ConfigError(world_var + " must be >= 1");
  if (e.rank >= e.world_size)
    throw ConfigError(rank_var + "=" + std::to_string(e.rank) + " is not below " + world_var + "=" +
                      std::to_string(e.world_size));
  if (e.local_rank >= e.local_world_size && e.source == "torchrun")
    throw ConfigError("LOCAL_RANK=" + std::to_string(e.local_rank) +
                      " is not below LOCAL_WORLD_SIZE=" + std::to_string(e.local_world_size));
  return e;
}

DistEnv read_dist_env() {
  return read_dist_env([](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  });
}

}  // namespace robometer::dist
