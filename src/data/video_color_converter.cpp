// swscale YUV→RGB (+ resize) with the frame's colour tags, then the display orientation.
#include "video_color_converter.h"

#include <cmath>
#include <cstring>
#include <utility>

extern "C" {
#include <libavformat/avformat.h>
#include <libavutil/display.h>
#include <libavutil/mem.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
}

#include "robometer/core/error.h"

namespace robometer::data {
namespace {

struct SwsFreer {
  void operator()(SwsContext* p) const { sws_freeContext(p); }
};
struct AvFreer {
  void operator()(uint8_t* p) const { av_free(p); }
};

// swscale's coefficient table for a frame's colorspace tag (untagged → BT.601, FFmpeg's default).
int sws_colorspace(AVColorSpace cs) {
  switch (cs) {
    case AVCOL_SPC_BT709:
      return SWS_CS_ITU709;
    case AVCOL_SPC_FCC:
      return SWS_CS_FCC;
    case AVCOL_SPC_SMPTE240M:
      return SWS_CS_SMPTE240M;
    case AVCOL_SPC_BT2020_NCL:
    case AVCOL_SPC_BT2020_CL:
      return SWS_CS_BT2020;
    default:
      return SWS_CS_ITU601;
  }
}

}  // namespace

// The same decision as fftools/ffmpeg_filter.c (FFmpeg 5.1) makes with -autorotate: the angle
// picks a transpose direction, the matrix signs pick the mirroring.
DisplayOrientation display_orientation(const AVStream* st, const std::string& path) {
  DisplayOrientation o;
  const auto* m =
      reinterpret_cast<const int32_t*>(av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, nullptr));
  if (!m) return o;
  double theta = -std::round(av_display_rotation_get(m));
  if (std::isnan(theta)) return o;  // degenerate matrix: ffmpeg leaves the picture alone too
  theta -= 360 * std::floor(theta / 360 + 0.9 / 360);
  if (std::fabs(theta - 90) < 1.0) {
    o.transpose = true;
    if (m[3] <= 0) o.flip_v = true;  // "clock"; m[3] > 0: "cclock_flip" (plain transpose)
  } else if (std::fabs(theta - 180) < 1.0) {
    o.flip_u = m[0] < 0;
    o.flip_v = m[4] < 0;
  } else if (std::fabs(theta - 270) < 1.0) {
    o.transpose = true;
    o.flip_u = true;                // "cclock"
    if (m[3] < 0) o.flip_v = true;  // "clock_flip"
  } else if (std::fabs(theta) > 1.0) {
    throw FormatError(path, "display rotation of " + std::to_string(theta) +
                                " degrees is not a multiple of 90; set data.autorotate: false to read the "
                                "stored pixels");
  } else if (m[4] < 0) {
    o.flip_v = true;
  }
  return o;
}

struct ColorConverter::Impl {
  std::string path;
  int out_w = 0, out_h = 0;
  DisplayOrientation orientation;
  std::unique_ptr<SwsContext, SwsFreer> sws;
  int sws_cs = -1, sws_range = -1;            // colour details last set on `sws`
  std::unique_ptr<uint8_t, AvFreer> staging;  // aligned buffer: unaligned rows or reorientation
  size_t staging_bytes = 0;

  [[noreturn]] void fail(const std::string& why) const { throw FormatError(path, why); }
  SwsContext* context_for(const AVFrame* frame, int w, int h);
  uint8_t* staging_buffer(size_t bytes);
  void reorient(const uint8_t* src, int src_w, int src_h, int src_stride, uint8_t* dst) const;
};

SwsContext* ColorConverter::Impl::context_for(const AVFrame* frame, int w, int h) {
  const auto src_fmt = static_cast<AVPixelFormat>(frame->format);
  SwsContext* ctx = sws_getCachedContext(sws.release(), frame->width, frame->height, src_fmt, w, h,
                                         AV_PIX_FMT_RGB24, SWS_BILINEAR, nullptr, nullptr, nullptr);
  if (!ctx) {
    const char* name = av_get_pix_fmt_name(src_fmt);
    fail("cannot convert " + std::string(name ? name : "?") + " frames to RGB");
  }
  if (ctx != sws.get()) sws_cs = sws_range = -1;  // a new context: colour details not set yet
  sws.reset(ctx);

  const int cs = sws_colorspace(frame->colorspace);
  int range = -1;
  if (frame->color_range == AVCOL_RANGE_JPEG) range = 1;
  if (frame->color_range == AVCOL_RANGE_MPEG) range = 0;
  if (cs != sws_cs || range != sws_range) {
    int *inv_table, *table, src_range, dst_range, brightness, contrast, saturation;
    if (sws_getColorspaceDetails(ctx, &inv_table, &src_range, &table, &dst_range, &brightness, &contrast,
                                 &saturation) >= 0) {
      // Untagged range keeps swscale's choice (full for yuvj*, limited otherwise).
      sws_setColorspaceDetails(ctx, sws_getCoefficients(cs), range >= 0 ? range : src_range,
                               sws_getCoefficients(SWS_CS_DEFAULT), 1, brightness, contrast, saturation);
    }
    sws_cs = cs;
    sws_range = range;
  }
  return ctx;
}

uint8_t* ColorConverter::Impl::staging_buffer(size_t bytes) {
  if (bytes > staging_bytes) {
    staging.reset(static_cast<uint8_t*>(av_malloc(bytes)));
    staging_bytes = staging ? bytes : 0;
  }
  if (!staging) fail("out of memory allocating a conversion buffer");
  return staging.get();
}

// dst (out_w × out_h, contiguous) ← src (stored orientation, src_w × src_h, rows src_stride).
void ColorConverter::Impl::reorient(const uint8_t* src, int src_w, int src_h, int src_stride,
                                    uint8_t* dst) const {
  const DisplayOrientation& o = orientation;
  for (int y = 0; y < out_h; ++y) {
    uint8_t* row = dst + static_cast<size_t>(y) * out_w * 3;
    for (int x = 0; x < out_w; ++x) {
      int u = o.transpose ? y : x, v = o.transpose ? x : y;
      if (o.flip_u) u = src_w - 1 - u;
      if (o.flip_v) v = src_h - 1 - v;
      std::memcpy(row + static_cast<size_t>(x) * 3,
                  src + static_cast<size_t>(v) * src_stride + static_cast<size_t>(u) * 3, 3);
    }
  }
}

ColorConverter::ColorConverter(std::string path, int out_w, int out_h, DisplayOrientation orientation)
    : impl_(new Impl) {
  impl_->path = std::move(path);
  impl_->out_w = out_w;
  impl_->out_h = out_h;
  impl_->orientation = orientation;
}
ColorConverter::~ColorConverter() = default;
ColorConverter::ColorConverter(ColorConverter&&) noexcept = default;
ColorConverter& ColorConverter::operator=(ColorConverter&&) noexcept = default;

void ColorConverter::convert(const AVFrame* frame, uint8_t* dst) {
  Impl& m = *impl_;
  // swscale works in the stored orientation; the display orientation is applied after.
  const int w = m.orientation.transpose ? m.out_h : m.out_w;
  const int h = m.orientation.transpose ? m.out_w : m.out_h;
  SwsContext* ctx = m.context_for(frame, w, h);
  const int row = w * 3;
  const bool direct = m.orientation.identity() && row % 16 == 0 && reinterpret_cast<uintptr_t>(dst) % 16 == 0;
  if (direct) {
    uint8_t* planes[4] = {dst, nullptr, nullptr, nullptr};
    int strides[4] = {row, 0, 0, 0};
    sws_scale(ctx, frame->data, frame->linesize, 0, frame->height, planes, strides);
    return;
  }
  // SIMD paths want 16-byte aligned rows: stage, then copy (and reorient) rows.
  const int padded = (row + 63) & ~63;
  uint8_t* stage = m.staging_buffer(static_cast<size_t>(padded) * h);
  uint8_t* planes[4] = {stage, nullptr, nullptr, nullptr};
  int strides[4] = {padded, 0, 0, 0};
  sws_scale(ctx, frame->data, frame->linesize, 0, frame->height, planes, strides);
  if (m.orientation.identity()) {
    for (int y = 0; y < h; ++y)
      std::memcpy(dst + static_cast<size_t>(y) * row, stage + static_cast<size_t>(y) * padded, row);
  } else {
    m.reorient(stage, w, h, padded, dst);
  }
}

}  // namespace robometer::data
