// Cairo helpers shared by the plot files (internal to the plot layer).
#pragma once
#include <ATen/ATen.h>
#include <cairo.h>

#include <string>
#include <vector>

#include "robometer/core/error.h"

namespace robometer::plot::detail {

// A Cairo RGB24 image surface holding one uint8 [H, W, 3] frame.
inline cairo_surface_t* frame_surface(const at::Tensor& frame) {
  const int h = static_cast<int>(frame.size(0)), w = static_cast<int>(frame.size(1));
  cairo_surface_t* s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
  cairo_surface_flush(s);
  unsigned char* dst = cairo_image_surface_get_data(s);
  const int stride = cairo_image_surface_get_stride(s);
  const at::Tensor f = frame.contiguous();
  const uint8_t* src = f.data_ptr<uint8_t>();
  for (int y = 0; y < h; ++y) {
    auto* row = reinterpret_cast<uint32_t*>(dst + y * stride);
    for (int x = 0; x < w; ++x) {
      const uint8_t* p = src + (static_cast<int64_t>(y) * w + x) * 3;
      row[x] = (0xFFu << 24) | (uint32_t{p[0]} << 16) | (uint32_t{p[1]} << 8) | uint32_t{p[2]};
    }
  }
  cairo_surface_mark_dirty(s);
  return s;
}

// Line through the points (optionally dashed), then a dot on each.
inline void polyline(cairo_t* cr, const std::vector<double>& xs, const std::vector<double>& ys,
                     bool lines = true, bool points = true, bool dashed = false) {
  if (lines && xs.size() > 1) {
    if (dashed) {
      const double dash[] = {6.0, 4.0};
      cairo_set_dash(cr, dash, 2, 0);
    }
    for (size_t i = 0; i < xs.size(); ++i) {
      if (i == 0)
        cairo_move_to(cr, xs[i], ys[i]);
      else
        cairo_line_to(cr, xs[i], ys[i]);
    }
    cairo_stroke(cr);
    cairo_set_dash(cr, nullptr, 0, 0);
  }
  if (points)
    for (size_t i = 0; i < xs.size(); ++i) {
      cairo_arc(cr, xs[i], ys[i], 3.0, 0, 6.2832);
      cairo_fill(cr);
    }
}

// Frees the context and writes the surface as a PNG (then frees it).
inline void finish_png(cairo_t* cr, cairo_surface_t* surf, const std::string& png_path) {
  cairo_destroy(cr);
  const cairo_status_t st = cairo_surface_write_to_png(surf, png_path.c_str());
  cairo_surface_destroy(surf);
  if (st != CAIRO_STATUS_SUCCESS)
    throw Error("plot: cannot write '" + png_path + "': " + cairo_status_to_string(st));
}

}  // namespace robometer::plot::detail
