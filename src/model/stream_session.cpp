#include "robometer/model/stream_session.h"

#include <torch/torch.h>

#include <algorithm>
#include <set>
#include <string>

#include "robometer/model/cached_decoder.h"
#include "robometer/model/prompt.h"

namespace robometer::model {

StreamModel::StreamModel(ModelBundle& bundle, StreamOptions opts) : bundle_(bundle), opts_(std::move(opts)) {
  if (!bundle_.model || !bundle_.processor || !bundle_.tokenizer)
    throw Error("stream: incomplete model bundle");
  if (opts_.max_frames_per_session < 0) throw ConfigError("stream: max_frames_per_session must be >= 0");
  image_pad_id_ = bundle_.model->config().backbone.image_token_id;
  prog_id_ = bundle_.tokenizer->robometer_special_ids().prog;
}

std::unique_ptr<StreamSession> StreamModel::open(const std::string& task) const {
  if (task.empty()) throw Error("stream: empty task instruction");
  for (int64_t id : bundle_.tokenizer->encode(task))
    if (bundle_.tokenizer->is_added_token(id))
      throw Error("stream: task contains the special token " + bundle_.tokenizer->id_to_token(id));
  const auto& t = bundle_.model->config().backbone.text;
  const auto& w = bundle_.model->model->language_model->embed_tokens->weight;
  auto s = std::unique_ptr<StreamSession>(new StreamSession());
  s->task_ = task;
  const auto options = at::TensorOptions().dtype(w.scalar_type()).device(w.device());
  s->cache_ = std::make_unique<KvCache>(t.num_hidden_layers, t.num_key_value_heads, t.head_dim, options,
                                        opts_.budget);
  return s;
}

StreamAppend StreamModel::prepare(StreamSession& s, const at::Tensor& frames) const {
  if (!frames.defined() || frames.dim() != 4 || frames.size(3) != 3 || frames.scalar_type() != at::kByte ||
      frames.size(0) == 0)
    throw Error("stream: expected uint8 frames [n>0, H, W, 3]");
  const int64_t n = frames.size(0), limit = opts_.max_frames_per_session;
  if (limit > 0 && s.frames_ + n > limit)
    throw StreamFrameLimit("session has " + std::to_string(s.frames_) + " frames; " + std::to_string(n) +
                           " more would pass the limit of " + std::to_string(limit) +
                           " frames per session (serve --max-frames-per-session)");
  const auto& opts = bundle_.processor->options();
  const int64_t merge = bundle_.model->config().backbone.vision.spatial_merge_size;
  StreamAppend a;
  a.session = &s;
  int64_t pos = s.next_position_;
  for (int64_t i = 0; i < n; ++i) {
    a.images.push_back(preprocess_image(frames[i], opts));
    const auto& g = a.images.back().grid_thw;
    const int64_t gh = g[1] / merge, gw = g[2] / merge, pads = g[0] * gh * gw;
    const int picture = static_cast<int>(s.frames_ + i + 1);
    std::string text = progress_frame_text(picture, pads);
    if (picture == 1) text = progress_prompt_head(s.task_) + text;  // one text run with "Picture 1: "
    const std::vector<int64_t> ids = bundle_.tokenizer->encode(text);
    const auto first_pad = std::find(ids.begin(), ids.end(), image_pad_id_);
    const int64_t before = first_pad - ids.begin();
    if (first_pad == ids.end() || static_cast<int64_t>(ids.size()) != before + pads + 2 ||
        ids.back() != prog_id_)
      throw Error("stream: frame " + std::to_string(picture) + " does not tokenize as text, " +
                  std::to_string(pads) + " image pads, <|vision_end|>, <|prog_token|>");
    // M-RoPE as HF get_rope_index: text counts up; the image's tokens are (0, row, col) offset
    // by the counter; the next text starts after the image's largest position.
    auto push = [&](int64_t t, int64_t h, int64_t w) {
      a.positions[0].push_back(t);
      a.positions[1].push_back(h);
      a.positions[2].push_back(w);
    };
    for (int64_t j = 0; j < before; ++j, ++pos) push(pos, pos, pos);
    for (int64_t ti = 0; ti < g[0]; ++ti)
      for (int64_t hi = 0; hi < gh; ++hi)
        for (int64_t wi = 0; wi < gw; ++wi) push(pos + ti, pos + hi, pos + wi);
    pos += std::max({g[0] - 1, gh - 1, gw - 1}) + 1;
    for (int j = 0; j < 2; ++j, ++pos) push(pos, pos, pos);  // <|vision_end|>, <|prog_token|>
    a.ids.insert(a.ids.end(), ids.begin(), ids.end());
    a.prog.push_back(static_cast<int64_t>(a.ids.size()) - 1);
  }
  a.next_position = pos;
  a.base_tokens = s.cache_->length();
  s.cache_->reserve(static_cast<int64_t>(a.ids.size()));
  return a;
}

std::vector<StreamFrameOutputs> StreamModel::run(const std::vector<StreamAppend>& batch) {
  if (batch.empty()) return {};
  std::set<const StreamSession*> seen;
  std::vector<int64_t> ids, segments, prog, pos[3];
  std::vector<KvCache*> caches;
  std::vector<at::Tensor> pixels;
  std::vector<int64_t> grid;
  for (const auto& a : batch) {
    if (!a.session || !seen.insert(a.session).second) throw Error("stream: one append per session and batch");
    if (a.base_tokens != a.session->cache_->length() ||
        a.session->cache_->capacity() < a.base_tokens + static_cast<int64_t>(a.ids.size()))
      throw Error("stream: append was not prepared for the session's current state");
    for (int64_t p : a.prog) prog.push_back(static_cast<int64_t>(ids.size()) + p);
    ids.insert(ids.end(), a.ids.begin(), a.ids.end());
    for (int d = 0; d < 3; ++d) pos[d].insert(pos[d].end(), a.positions[d].begin(), a.positions[d].end());
    segments.push_back(static_cast<int64_t>(a.ids.size()));
    caches.push_back(a.session->cache_.get());
    for (const auto& im : a.images) {
      pixels.push_back(im.pixel_values);
      grid.insert(grid.end(), im.grid_thw.begin(), im.grid_thw.end());
    }
  }
  torch::NoGradGuard no_grad;
  auto& rm = bundle_.model;
  rm->eval();
  auto& bb = *rm->model;
  const auto& w = bb.language_model->embed_tokens->weight;
  const int64_t N = static_cast<int64_t>(ids.size());
  const at::Tensor id_t = at::tensor(ids, at::kLong).view({1, N}).to(w.device());
  at::Tensor embeds = bb.language_model->embed_tokens->forward(id_t);
  const at::Tensor grid_t = at::tensor(grid, at::kLong).view({-1, 3});
  const VisionOutput vis = bb.visual->forward(
      at::cat(pixels, 0).to(w.device(), bb.visual->patch_embed->proj->weight.scalar_type()), grid_t);
  const at::Tensor visual_mask = id_t.eq(bb.config().image_token_id);
  embeds =
      embeds.masked_scatter(visual_mask.unsqueeze(-1).expand_as(embeds), vis.embeds.to(embeds.scalar_type()));
  const at::Tensor positions =
      at::stack({at::tensor(pos[0], at::kLong), at::tensor(pos[1], at::kLong), at::tensor(pos[2], at::kLong)})
          .view({3, 1, N});
  const at::Tensor h = text_forward_cached(*bb.language_model, embeds, positions, segments, caches,
                                           visual_mask, vis.deepstack, opts_.padded_attention);
  const RewardOutputs r = rm->heads(h, at::tensor(prog, at::kLong).view({1, -1}), at::Tensor());
  const at::Tensor progress = r.progress[0].to(at::kCPU, at::kDouble).contiguous();
  const at::Tensor success =
      at::sigmoid(r.success_logits[0].to(at::kFloat)).to(at::kCPU, at::kDouble).contiguous();
  std::vector<StreamFrameOutputs> out;
  int64_t f = 0;
  for (const auto& a : batch) {
    StreamFrameOutputs o;
    for (size_t i = 0; i < a.prog.size(); ++i, ++f) {
      o.progress.push_back(progress.data_ptr<double>()[f]);
      o.success.push_back(success.data_ptr<double>()[f]);
    }
    StreamSession& s = *a.session;
    s.cache_->commit(static_cast<int64_t>(a.ids.size()));
    s.frames_ += static_cast<int64_t>(a.prog.size());
    s.next_position_ = a.next_position;
    out.push_back(std::move(o));
  }
  return out;
}

std::vector<StreamFrameOutputs> StreamModel::append(const std::vector<StreamSession*>& sessions,
                                                    const std::vector<at::Tensor>& frames) {
  if (sessions.size() != frames.size()) throw Error("stream: one frames tensor per session");
  std::vector<StreamAppend> batch;
  for (size_t i = 0; i < sessions.size(); ++i) batch.push_back(prepare(*sessions[i], frames[i]));
  return run(batch);
}

}  // namespace robometer::model
