#include "robometer/dist/flat_shards.h"

#include <set>

#include "robometer/core/error.h"

namespace robometer::dist {

FlatShards FlatShards::build(const train::NamedParameters& params, int rank, int world) {
  if (world < 1 || rank < 0 || rank >= world)
    throw Error("flat shards: rank " + std::to_string(rank) + " of world " + std::to_string(world));
  FlatShards s;
  std::set<std::string> names;
  std::set<at::ScalarType> dtypes;
  for (const auto& [name, p] : params) {
    if (!p.requires_grad()) continue;  // the same filter as train::plan_parameters
    if (!names.insert(name).second) throw ConfigError("optimizer: duplicate parameter '" + name + "'");
    s.entries.push_back({name, p, s.total, p.numel()});
    s.total += p.numel();
    dtypes.insert(p.scalar_type());
  }
  if (s.entries.empty()) throw ConfigError("optimizer: no trainable parameters");
  s.dtype = dtypes.size() == 1 ? *dtypes.begin() : at::kFloat;
  s.shard_size = (s.total + world - 1) / world;
  s.padded = s.shard_size * world;
  s.shard_begin = std::min(s.total, s.shard_size * rank);
  s.shard_end = std::min(s.total, s.shard_begin + s.shard_size);
  return s;
}

}  // namespace robometer::dist
