// Image preprocessing and prompt assembly of the Qwen3-VL processor, as Robometer calls it.
#include "robometer/model/processor.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "robometer/core/error.h"
#include "robometer/model/prompt.h"

namespace robometer::model {

std::pair<int64_t, int64_t> smart_resize(int64_t height, int64_t width, int64_t factor, int64_t min_pixels,
                                         int64_t max_pixels) {
  if (height <= 0 || width <= 0 || factor <= 0)
    throw Error("smart_resize: bad size " + std::to_string(height) + "x" + std::to_string(width));
  if (max_pixels < min_pixels) throw ConfigError("smart_resize: max_pixels < min_pixels");
  const double h = static_cast<double>(height), w = static_cast<double>(width),
               f = static_cast<double>(factor);
  if (std::max(h, w) / std::min(h, w) > 200)
    throw Error("smart_resize: aspect ratio of " + std::to_string(height) + "x" + std::to_string(width) +
                " is above 200");
  // std::nearbyint rounds half to even under the default rounding mode, like Python's round().
  int64_t h_bar = std::max(factor, static_cast<int64_t>(std::nearbyint(h / f)) * factor);
  int64_t w_bar = std::max(factor, static_cast<int64_t>(std::nearbyint(w / f)) * factor);
  if (h_bar * w_bar > max_pixels) {
    const double beta = std::sqrt(h * w / static_cast<double>(max_pixels));
    h_bar = static_cast<int64_t>(std::floor(h / beta / f)) * factor;
    w_bar = static_cast<int64_t>(std::floor(w / beta / f)) * factor;
  } else if (h_bar * w_bar < min_pixels) {
    const double beta = std::sqrt(static_cast<double>(min_pixels) / (h * w));
    h_bar = static_cast<int64_t>(std::ceil(h * beta / f)) * factor;
    w_bar = static_cast<int64_t>(std::ceil(w * beta / f)) * factor;
  }
  return {h_bar, w_bar};
}

namespace {

// Pillow's Resample.c: bicubic with a = -0.5, support scaled by the downscale factor
// (antialias), weights normalised then fixed-point with 22 fractional bits.
constexpr int kPrecisionBits = 32 - 8 - 2;

double bicubic(double x) {
  constexpr double a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

struct Coeffs {
  int ksize = 0;
  std::vector<int> bounds;  // per output: xmin, count
  std::vector<int> k;       // fixed-point weights, ksize per output
};

Coeffs precompute_coeffs(int in_size, int out_size) {
  Coeffs c;
  const double scale = static_cast<double>(in_size) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = 2.0 * filterscale;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.bounds.resize(2 * static_cast<size_t>(out_size));
  c.k.assign(static_cast<size_t>(out_size) * c.ksize, 0);
  std::vector<double> w(c.ksize);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    // Pillow's (int)(x + 0.5) casts, truncating toward zero, kept for bit-exact resizes (not lround).
    // NOLINTBEGIN(bugprone-incorrect-roundings)
    int xmin = static_cast<int>(center - support + 0.5);  // C cast truncates, as in Pillow
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0;
    for (int x = 0; x < xmax; ++x) {
      w[x] = bicubic((x + xmin - center + 0.5) * ss);
      ww += w[x];
    }
    for (int x = 0; x < xmax; ++x) {
      const double v = ww != 0.0 ? w[x] / ww : w[x];
      c.k[static_cast<size_t>(xx) * c.ksize + x] = v < 0 ? static_cast<int>(-0.5 + v * (1 << kPrecisionBits))
                                                         : static_cast<int>(0.5 + v * (1 << kPrecisionBits));
    }
    // NOLINTEND(bugprone-incorrect-roundings)
    c.bounds[2 * static_cast<size_t>(xx)] = xmin;
    c.bounds[2 * static_cast<size_t>(xx) + 1] = xmax;
  }
  return c;
}

inline uint8_t clip8(int v) {
  const int s = v >> kPrecisionBits;  // arithmetic shift, as Pillow's lookup index
  return static_cast<uint8_t>(s < 0 ? 0 : s > 255 ? 255 : s);
}

// One pass along x (horizontal) for an image of `rows` rows; in/out are HWC uint8, 3 channels.
void resample_horizontal(const uint8_t* in, int in_w, uint8_t* out, int out_w, int rows, const Coeffs& c) {
  for (int y = 0; y < rows; ++y) {
    const uint8_t* src = in + static_cast<size_t>(y) * in_w * 3;
    uint8_t* dst = out + static_cast<size_t>(y) * out_w * 3;
    for (int xx = 0; xx < out_w; ++xx) {
      const int xmin = c.bounds[2 * static_cast<size_t>(xx)], n = c.bounds[2 * static_cast<size_t>(xx) + 1];
      const int* k = &c.k[static_cast<size_t>(xx) * c.ksize];
      int s0 = 1 << (kPrecisionBits - 1), s1 = s0, s2 = s0;
      for (int x = 0; x < n; ++x) {
        const uint8_t* p = src + static_cast<size_t>(x + xmin) * 3;
        s0 += p[0] * k[x];
        s1 += p[1] * k[x];
        s2 += p[2] * k[x];
      }
      dst[xx * 3 + 0] = clip8(s0);
      dst[xx * 3 + 1] = clip8(s1);
      dst[xx * 3 + 2] = clip8(s2);
    }
  }
}

void resample_vertical(const uint8_t* in, uint8_t* out, int width, int out_h, const Coeffs& c) {
  const size_t row = static_cast<size_t>(width) * 3;
  for (int yy = 0; yy < out_h; ++yy) {
    const int ymin = c.bounds[2 * static_cast<size_t>(yy)], n = c.bounds[2 * static_cast<size_t>(yy) + 1];
    const int* k = &c.k[static_cast<size_t>(yy) * c.ksize];
    uint8_t* dst = out + yy * row;
    for (size_t i = 0; i < row; ++i) {
      int s = 1 << (kPrecisionBits - 1);
      for (int y = 0; y < n; ++y) s += in[(y + ymin) * row + i] * k[y];
      dst[i] = clip8(s);
    }
  }
}

void check_frame(const at::Tensor& image, const char* what) {
  if (!image.defined() || image.dim() != 3 || image.size(2) != 3 || image.scalar_type() != at::kByte)
    throw Error(std::string(what) + ": expected a uint8 [H, W, 3] frame, got " +
                (image.defined() ? image.toString() + " of shape " + std::to_string(image.dim()) + "-d"
                                 : "undefined"));
}

void check_frames(const at::Tensor& frames, const std::string& what) {
  if (!frames.defined() || frames.dim() != 4 || frames.size(3) != 3 || frames.scalar_type() != at::kByte ||
      frames.size(0) == 0)
    throw Error(what + ": expected uint8 frames [K>0, H, W, 3]");
}

}  // namespace

at::Tensor resize_bicubic_pil(const at::Tensor& image, int64_t out_h, int64_t out_w) {
  check_frame(image, "resize_bicubic_pil");
  if (out_h <= 0 || out_w <= 0) throw Error("resize_bicubic_pil: bad output size");
  const at::Tensor in = image.contiguous();
  const int in_h = static_cast<int>(in.size(0)), in_w = static_cast<int>(in.size(1));
  if (in_h == out_h && in_w == out_w) return in.clone();  // PIL returns a copy when sizes match
  at::Tensor cur = in;
  if (out_w != in_w) {  // horizontal pass first, as Pillow does
    const Coeffs c = precompute_coeffs(in_w, static_cast<int>(out_w));
    at::Tensor tmp = at::empty({in_h, out_w, 3}, at::kByte);
    resample_horizontal(cur.data_ptr<uint8_t>(), in_w, tmp.data_ptr<uint8_t>(), static_cast<int>(out_w), in_h,
                        c);
    cur = tmp;
  }
  if (out_h != in_h) {
    const Coeffs c = precompute_coeffs(in_h, static_cast<int>(out_h));
    at::Tensor tmp = at::empty({out_h, out_w, 3}, at::kByte);
    resample_vertical(cur.data_ptr<uint8_t>(), tmp.data_ptr<uint8_t>(), static_cast<int>(out_w),
                      static_cast<int>(out_h), c);
    cur = tmp;
  }
  return cur;
}

ImagePatches patchify(const at::Tensor& resized, const ProcessorOptions& o) {
  check_frame(resized, "patchify");
  const int64_t H = resized.size(0), W = resized.size(1), P = o.patch_size, M = o.merge_size,
                T = o.temporal_patch_size;
  if (H % (P * M) != 0 || W % (P * M) != 0)
    throw Error("patchify: frame " + std::to_string(H) + "x" + std::to_string(W) + " is not a multiple of " +
                std::to_string(P * M));
  // Fast processor: rescale and normalise fused as (x - mean/scale) / (std/scale) in float32.
  const at::Tensor mean =
      at::tensor({o.image_mean[0], o.image_mean[1], o.image_mean[2]}, at::kFloat).mul(255.f);
  const at::Tensor stdv = at::tensor({o.image_std[0], o.image_std[1], o.image_std[2]}, at::kFloat).mul(255.f);
  at::Tensor x = resized.permute({2, 0, 1}).to(at::kFloat);  // [3, H, W]
  x = (x - mean.view({3, 1, 1})) / stdv.view({3, 1, 1});
  x = x.unsqueeze(0).repeat({T, 1, 1, 1});  // a still image fills the temporal patch
  const int64_t gt = 1, gh = H / P, gw = W / P;
  x = x.reshape({gt, T, 3, gh / M, M, P, gw / M, M, P}).permute({0, 3, 6, 4, 7, 2, 1, 5, 8});
  ImagePatches out;
  out.pixel_values = x.reshape({gt * gh * gw, 3 * T * P * P}).contiguous();
  out.grid_thw = {gt, gh, gw};
  return out;
}

ImagePatches preprocess_image(const at::Tensor& image, const ProcessorOptions& o) {
  check_frame(image, "preprocess_image");
  const auto [h, w] =
      smart_resize(image.size(0), image.size(1), o.patch_size * o.merge_size, o.min_pixels, o.max_pixels);
  return patchify(resize_bicubic_pil(image, h, w), o);
}

Processor::Processor(const Tokenizer& tokenizer, ProcessorOptions opts)
    : tok_(&tokenizer), opts_(std::move(opts)) {
  // Every token the prompt template writes must be one added (special) token: otherwise it is
  // split into ordinary text and the prompt silently differs from the original.
  auto need = [&](const std::string& t) {
    auto id = tok_->token_to_id(t);
    if (!id) throw ConfigError("processor: tokenizer has no token " + t);
    if (!tok_->is_added_token(*id))
      throw ConfigError("processor: tokenizer token " + t + " (id " + std::to_string(*id) +
                        ") is not an added special token; the prompt would be tokenized as text");
    return *id;
  };
  pad_id_ = need(opts_.pad_token);
  image_pad_id_ = need("<|image_pad|>");
  for (const char* t : {"<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>"}) need(t);
  const RobometerTokenIds ids = tok_->robometer_special_ids();
  prog_id_ = ids.prog;
  pref_id_ = ids.pref;
}

int64_t Processor::image_pad_count(int64_t height, int64_t width) const {
  const int64_t f = opts_.patch_size * opts_.merge_size;
  const auto [h, w] = smart_resize(height, width, f, opts_.min_pixels, opts_.max_pixels);
  return (h / opts_.patch_size) * (w / opts_.patch_size) / (opts_.merge_size * opts_.merge_size);
}

namespace {

// A task with <|image_pad|>, <|prog_token|>, ... inside would corrupt the head positions.
void check_task(const Tokenizer& tok, const std::string& task, size_t index) {
  for (int64_t id : tok.encode(task))
    if (tok.is_added_token(id))
      throw Error("processor: task of sample " + std::to_string(index) + " contains the special token " +
                  tok.id_to_token(id));
}

std::vector<int64_t> preprocess_frames(const at::Tensor& frames, const ProcessorOptions& o,
                                       std::vector<ImagePatches>& images) {
  std::vector<int64_t> pads;
  for (int64_t k = 0; k < frames.size(0); ++k) {
    images.push_back(preprocess_image(frames[k], o));
    const auto& g = images.back().grid_thw;
    pads.push_back(g[0] * g[1] * g[2] / (o.merge_size * o.merge_size));
  }
  return pads;
}

}  // namespace

int64_t PreparedPrompt::num_patches() const {
  int64_t n = 0;
  for (const auto& im : images) n += im.pixel_values.size(0);
  return n;
}

ModelInputs Processor::progress_inputs(const std::vector<ProgressQuery>& queries) const {
  if (queries.empty()) throw Error("processor: empty batch");
  std::vector<PreparedPrompt> prepared;
  for (size_t i = 0; i < queries.size(); ++i) {
    check_frames(queries[i].frames, "progress query " + std::to_string(i));
    check_task(*tok_, queries[i].task, i);
    std::vector<ImagePatches> images;
    const auto pads = preprocess_frames(queries[i].frames, opts_, images);
    prepared.push_back(tokenize(render_progress_prompt(queries[i].task, pads), std::move(images),
                                std::accumulate(pads.begin(), pads.end(), int64_t{0}), i));
  }
  std::vector<const PreparedPrompt*> ptrs;
  for (const auto& p : prepared) ptrs.push_back(&p);
  return collate(ptrs);
}

PreparedPrompt Processor::prepare_pair(const PairQuery& query, size_t index) const {
  check_frames(query.frames_a, "pair query " + std::to_string(index) + " trajectory A");
  check_frames(query.frames_b, "pair query " + std::to_string(index) + " trajectory B");
  check_task(*tok_, query.task, index);
  std::vector<ImagePatches> images;
  const auto pads_a = preprocess_frames(query.frames_a, opts_, images);
  const auto pads_b = preprocess_frames(query.frames_b, opts_, images);
  const int64_t pads = std::accumulate(pads_a.begin(), pads_a.end(), int64_t{0}) +
                       std::accumulate(pads_b.begin(), pads_b.end(), int64_t{0});
  return tokenize(render_pair_prompt(query.task, pads_a, pads_b, opts_.predict_pref_progress),
                  std::move(images), pads, index);
}

ModelInputs Processor::pair_inputs(const std::vector<PairQuery>& queries) const {
  if (queries.empty()) throw Error("processor: empty batch");
  std::vector<PreparedPrompt> prepared;
  for (size_t i = 0; i < queries.size(); ++i) prepared.push_back(prepare_pair(queries[i], i));
  std::vector<const PreparedPrompt*> ptrs;
  for (const auto& p : prepared) ptrs.push_back(&p);
  return collate(ptrs);
}

PreparedPrompt Processor::tokenize(const std::string& prompt, std::vector<ImagePatches> images,
                                   int64_t image_pads, size_t index) const {
  PreparedPrompt out;
  out.ids = tok_->encode(prompt);
  // Sanity check (HF raises the same way): one <|image_pad|> per vision token.
  const int64_t pads = std::count(out.ids.begin(), out.ids.end(), image_pad_id_);
  if (pads != image_pads)
    throw Error("processor: sample " + std::to_string(index) + " has " + std::to_string(pads) +
                " <|image_pad|> tokens for " + std::to_string(image_pads) +
                " image positions (does the task text contain special tokens?)");
  for (size_t i = 0; i < out.ids.size(); ++i) {
    if (out.ids[i] == prog_id_) out.prog.push_back(static_cast<int64_t>(i));
    if (out.ids[i] == pref_id_) out.pref = static_cast<int64_t>(i);
  }
  out.images = std::move(images);
  return out;
}

ModelInputs Processor::collate(const std::vector<const PreparedPrompt*>& prompts, bool pinned) const {
  if (prompts.empty()) throw Error("processor: empty batch");
  const int64_t B = static_cast<int64_t>(prompts.size());
  int64_t L = 0, T = 0, rows = 0, images = 0, width = 0;
  for (const PreparedPrompt* p : prompts) {
    L = std::max<int64_t>(L, static_cast<int64_t>(p->ids.size()));
    T = std::max<int64_t>(T, static_cast<int64_t>(p->prog.size()));
    rows += p->num_patches();
    images += static_cast<int64_t>(p->images.size());
    for (const auto& im : p->images) width = im.pixel_values.size(1);
  }
  const auto host = at::TensorOptions().dtype(at::kLong).pinned_memory(pinned);
  ModelInputs in;
  in.input_ids = at::full({B, L}, pad_id_, host);
  in.attention_mask = at::zeros({B, L}, host);
  in.prog_positions = at::full({B, T}, -1, host);
  in.pref_positions = at::empty({B}, host);
  in.image_grid_thw = at::empty({images, 3}, host);
  auto ids_a = in.input_ids.accessor<int64_t, 2>();
  auto mask_a = in.attention_mask.accessor<int64_t, 2>();
  auto prog_a = in.prog_positions.accessor<int64_t, 2>();
  auto pref_a = in.pref_positions.accessor<int64_t, 1>();
  auto grid_a = in.image_grid_thw.accessor<int64_t, 2>();
  std::vector<at::Tensor> pixels;
  pixels.reserve(static_cast<size_t>(images));
  int64_t image = 0;
  for (int64_t b = 0; b < B; ++b) {
    const PreparedPrompt& p = *prompts[static_cast<size_t>(b)];
    for (size_t i = 0; i < p.ids.size(); ++i) {
      ids_a[b][i] = p.ids[i];
      mask_a[b][i] = 1;
    }
    for (size_t t = 0; t < p.prog.size(); ++t) prog_a[b][t] = p.prog[t];
    pref_a[b] = p.pref;
    for (const auto& im : p.images) {
      pixels.push_back(im.pixel_values);
      for (int d = 0; d < 3; ++d) grid_a[image][d] = im.grid_thw[d];
      ++image;
    }
  }
  in.pixel_values = at::empty({rows, width}, at::TensorOptions().dtype(at::kFloat).pinned_memory(pinned));
  if (!pixels.empty()) at::cat_out(in.pixel_values, pixels, 0);
  return in;
}

}  // namespace robometer::model
