#include "robometer/plot/png.h"

#include "cairo_draw.h"

namespace robometer::plot {

std::string encode_png(const at::Tensor& frame) {
  if (frame.dim() != 3 || frame.size(2) != 3 || frame.scalar_type() != at::kByte)
    throw Error("encode_png: expected a uint8 [H, W, 3] frame");
  cairo_surface_t* s = detail::frame_surface(frame);
  std::string out;
  const cairo_status_t st = cairo_surface_write_to_png_stream(
      s,
      [](void* closure, const unsigned char* data, unsigned int length) {
        static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), length);
        return CAIRO_STATUS_SUCCESS;
      },
      &out);
  cairo_surface_destroy(s);
  if (st != CAIRO_STATUS_SUCCESS) throw Error(std::string("encode_png: ") + cairo_status_to_string(st));
  return out;
}

}  // namespace robometer::plot
