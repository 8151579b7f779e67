// Output size of a ResizeSpec: pure arithmetic shared by the FFmpeg reader, its no-FFmpeg
// stand-in and the loader (so it is compiled whatever ROBOMETER_WITH_VIDEO says).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "robometer/core/error.h"
#include "robometer/data/video_reader.h"

namespace robometer::data {

void resized_size(const ResizeSpec& spec, int src_w, int src_h, int& out_w, int& out_h) {
  auto even = [](double x) { return std::max(2, 2 * static_cast<int>(std::lround(x / 2.0))); };
  switch (spec.mode) {
    case ResizeSpec::Mode::None:
      out_w = src_w;
      out_h = src_h;
      return;
    case ResizeSpec::Mode::Exact:
      if (spec.width <= 0 || spec.height <= 0)
        throw ConfigError("video resize: exact size must be positive, got " + std::to_string(spec.width) +
                          "x" + std::to_string(spec.height));
      out_w = spec.width;
      out_h = spec.height;
      return;
    case ResizeSpec::Mode::ShortEdge:
      if (spec.short_edge <= 0)
        throw ConfigError("video resize: short edge must be positive, got " +
                          std::to_string(spec.short_edge));
      if (spec.keep_square && src_w == src_h) {  // dataset_upload/helpers.py: squares as stored
        out_w = src_w;
        out_h = src_h;
      } else if (src_w <= src_h) {
        out_w = spec.short_edge;
        out_h = even(static_cast<double>(src_h) * spec.short_edge / src_w);
      } else {
        out_h = spec.short_edge;
        out_w = even(static_cast<double>(src_w) * spec.short_edge / src_h);
      }
      return;
  }
}

ResizeSpec parse_resize_spec(const std::string& text, const std::string& what) {
  if (text == "none") return ResizeSpec::none();
  int w = 0, h = 0;
  char tail = 0;
  if (std::sscanf(text.c_str(), "%dx%d%c", &w, &h, &tail) == 2 && w > 0 && h > 0)
    return ResizeSpec::exact(w, h);
  if (std::sscanf(text.c_str(), "%d%c", &w, &tail) == 1 && w > 0) return ResizeSpec::shortest_edge(w);
  throw ConfigError(what + " '" + text + "': expected none, WxH or a short-edge length");
}

}  // namespace robometer::data
