// encode_png for builds without Cairo (-DROBOMETER_WITH_CAIRO=OFF).
#include "robometer/core/error.h"
#include "robometer/plot/png.h"

namespace robometer::plot {

std::string encode_png(const at::Tensor&) {
  throw Error("robometer was built without Cairo (ROBOMETER_WITH_CAIRO=OFF): no PNG frames");
}

}  // namespace robometer::plot
