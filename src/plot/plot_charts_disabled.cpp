// Charts for builds without Cairo (-DROBOMETER_WITH_CAIRO=OFF): CMake compiles this file instead
// of plot_charts.cpp. `robometer eval` then writes report.html without figures.
#include "robometer/core/error.h"
#include "robometer/plot/charts.h"

namespace robometer::plot {

Rgb palette(size_t i) {
  static const Rgb gray{0.5, 0.5, 0.5};
  (void)i;
  return gray;
}

bool cairo_available() { return false; }

void write_xy_chart(const XYChart&, const std::string& png_path) {
  throw Error(png_path + ": robometer was built without Cairo (ROBOMETER_WITH_CAIRO=OFF); no plot");
}

void write_heatmap(const Heatmap&, const std::string& png_path) {
  throw Error(png_path + ": robometer was built without Cairo (ROBOMETER_WITH_CAIRO=OFF); no plot");
}

}  // namespace robometer::plot
