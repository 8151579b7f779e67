// ShardedAdamW (ZeRO-1): AdamW whose fp32 master weights and two moments are partitioned
// across ranks. The trainable parameters are laid out back to back in one flat vector (padded
// to a multiple of the world size); rank r owns the r-th equal slice. A step:
//   1. reduce-scatter the gradients (sum, then ÷ world) so each rank holds the averaged
//      gradient of its slice (Gloo: all-reduce + take the slice, see C10dWorld);
//   2. optional clipping on the global norm  sqrt(all_reduce(Σ own-slice g²));
//   3. adamw_update on each piece of the slice (a piece = the part of one parameter inside the
//      slice, so per-parameter lr / weight decay / step count are exactly AdamW's);
//   4. all-gather the updated slices (in chunks of about gather_mb) into every rank's model.
// Parameters that got no gradient on any rank are skipped like torch does (their step count
// does not advance). Without `grads`, the trainer pairs this with NoGradSync and step()
// does the reduction (step 1) itself; with a ShardedGradSync (ZeRO-1 overlapped with backward,
// or ZeRO-2), step 1 already happened during backward and the optimizer takes its shard.
// Master weights are always fp32 here (AdamWConfig::fp32_master is implied).
// State: one shard per rank ("robometer.adamw.zero1"). load_state() takes this rank's shard
// of a run of the same world size (bitwise resume) or a single-process AdamW state;
// load_resharded() re-cuts the shards of another world size by flat offset.
#pragma once
#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <vector>

#include "robometer/dist/process_group.h"
#include "robometer/dist/sharded_grad_sync.h"
#include "robometer/train/param_optimizer.h"

namespace robometer::dist {

class ShardedAdamW final : public train::ParamOptimizer {
 public:
  // `grads` (optional, attached to the same parameters, outlives this) supplies the reduced
  // gradient shard. Updated weights are all-gathered in chunks of about `gather_mb`.
  ShardedAdamW(std::shared_ptr<C10dWorld> world, const train::NamedParameters& params, train::AdamWConfig cfg,
               ShardedGradSync* grads = nullptr, double gather_mb = 25);

  void set_lr_factor(double factor) override { lr_factor_ = factor; }
  double lr() const override;
  double clip_grad_norm(double max_norm) override;
  void step() override;
  void zero_grad() override;
  io::NamedTensors state_tensors() const override;
  nlohmann::json state_json() const override;
  void load_state(const io::NamedTensors& tensors, const nlohmann::json& state) override;
  void load_resharded(int saved_world, const std::function<nlohmann::json(int)>& json_of,
                      const std::function<io::NamedTensors(int)>& tensors_of) override;
  bool sharded() const override { return true; }

  int64_t shard_begin() const { return shard_begin_; }
  int64_t shard_end() const { return shard_end_; }  // may be < begin + shard_size_ at the tail

 private:
  struct Param {
    std::string name;
    at::Tensor param;
    int64_t offset = 0;  // in the flat vector
    double base_lr = 0, weight_decay = 0;
    int64_t step = 0;
  };
  void reduce_grads();  // once per step, from clip_grad_norm() or step()
  void check_same_params(const nlohmann::json& state) const;  // a zero1 state of these parameters
  void load_adamw_state(const io::NamedTensors& tensors, const nlohmann::json& state);

  void copy_into_params(int64_t flat_lo, const at::Tensor& data);  // updated params only

  ShardedGradSync* grads_ = nullptr;
  double gather_mb_ = 25;

  std::shared_ptr<C10dWorld> world_;
  train::AdamWConfig cfg_;
  std::vector<Param> params_;
  double lr_factor_ = 1.0;
  int64_t total_ = 0, padded_ = 0, shard_size_ = 0, shard_begin_ = 0, shard_end_ = 0;
  at::ScalarType flat_dtype_ = at::kFloat;    // the params' dtype when they share one, else fp32
  at::Tensor master_, exp_avg_, exp_avg_sq_;  // fp32, shard_size_ elements
  at::Tensor grad_shard_;                     // fp32 averaged gradient of the own slice
  std::vector<bool> has_grad_;                // per parameter, any rank (this step)
  bool reduced_ = false;
};

// Merges every rank's ZeRO-1 state (state_tensors + state_json of ranks 0..N-1, in order) into
// the single-process AdamW state format ("<param>.exp_avg", ".exp_avg_sq", ".master" for
// non-fp32 params; JSON "robometer.adamw"), e.g. to export or to resume on another world size.
std::pair<io::NamedTensors, nlohmann::json> consolidate_zero1_state(
    const std::vector<io::NamedTensors>& tensors, const std::vector<nlohmann::json>& states);

}  // namespace robometer::dist
