// Robometer's prediction heads (robometer/models/heads.py): each is
// nn.Sequential(Linear(H, H/2), LayerNorm(H/2), GELU(), Dropout(p), Linear(H/2, out)), so the
// checkpoint keys are `<name>.0.*`, `<name>.1.*`, `<name>.4.*`.
#pragma once
#include <torch/nn/modules/container/sequential.h>

namespace robometer::model {

torch::nn::Sequential make_head_mlp(int64_t hidden, int64_t out, double dropout);

// Expected progress from discrete logits [..., bins]: Σ_k softmax(z)_k · k/(bins-1).
at::Tensor expected_progress(const at::Tensor& logits);

}  // namespace robometer::model
