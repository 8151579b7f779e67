// `robometer version`: project, LibTorch, CUDA/NCCL and FFmpeg versions.
#include <torch/cuda.h>
#include <torch/version.h>

#include <cstdio>

#ifndef ROBOMETER_NO_VIDEO
extern "C" {
#include <libavcodec/avcodec.h>
#include <libavutil/avutil.h>
}
#endif

#include "robometer/cli/command.h"
#include "robometer/core/compat.h"
#include "robometer/model/fused_kernels.h"

namespace robometer::cli {
namespace {

int run_version() {
  std::printf("robometer %s\n", ROBOMETER_VERSION);
  std::printf("libtorch  %s\n", TORCH_VERSION);
  const bool cuda = torch::cuda::is_available();
  std::printf("cuda      %s", cuda ? "available" : "not available");
  if (cuda) std::printf(" (%d device(s))", static_cast<int>(torch::cuda::device_count()));
  std::printf("\n");
#ifdef USE_C10D_NCCL
  std::printf("nccl      compiled in\n");
#else
  std::printf("nccl      not compiled in (CPU build: Gloo only)\n");
#endif
  std::printf("fused     %s\n", compat::fused_paths_compiled().c_str());
  std::printf("kernels   %s\n", model::project_kernels_summary().c_str());
#ifndef ROBOMETER_NO_VIDEO
  std::printf("ffmpeg    %s (libavcodec %d.%d.%d)\n", av_version_info(), LIBAVCODEC_VERSION_MAJOR,
              LIBAVCODEC_VERSION_MINOR, LIBAVCODEC_VERSION_MICRO);
#else
  std::printf("ffmpeg    not compiled in (ROBOMETER_WITH_VIDEO=OFF)\n");
#endif
  return 0;
}

Registrar reg("version", "Print robometer, LibTorch, CUDA/NCCL and FFmpeg versions",
              [](CLI::App& sub, int& exit_code) {
                sub.callback([&exit_code] { exit_code = run_version(); });
              });

}  // namespace
}  // namespace robometer::cli
