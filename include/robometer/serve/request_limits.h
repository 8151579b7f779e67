// The serve memory budget: every size a request can choose (body, frames, pixels per frame,
// visual tokens, task length) is checked against a limit BEFORE anything of that size is
// allocated, so that one request can fail only itself and never take the server down.
//
// Frames are scored at smart_resize(H, W) with max_pixels = min(the model's max_pixels,
// max_frame_tokens * 32^2): frames above that are resized down here (PIL bicubic, exactly as
// the processor would with that max_pixels), so their vision attention stays bounded.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <string>

#include "robometer/core/error.h"
#include "robometer/model/processor.h"

namespace robometer::serve {

struct RequestLimits {
  int64_t max_request_bytes = 64LL << 20;    // HTTP body (--max-request-mb)
  int64_t max_frames = 512;                  // input frames per request, all samples (--max-frames)
  int64_t max_frame_pixels = 1920LL * 1080;  // H*W of one input frame (--max-frame-pixels)
  int64_t max_request_pixels =
      1LL << 26;  // T*H*W of every input frame of a request, 192 MiB RGB (--max-request-pixels)
  int64_t max_frame_tokens = 1024;  // visual tokens per frame; larger frames are resized (--max-frame-tokens)
  int64_t max_request_tokens = 131072;  // visual tokens of every query of a request (--max-request-tokens)
  int64_t max_batch_tokens = 262144;    // visual tokens of one model step (--max-batch-tokens)
  int64_t max_task_chars = 2048;        // task instruction, Unicode characters (--max-task-chars)
  int64_t max_task_tokens = 512;        // task instruction, tokenizer tokens (--max-task-tokens)
  int64_t max_json_values = 1 << 22;    // values in one JSON document (--max-json-values)
  int max_json_depth = 16;              // nesting of one JSON document
};

// A client error: HTTP `status` (4xx, or 503 for "busy") with a one-line message.
struct ClientError : Error {
  ClientError(int status_code, const std::string& what) : Error(what), status(status_code) {}
  int status;
};

// "<what>: <value> ...; the limit is <limit> (serve <flag>)" as a 413.
[[noreturn]] void throw_over_limit(const std::string& what, int64_t value, int64_t limit, const char* flag);

// How frames of one input size are scored.
struct FramePlan {
  int64_t height = 0, width = 0;                // input size
  int64_t scored_height = 0, scored_width = 0;  // size the processor sees (multiples of 32)
  bool resize = false;  // resized here (the server's cap binds; the model's would not)
  int64_t tokens = 0;   // visual tokens per frame
};

class RequestBudget {
 public:
  // Throws ConfigError when a limit is < 1 or max_frame_tokens is below the processor's minimum.
  RequestBudget(const model::Processor& processor, RequestLimits limits);

  const RequestLimits& limits() const { return limits_; }

  // 413 over max_frames.
  void check_frame_count(int64_t frames) const;
  // A [T, H, W, C] shape as the client declared it: positive, C == 3, T/H*W within limits, no
  // overflow, aspect ratio <= 200. `what` names the field in messages.
  FramePlan plan(const std::vector<int64_t>& shape, const std::string& what) const;
  // 413 when `already` pixels plus `frames` input frames of `plan` exceed max_request_pixels;
  // returns the new total.
  int64_t check_request_pixels(int64_t frames, const FramePlan& plan, int64_t already = 0) const;
  // 413 when `already` tokens plus `frame_slots` frames of `plan` exceed max_request_tokens;
  // returns the new total.
  int64_t check_request_tokens(int64_t frame_slots, const FramePlan& plan, int64_t already = 0) const;
  // frames resized to plan.scored_* when plan.resize, else as given.
  at::Tensor fit(const at::Tensor& frames, const FramePlan& plan) const;
  // Valid UTF-8, non-empty, within max_task_chars / max_task_tokens, no special tokens.
  void check_task(const std::string& task, const std::string& what) const;

 private:
  const model::Processor& processor_;
  RequestLimits limits_;
};

// True when `s` is well-formed UTF-8; `chars` gets the code point count.
bool valid_utf8(const std::string& s, int64_t* chars = nullptr);

}  // namespace robometer::serve
