#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <tuple>

#include "cairo_draw.h"
#include "robometer/plot/charts.h"

namespace robometer::plot {
namespace {

void text(cairo_t* cr, double x, double y, const std::string& s, double size, Rgb c = {0.15, 0.15, 0.15}) {
  cairo_set_font_size(cr, size);
  cairo_set_source_rgb(cr, c.r, c.g, c.b);
  cairo_move_to(cr, x, y);
  cairo_show_text(cr, s.c_str());
}

double text_width(cairo_t* cr, const std::string& s, double size) {
  cairo_set_font_size(cr, size);
  cairo_text_extents_t e;
  cairo_text_extents(cr, s.c_str(), &e);
  return e.x_advance;
}

// Shortens s with "..." until it fits max_w pixels (long task instructions on heatmap axes).
std::string fit(cairo_t* cr, const std::string& s, double size, double max_w) {
  if (text_width(cr, s, size) <= max_w) return s;
  std::string t = s;
  while (!t.empty() && text_width(cr, t + "...", size) > max_w) t.pop_back();
  return t + "...";
}

std::string tick(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, std::fabs(v) >= 100 ? "%.0f" : "%.2g", v);
  return buf;
}

cairo_t* new_canvas(int w, int h, cairo_surface_t** surf) {
  *surf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
  cairo_t* cr = cairo_create(*surf);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  return cr;
}

// Blue (low) → white → red (high), the usual diverging map for a reward matrix.
Rgb heat(double t) {
  t = std::clamp(t, 0.0, 1.0);
  const Rgb lo{0.23, 0.30, 0.75}, mid{0.97, 0.97, 0.97}, hi{0.71, 0.02, 0.15};
  const Rgb& a = t < 0.5 ? lo : mid;
  const Rgb& b = t < 0.5 ? mid : hi;
  const double u = t < 0.5 ? t * 2 : (t - 0.5) * 2;
  return {a.r + (b.r - a.r) * u, a.g + (b.g - a.g) * u, a.b + (b.b - a.b) * u};
}

}  // namespace

Rgb palette(size_t i) {
  static const Rgb tab10[] = {{0.12, 0.47, 0.71}, {1.00, 0.50, 0.05}, {0.17, 0.63, 0.17}, {0.84, 0.15, 0.16},
                              {0.58, 0.40, 0.74}, {0.55, 0.34, 0.29}, {0.89, 0.47, 0.76}, {0.50, 0.50, 0.50},
                              {0.74, 0.74, 0.13}, {0.09, 0.75, 0.81}};
  return tab10[i % 10];
}

bool cairo_available() { return true; }

void write_xy_chart(const XYChart& c, const std::string& png_path) {
  double xmin = std::numeric_limits<double>::infinity(), xmax = -xmin, ymin = xmin, ymax = -xmin;
  for (const auto& s : c.series) {
    if (s.x.size() != s.y.size())
      throw Error("plot " + png_path + ": series '" + s.label + "' has " + std::to_string(s.x.size()) +
                  " x and " + std::to_string(s.y.size()) + " y values");
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      xmin = std::min(xmin, s.x[i]), xmax = std::max(xmax, s.x[i]);
      ymin = std::min(ymin, s.y[i]), ymax = std::max(ymax, s.y[i]);
    }
  }
  if (!std::isfinite(xmin)) xmin = 0, xmax = 1, ymin = 0, ymax = 1;  // no data: empty axes
  if (c.x_range) std::tie(xmin, xmax) = *c.x_range;
  if (c.y_range) std::tie(ymin, ymax) = *c.y_range;
  if (xmax - xmin < 1e-12) xmin -= 0.5, xmax += 0.5;
  if (ymax - ymin < 1e-12) ymin -= 0.5, ymax += 0.5;

  cairo_surface_t* surf = nullptr;
  cairo_t* cr = new_canvas(kChartWidth, kChartHeight, &surf);
  const double x0 = 70, x1 = kChartWidth - 170, y0 = kChartHeight - 60, y1 = 45;
  auto X = [&](double v) { return x0 + (x1 - x0) * (v - xmin) / (xmax - xmin); };
  auto Y = [&](double v) { return y0 - (y0 - y1) * (v - ymin) / (ymax - ymin); };
  text(cr, x0, 26, fit(cr, c.title, 15, kChartWidth - x0 - 10), 15);

  cairo_set_line_width(cr, 1.0);
  for (int i = 0; i <= 4; ++i) {  // y grid + labels
    const double v = ymin + (ymax - ymin) * i / 4.0;
    cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
    cairo_move_to(cr, x0, Y(v));
    cairo_line_to(cr, x1, Y(v));
    cairo_stroke(cr);
    text(cr, x0 - 8 - text_width(cr, tick(v), 11), Y(v) + 4, tick(v), 11, {0.3, 0.3, 0.3});
  }
  if (!c.x_tick_labels.empty()) {
    for (size_t i = 0; i < c.x_tick_labels.size(); ++i) {
      const std::string& l = c.x_tick_labels[i];
      text(cr, X(static_cast<double>(i)) - text_width(cr, l, 11) / 2, y0 + 18, l, 11, {0.3, 0.3, 0.3});
    }
  } else {
    for (int i = 0; i <= 5; ++i) {
      const double v = xmin + (xmax - xmin) * i / 5.0;
      text(cr, X(v) - text_width(cr, tick(v), 11) / 2, y0 + 18, tick(v), 11, {0.3, 0.3, 0.3});
    }
  }
  cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
  cairo_rectangle(cr, x0, y1, x1 - x0, y0 - y1);
  cairo_stroke(cr);
  text(cr, (x0 + x1) / 2 - text_width(cr, c.x_label, 12) / 2, y0 + 42, c.x_label, 12);
  cairo_save(cr);
  cairo_move_to(cr, 18, (y0 + y1) / 2 + text_width(cr, c.y_label, 12) / 2);
  cairo_rotate(cr, -M_PI / 2);
  cairo_set_font_size(cr, 12);
  cairo_show_text(cr, c.y_label.c_str());
  cairo_restore(cr);

  cairo_save(cr);
  cairo_rectangle(cr, x0, y1, x1 - x0, y0 - y1);
  cairo_clip(cr);
  if (c.identity_line) {
    const double lo = std::max(xmin, ymin), hi = std::min(xmax, ymax);
    cairo_set_source_rgb(cr, 0.6, 0.6, 0.6);
    cairo_set_line_width(cr, 1.0);
    detail::polyline(cr, {X(lo), X(hi)}, {Y(lo), Y(hi)}, true, false, true);
  }
  for (const auto& s : c.series) {
    std::vector<double> xs, ys;
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      xs.push_back(X(s.x[i]));
      ys.push_back(Y(s.y[i]));
    }
    cairo_set_source_rgb(cr, s.color.r, s.color.g, s.color.b);
    cairo_set_line_width(cr, 2.0);
    detail::polyline(cr, xs, ys, s.lines, s.points, s.dashed);
  }
  cairo_restore(cr);

  double ly = y1 + 8;  // legend, right of the axes
  for (const auto& s : c.series) {
    if (s.label.empty()) continue;
    if (ly > y0) break;
    cairo_set_source_rgb(cr, s.color.r, s.color.g, s.color.b);
    cairo_rectangle(cr, x1 + 12, ly - 4, 14, 4);
    cairo_fill(cr);
    text(cr, x1 + 32, ly + 1, fit(cr, s.label, 11, kChartWidth - x1 - 36), 11);
    ly += 18;
  }
  detail::finish_png(cr, surf, png_path);
}

void write_heatmap(const Heatmap& h, const std::string& png_path) {
  const size_t R = h.rows.size(), C = h.cols.size();
  if (h.values.size() != R)
    throw Error("plot " + png_path + ": heatmap has " + std::to_string(h.values.size()) + " value rows for " +
                std::to_string(R) + " row labels");
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (const auto& row : h.values) {
    if (row.size() != C)
      throw Error("plot " + png_path + ": heatmap row of " + std::to_string(row.size()) + " values for " +
                  std::to_string(C) + " column labels");
    for (double v : row)
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  }
  if (!std::isfinite(lo)) lo = 0, hi = 1;
  if (hi - lo < 1e-12) hi = lo + 1;

  cairo_surface_t* surf = nullptr;
  cairo_t* cr = new_canvas(kHeatmapWidth, kHeatmapHeight, &surf);
  text(cr, 20, 26, fit(cr, h.title, 15, kHeatmapWidth - 30), 15);
  const double left = 230, top = 60, right = kHeatmapWidth - 90, bottom = kHeatmapHeight - 200;
  const double cw = C ? (right - left) / C : 0, ch = R ? (bottom - top) / R : 0;
  const double font = std::clamp(std::min(cw, ch) / 4.0, 8.0, 13.0);
  for (size_t i = 0; i < R; ++i)
    for (size_t j = 0; j < C; ++j) {
      const double v = h.values[i][j];
      const Rgb c = std::isfinite(v) ? heat((v - lo) / (hi - lo)) : Rgb{0.8, 0.8, 0.8};
      cairo_set_source_rgb(cr, c.r, c.g, c.b);
      cairo_rectangle(cr, left + j * cw, top + i * ch, cw - 1, ch - 1);
      cairo_fill(cr);
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.2f", v);
      text(cr, left + j * cw + cw / 2 - text_width(cr, buf, font) / 2, top + i * ch + ch / 2 + font / 3, buf,
           font);
    }
  for (size_t i = 0; i < R; ++i) {
    const std::string l = fit(cr, h.rows[i], 11, left - 16);
    text(cr, left - 8 - text_width(cr, l, 11), top + i * ch + ch / 2 + 4, l, 11);
  }
  for (size_t j = 0; j < C; ++j) {  // column labels rotated under the matrix
    cairo_save(cr);
    cairo_move_to(cr, left + j * cw + cw / 2 + 4, bottom + 8);
    cairo_rotate(cr, M_PI / 3);
    cairo_set_font_size(cr, 11);
    cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
    cairo_show_text(cr, fit(cr, h.cols[j], 11, 210).c_str());
    cairo_restore(cr);
  }
  text(cr, left, kHeatmapHeight - 12, h.col_axis, 12);
  text(cr, 20, 46, h.row_axis, 12);
  for (int k = 0; k <= 20; ++k) {  // colour bar
    const Rgb c = heat(1.0 - k / 20.0);
    cairo_set_source_rgb(cr, c.r, c.g, c.b);
    cairo_rectangle(cr, right + 25, top + (bottom - top) * k / 21.0, 18, (bottom - top) / 21.0 + 1);
    cairo_fill(cr);
  }
  text(cr, right + 22, top - 6, tick(hi), 11);
  text(cr, right + 22, bottom + 14, tick(lo), 11);
  detail::finish_png(cr, surf, png_path);
}

}  // namespace robometer::plot
