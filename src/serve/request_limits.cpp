#include "robometer/serve/request_limits.h"

#include <algorithm>

namespace robometer::serve {

void throw_over_limit(const std::string& what, int64_t value, int64_t limit, const char* flag) {
  throw ClientError(413, what + ": " + std::to_string(value) + "; the limit is " + std::to_string(limit) +
                             " (raise it with serve " + flag + ")");
}

bool valid_utf8(const std::string& s, int64_t* chars) {
  int64_t n = 0;
  for (size_t i = 0; i < s.size(); ++n) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len;
    uint32_t cp;
    if (c < 0x80) {
      len = 1;
      cp = c;
    } else if ((c >> 5) == 0x6) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c >> 4) == 0xE) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c >> 3) == 0x1E) {
      len = 4;
      cp = c & 0x07;
    } else
      return false;
    if (i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc >> 6) != 0x2) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values above U+10FFFF are not UTF-8.
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  if (chars) *chars = n;
  return true;
}

RequestBudget::RequestBudget(const model::Processor& processor, RequestLimits limits)
    : processor_(processor), limits_(limits) {
  const RequestLimits& l = limits_;
  for (int64_t v : {l.max_request_bytes, l.max_frames, l.max_frame_pixels, l.max_request_pixels,
                    l.max_frame_tokens, l.max_request_tokens, l.max_batch_tokens, l.max_task_chars,
                    l.max_task_tokens, l.max_json_values, static_cast<int64_t>(l.max_json_depth)})
    if (v < 1) throw ConfigError("serve: every request limit must be >= 1");
  if (l.max_request_tokens > l.max_batch_tokens)
    throw ConfigError("serve: --max-request-tokens (" + std::to_string(l.max_request_tokens) +
                      ") must not exceed --max-batch-tokens (" + std::to_string(l.max_batch_tokens) + ")");
  const auto& po = processor_.options();
  const int64_t f = po.patch_size * po.merge_size;
  if (l.max_frame_tokens * f * f < po.min_pixels)
    throw ConfigError("serve: --max-frame-tokens " + std::to_string(l.max_frame_tokens) +
                      " is below the processor's minimum of " + std::to_string(po.min_pixels / (f * f)) +
                      " tokens per frame");
}

void RequestBudget::check_frame_count(int64_t frames) const {
  if (frames > limits_.max_frames)
    throw_over_limit("frames in one request", frames, limits_.max_frames, "--max-frames");
}

FramePlan RequestBudget::plan(const std::vector<int64_t>& shape, const std::string& what) const {
  if (shape.size() != 4)
    throw ClientError(
        400, what + ": expected a [T, H, W, 3] shape, got " + std::to_string(shape.size()) + " dimensions");
  for (int64_t v : shape)
    if (v <= 0)
      throw ClientError(400, what + ": shape dimensions must be positive, got " + std::to_string(v));
  if (shape[3] != 3)
    throw ClientError(400, what + ": last dimension must be 3 (RGB), got " + std::to_string(shape[3]));
  check_frame_count(shape[0]);
  const int64_t h = shape[1], w = shape[2];
  // Each side alone is at most the pixel limit, so H*W cannot overflow int64 below.
  if (h > limits_.max_frame_pixels || w > limits_.max_frame_pixels || h * w > limits_.max_frame_pixels)
    throw ClientError(
        413, what + ": a " + std::to_string(h) + "x" + std::to_string(w) + " frame has " +
                 (h > limits_.max_frame_pixels || w > limits_.max_frame_pixels ? std::string("more")
                                                                               : std::to_string(h * w)) +
                 " pixels; the limit is " + std::to_string(limits_.max_frame_pixels) +
                 " (raise it with serve --max-frame-pixels)");
  if (std::max(h, w) > 200 * std::min(h, w))
    throw ClientError(400, what + ": a " + std::to_string(h) + "x" + std::to_string(w) +
                               " frame has an aspect ratio above 200, which the model cannot take");
  const auto& po = processor_.options();
  const int64_t f = po.patch_size * po.merge_size;
  const int64_t server_max = std::min(po.max_pixels, limits_.max_frame_tokens * f * f);
  FramePlan p;
  p.height = h;
  p.width = w;
  const auto model_size = model::smart_resize(h, w, f, po.min_pixels, po.max_pixels);
  const auto capped = model::smart_resize(h, w, f, po.min_pixels, server_max);
  p.scored_height = capped.first;
  p.scored_width = capped.second;
  p.resize = capped != model_size;
  p.tokens = processor_.image_pad_count(p.scored_height, p.scored_width);
  return p;
}

int64_t RequestBudget::check_request_pixels(int64_t frames, const FramePlan& plan, int64_t already) const {
  const int64_t pixels = already + frames * plan.height * plan.width;  // each factor within its limit
  if (pixels > limits_.max_request_pixels)
    throw_over_limit("input pixels in one request (" + std::to_string(frames) + " frames of " +
                         std::to_string(plan.height) + "x" + std::to_string(plan.width) +
                         (already ? " after " + std::to_string(already) : "") + ")",
                     pixels, limits_.max_request_pixels, "--max-request-pixels");
  return pixels;
}

int64_t RequestBudget::check_request_tokens(int64_t frame_slots, const FramePlan& plan,
                                            int64_t already) const {
  // frame_slots <= max_frames * max K and tokens <= max_frame_tokens: no overflow.
  const int64_t tokens = already + frame_slots * plan.tokens;
  if (tokens > limits_.max_request_tokens)
    throw_over_limit("visual tokens in one request (" + std::to_string(frame_slots) + " frames of " +
                         std::to_string(plan.tokens) + " tokens" +
                         (already ? " after " + std::to_string(already) : "") + ")",
                     tokens, limits_.max_request_tokens, "--max-request-tokens");
  return tokens;
}

at::Tensor RequestBudget::fit(const at::Tensor& frames, const FramePlan& plan) const {
  if (!plan.resize) return frames;
  at::Tensor out = at::empty({frames.size(0), plan.scored_height, plan.scored_width, 3}, at::kByte);
  for (int64_t t = 0; t < frames.size(0); ++t)
    out[t].copy_(model::resize_bicubic_pil(frames[t], plan.scored_height, plan.scored_width));
  return out;
}

void RequestBudget::check_task(const std::string& task, const std::string& what) const {
  int64_t chars = 0;
  if (!valid_utf8(task, &chars)) throw ClientError(400, what + ": not valid UTF-8");
  if (chars == 0) throw ClientError(400, what + ": empty");
  if (chars > limits_.max_task_chars)
    throw_over_limit(what + " length in characters", chars, limits_.max_task_chars, "--max-task-chars");
  const auto& tok = processor_.tokenizer();
  const auto ids = tok.encode(task);
  if (static_cast<int64_t>(ids.size()) > limits_.max_task_tokens)
    throw_over_limit(what + " length in tokens", static_cast<int64_t>(ids.size()), limits_.max_task_tokens,
                     "--max-task-tokens");
  for (int64_t id : ids)
    if (tok.is_added_token(id))
      throw ClientError(400, what + " contains the special token " + tok.id_to_token(id) +
                                 ", which would corrupt the prompt");
}

}  // namespace robometer::serve
