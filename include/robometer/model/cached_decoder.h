// Incremental (KV-cached) forward of the Qwen3-VL text decoder for streaming rewards: the same
// layers as TextModel::forward (which stays untouched), run on new tokens only.
#pragma once
#include <ATen/ATen.h>

#include <vector>

#include "robometer/model/kv_cache.h"
#include "robometer/model/text_decoder.h"

namespace robometer::model {

// inputs_embeds [1, N, H] packs the new tokens of several sessions: segments[i] tokens for
// caches[i], in order. position_ids [3, 1, N] continue each session's M-RoPE counter;
// visual_pos_mask [1, N] marks the new image tokens and deepstack[l] [N_visual, H] is added to
// them after layer l. Each segment attends to its cache and causally to itself; every layer's
// keys/values are written into the caches without committing them (KvCache::commit).
// padded_attention: one SDPA call over the caches copied into a zero-padded batch, instead of
// one call per session against its cache in place (the default; faster, see README).
at::Tensor text_forward_cached(TextModelImpl& text, const at::Tensor& inputs_embeds,
                               const at::Tensor& position_ids, const std::vector<int64_t>& segments,
                               const std::vector<KvCache*>& caches, const at::Tensor& visual_pos_mask,
                               const std::vector<at::Tensor>& deepstack, bool padded_attention = false);

}  // namespace robometer::model
