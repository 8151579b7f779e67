// Loading a checkpoint for inference refuses weights that are not finite (a diverged run would
// otherwise score NaN with exit 0), naming the tensor.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <limits>

#include "eval/eval_test_util.h"
#include "robometer/core/error.h"
#include "robometer/export/load.h"
#include "robometer/io/safetensors.h"

namespace robometer::eval {
namespace {

TEST(LoadCheckpoint, RefusesNonFiniteWeightsNamingTheTensor) {
  test::TempDir tmp;
  const auto dir = tmp / "ckpt";
  test::write_tiny_checkpoint(dir);
  EXPECT_NO_THROW(load_checkpoint(dir.string(), at::kCPU));  // finite: loads

  auto tensors = io::load_safetensors((dir / "model.safetensors").string());
  std::string poisoned;
  for (auto& [name, t] : tensors)
    if (name.find("progress_head") != std::string::npos && name.size() > 7 &&
        name.compare(name.size() - 7, 7, ".weight") == 0) {
      t = t.clone();
      t.view({-1})[0] = std::numeric_limits<float>::quiet_NaN();
      poisoned = name;
      break;
    }
  ASSERT_FALSE(poisoned.empty());
  io::save_safetensors((dir / "model.safetensors").string(), tensors);
  robometer::test::expect_throw_contains([&] { load_checkpoint(dir.string(), at::kCPU); },
                                         {dir.string(), poisoned, "non-finite"});
}

}  // namespace
}  // namespace robometer::eval
