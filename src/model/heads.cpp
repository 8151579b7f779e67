#include "robometer/model/heads.h"

#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

namespace robometer::model {

namespace nn = torch::nn;

torch::nn::Sequential make_head_mlp(int64_t hidden, int64_t out, double dropout) {
  return nn::Sequential(nn::Linear(hidden, hidden / 2),
                        nn::LayerNorm(nn::LayerNormOptions({hidden / 2})),  // eps 1e-5
                        nn::GELU(),                                         // exact erf GELU
                        nn::Dropout(dropout), nn::Linear(hidden / 2, out));
}

at::Tensor expected_progress(const at::Tensor& logits) {
  const int64_t bins = logits.size(-1);
  auto centres = at::linspace(0.0, 1.0, bins, logits.options().dtype(at::kFloat));
  return (at::softmax(logits.to(at::kFloat), -1) * centres).sum(-1);
}

}  // namespace robometer::model
