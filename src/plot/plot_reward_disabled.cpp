// write_reward_plot for builds without Cairo (-DROBOMETER_WITH_CAIRO=OFF, the GPU benchmark
// machine has no libcairo): CMake compiles this file instead of plot.cpp. `score --plot` then
// fails with a message that says why; scoring itself is unaffected.
#include "robometer/core/error.h"
#include "robometer/plot/reward_plot.h"

namespace robometer::plot {

void write_reward_plot(const RewardPlot&, const std::string& png_path) {
  throw Error(png_path + ": robometer was built without Cairo (ROBOMETER_WITH_CAIRO=OFF); no plot");
}

}  // namespace robometer::plot
