// Streaming rewards: per-frame progress and P(success) of a growing episode, one KV-cached
// forward per new frame instead of a forward over the whole prompt.
//
// Why it is exact: the progress prompt is  head(task) · frame_1 · frame_2 · ... · tail,  with
// frame_i = "Picture i: <|vision_start|>" + pads_i + "<|vision_end|><|prog_token|>", causal
// attention, and every frame its own image (grid t = 1: a still frame fills the 2-frame
// temporal patch by duplication, frames are never merged in pairs), so nothing before frame i's
// <|prog_token|> depends on later frames or on the frame count; the tail comes after the last
// prog token and influences none. A session therefore keeps every text layer's keys/values and
// the M-RoPE counter, and runs the vision tower on the new frames only and the text decoder on
// their tokens only (DeepStack features added to the new visual tokens). The head and frame 1
// are tokenized together, as in the full prompt (the instruction and "Picture 1: " are one text
// run for the tokenizer); later frames start after a special token, so their text tokenizes
// alone. Results equal `score --mode all` over the same frames up to float summation order.
//
// Several sessions' new tokens are packed into one [1, N, H] sequence for every projection and
// MLP; attention runs per session against its own cache tensors (ragged caches stay where they
// are: padding them into one batch would copy every cache in every layer of every step).
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "robometer/model/factory.h"
#include "robometer/model/kv_cache.h"

namespace robometer::model {

// Appending past the session's frame limit; the session is unchanged.
class StreamFrameLimit : public Error {
 public:
  using Error::Error;
};

class StreamSession {
 public:
  const std::string& task() const { return task_; }
  int64_t frames() const { return frames_; }
  int64_t tokens() const { return cache_->length(); }
  int64_t cache_bytes() const { return cache_->bytes(); }

 private:
  friend class StreamModel;
  std::string task_;
  int64_t frames_ = 0;
  int64_t next_position_ = 0;  // M-RoPE: max position so far + 1
  std::unique_ptr<KvCache> cache_;
};

struct StreamFrameOutputs {
  std::vector<double> progress, success;  // one per appended frame
};

// One session's new frames, made ready for the forward (tokens, pixels, positions, cache room).
struct StreamAppend {
  StreamSession* session = nullptr;
  std::vector<int64_t> ids;
  std::vector<int64_t> positions[3];
  std::vector<int64_t> prog;  // offsets of the <|prog_token|>s in ids
  std::vector<ImagePatches> images;
  int64_t base_tokens = 0;    // the session's cache length it was prepared against
  int64_t next_position = 0;  // the counter after these tokens
};

struct StreamOptions {
  int64_t max_frames_per_session = 0;     // 0 = no limit
  std::shared_ptr<KvCacheBudget> budget;  // shared by all sessions; null = unlimited
  bool padded_attention = false;          // the slower alternative, for `bench stream --padded`
};

class StreamModel {
 public:
  explicit StreamModel(ModelBundle& bundle, StreamOptions opts = {});

  // A new empty session (no compute). Throws Error on an empty task or one with special tokens.
  std::unique_ptr<StreamSession> open(const std::string& task) const;

  // Preprocesses uint8 frames [n, H, W, 3] for `s` and grows its cache. Throws StreamFrameLimit,
  // KvCacheBudgetExceeded or Error (bad frames); the session is unchanged then.
  StreamAppend prepare(StreamSession& s, const at::Tensor& frames) const;
  // One packed forward over all prepared appends (distinct sessions); commits them.
  std::vector<StreamFrameOutputs> run(const std::vector<StreamAppend>& batch);
  // prepare + run.
  std::vector<StreamFrameOutputs> append(const std::vector<StreamSession*>& sessions,
                                         const std::vector<at::Tensor>& frames);

  const StreamOptions& options() const { return opts_; }

 private:
  ModelBundle& bundle_;
  StreamOptions opts_;
  int64_t image_pad_id_, prog_id_;
};

}  // namespace robometer::model
