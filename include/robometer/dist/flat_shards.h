// FlatShards: how ZeRO splits the trainable parameters across ranks. The parameters are laid
// out back to back, in registration order, in one flat vector padded to a multiple of the world
// size; rank r owns the r-th equal slice [shard_begin, shard_end). ShardedAdamW (fp32 master and
// moments) and ShardedGradSync (the reduced gradients) both use this layout, so a gradient
// shard lines up with the optimizer shard element for element, and a checkpoint's shards can be
// re-cut for another world size by offset alone.
#pragma once
#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "robometer/train/named_parameters.h"

namespace robometer::dist {

struct FlatShards {
  struct Entry {
    std::string name;
    at::Tensor param;
    int64_t offset = 0;  // in the flat vector
    int64_t numel = 0;
  };
  std::vector<Entry> entries;  // trainable parameters (requires_grad), registration order
  int64_t total = 0, padded = 0, shard_size = 0, shard_begin = 0, shard_end = 0;
  at::ScalarType dtype = at::kFloat;  // the parameters' dtype when they share one, else fp32

  // Throws ConfigError when nothing is trainable or a name repeats.
  static FlatShards build(const train::NamedParameters& params, int rank, int world);

  // The part of [lo, hi) inside this rank's slice, as [a, b) (a >= b: none).
  std::pair<int64_t, int64_t> own_part(int64_t lo, int64_t hi) const {
    return {std::max(lo, shard_begin), std::min(hi, shard_end)};
  }
};

}  // namespace robometer::dist
