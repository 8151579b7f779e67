// Small Cairo charts for reports (`robometer eval`): x–y line/scatter charts and heatmaps, each
// written as a PNG of a fixed size. Builds without Cairo (ROBOMETER_WITH_CAIRO=OFF) get
// functions that throw; cairo_available() says which one this build has.
#pragma once
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace robometer::plot {

struct Rgb {
  double r = 0, g = 0, b = 0;
};
// matplotlib's tab10, cycled.
Rgb palette(size_t i);

struct Series {
  std::string label;  // legend entry ("" = not in the legend)
  std::vector<double> x, y;
  Rgb color = palette(0);
  bool lines = true;   // connect the points in order
  bool points = true;  // mark each point
  bool dashed = false;
};

struct XYChart {
  std::string title, x_label, y_label;
  std::vector<Series> series;
  std::optional<std::pair<double, double>> x_range, y_range;  // default: the data's range
  bool identity_line = false;                                 // draw y = x (predicted vs true)
  std::vector<std::string> x_tick_labels;  // categorical ticks at x = 0, 1, 2, ... when given
};

struct Heatmap {
  std::string title, row_axis, col_axis;
  std::vector<std::string> rows, cols;
  std::vector<std::vector<double>> values;  // [row][col]; colour scale from min to max
};

constexpr int kChartWidth = 800, kChartHeight = 500;
constexpr int kHeatmapWidth = 800, kHeatmapHeight = 700;

// Throw Error naming the file when the input is inconsistent or the PNG cannot be written.
void write_xy_chart(const XYChart& chart, const std::string& png_path);
void write_heatmap(const Heatmap& heatmap, const std::string& png_path);

bool cairo_available();

}  // namespace robometer::plot
