#include "robometer/plot/reward_plot.h"

#include "cairo_draw.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "robometer/data/labels.h"

namespace robometer::plot {
using detail::frame_surface;
using detail::polyline;

void write_reward_plot(const RewardPlot& p, const std::string& png_path) {
  if (p.progress.empty() || p.frame_indices.size() != p.progress.size())
    throw Error("plot: need one frame index per progress value");
  const bool has_strip = p.frames.defined() && p.frames.dim() == 4 && p.frames.size(0) > 0;
  const int W = 960, plot_h = 360, margin_l = 60, margin_r = 20, top = 40;
  int strip_h = 0;
  std::vector<int64_t> thumbs;
  if (has_strip) {
    thumbs = data::linspace_positions(p.frames.size(0), std::max(1, p.max_thumbs));
    const double aspect = static_cast<double>(p.frames.size(1)) / static_cast<double>(p.frames.size(2));
    strip_h = static_cast<int>((W - margin_l - margin_r) / static_cast<double>(thumbs.size()) * aspect) + 30;
  }
  const int H = top + plot_h + 50 + strip_h;
  cairo_surface_t* surf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, W, H);
  cairo_t* cr = cairo_create(surf);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);

  // Title.
  cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
  cairo_set_font_size(cr, 16);
  cairo_move_to(cr, margin_l, 24);
  cairo_show_text(cr, p.title.c_str());

  // Axes: x = frame index over [0, last frame], y = [0, 1].
  const double x0 = margin_l, x1 = W - margin_r, y0 = top + plot_h, y1 = top;
  const double last =
      static_cast<double>(std::max<int64_t>(1, has_strip ? p.frames.size(0) - 1 : p.frame_indices.back()));
  auto X = [&](double f) { return x0 + (x1 - x0) * f / last; };
  auto Y = [&](double v) { return y0 - (y0 - y1) * v; };
  cairo_set_font_size(cr, 11);
  cairo_set_line_width(cr, 1.0);
  for (int i = 0; i <= 4; ++i) {
    const double v = i / 4.0;
    cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
    cairo_move_to(cr, x0, Y(v));
    cairo_line_to(cr, x1, Y(v));
    cairo_stroke(cr);
    char buf[16];
    std::snprintf(buf, sizeof buf, "%.2f", v);
    cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
    cairo_move_to(cr, x0 - 38, Y(v) + 4);
    cairo_show_text(cr, buf);
  }
  cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
  cairo_rectangle(cr, x0, y1, x1 - x0, y0 - y1);
  cairo_stroke(cr);
  for (int i = 0; i <= 5; ++i) {
    const double f = last * i / 5.0;
    char buf[16];
    std::snprintf(buf, sizeof buf, "%.0f", f);
    cairo_move_to(cr, X(f) - 6, y0 + 16);
    cairo_show_text(cr, buf);
  }
  cairo_move_to(cr, (x0 + x1) / 2 - 20, y0 + 34);
  cairo_show_text(cr, "frame");

  std::vector<double> xs, ys;
  if (!p.ground_truth.empty() && p.ground_truth.size() != p.progress.size())
    throw Error("plot: need one ground-truth value per progress value");
  for (size_t i = 0; i < p.progress.size(); ++i) {
    xs.push_back(X(static_cast<double>(p.frame_indices[i])));
    ys.push_back(Y(std::clamp(p.progress[i], 0.0, 1.0)));
  }
  const bool has_gt = !p.ground_truth.empty();
  if (has_gt) {
    std::vector<double> gy;
    for (double g : p.ground_truth) gy.push_back(Y(std::clamp(g, 0.0, 1.0)));
    cairo_set_line_width(cr, 2.0);
    cairo_set_source_rgb(cr, 0.17, 0.63, 0.17);
    polyline(cr, xs, gy, true, true, true);
  }
  cairo_set_line_width(cr, 2.5);
  cairo_set_source_rgb(cr, 0.12, 0.47, 0.71);
  polyline(cr, xs, ys);
  if (p.success.size() == p.progress.size()) {
    ys.clear();
    for (double s : p.success) ys.push_back(Y(std::clamp(s, 0.0, 1.0)));
    cairo_set_source_rgb(cr, 0.84, 0.15, 0.16);
    polyline(cr, xs, ys, true, true, true);
  }
  // Legend.
  cairo_set_font_size(cr, 12);
  cairo_set_source_rgb(cr, 0.12, 0.47, 0.71);
  cairo_rectangle(cr, x1 - 200, y1 + 10, 14, 4);
  cairo_fill(cr);
  cairo_move_to(cr, x1 - 180, y1 + 16);
  cairo_show_text(cr, "progress");
  if (p.success.size() == p.progress.size()) {
    cairo_set_source_rgb(cr, 0.84, 0.15, 0.16);
    cairo_rectangle(cr, x1 - 110, y1 + 10, 14, 4);
    cairo_fill(cr);
    cairo_move_to(cr, x1 - 90, y1 + 16);
    cairo_show_text(cr, "P(success)");
  }
  if (has_gt) {
    cairo_set_source_rgb(cr, 0.17, 0.63, 0.17);
    cairo_rectangle(cr, x1 - 310, y1 + 10, 14, 4);
    cairo_fill(cr);
    cairo_move_to(cr, x1 - 290, y1 + 16);
    cairo_show_text(cr, "ground truth");
  }

  // Frame strip with frame numbers.
  if (has_strip) {
    const double tw = (x1 - x0) / static_cast<double>(thumbs.size());
    const double sy = y0 + 50;
    for (size_t i = 0; i < thumbs.size(); ++i) {
      const at::Tensor f = p.frames[thumbs[i]];
      cairo_surface_t* img = frame_surface(f);
      const double scale = (tw - 4) / static_cast<double>(f.size(1));
      cairo_save(cr);
      cairo_translate(cr, x0 + i * tw + 2, sy);
      cairo_scale(cr, scale, scale);
      cairo_set_source_surface(cr, img, 0, 0);
      cairo_paint(cr);
      cairo_restore(cr);
      cairo_surface_destroy(img);
      char buf[32];
      std::snprintf(buf, sizeof buf, "frame %lld", static_cast<long long>(thumbs[i]));
      cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
      cairo_move_to(cr, x0 + i * tw + 4, sy + (tw - 4) * f.size(0) / f.size(1) + 14);
      cairo_show_text(cr, buf);
    }
  }

  detail::finish_png(cr, surf, png_path);
}

}  // namespace robometer::plot
