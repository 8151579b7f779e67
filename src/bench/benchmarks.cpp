#include "robometer/bench/benchmarks.h"

namespace robometer::bench {

std::vector<Benchmark> benchmarks() {
  return {checkpoint_hash_benchmark(), decode_benchmark(),   loader_benchmark(), memory_benchmark(),
          model_step_benchmark(),      sampler_benchmark(),  score_benchmark(),  step_benchmark(),
          stream_benchmark(),          tokenizer_benchmark()};
}

}  // namespace robometer::bench
