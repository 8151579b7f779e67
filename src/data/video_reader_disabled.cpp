// VideoReader for builds without FFmpeg (-DROBOMETER_WITH_VIDEO=OFF, the GPU benchmark machine
// has no libav*): CMake compiles this file instead of video_reader.cpp. Opening a video throws,
// so every path that needs frames from a file fails with a message that says why; synthetic
// and pre-decoded inputs keep working.
#include <algorithm>
#include <cmath>

#include "robometer/core/error.h"
#include "robometer/data/video_reader.h"

namespace robometer::data {

// Never constructed: the constructor throws before an Impl exists.
struct VideoReader::Impl {
  std::string path, codec;
  DecodeStats stats;
};

VideoReader::VideoReader(const std::string& path, VideoReaderOptions) {
  throw Error(path + ": robometer was built without FFmpeg (ROBOMETER_WITH_VIDEO=OFF)");
}
VideoReader::~VideoReader() = default;
VideoReader::VideoReader(VideoReader&&) noexcept = default;
VideoReader& VideoReader::operator=(VideoReader&&) noexcept = default;

int64_t VideoReader::num_frames() const { return 0; }
double VideoReader::fps() const { return 0.0; }
double VideoReader::duration_s() const { return 0.0; }
int VideoReader::source_width() const { return 0; }
int VideoReader::source_height() const { return 0; }
int VideoReader::width() const { return 0; }
int VideoReader::height() const { return 0; }
const std::string& VideoReader::codec_name() const { return impl_->codec; }
const std::string& VideoReader::path() const { return impl_->path; }
std::vector<double> VideoReader::timestamps_s() const { return {}; }
std::vector<int64_t> VideoReader::keyframe_indices() const { return {}; }
const DecodeStats& VideoReader::stats() const { return impl_->stats; }

at::Tensor VideoReader::frames(const std::vector<int64_t>&) {
  throw Error(impl_->path + ": robometer was built without FFmpeg (ROBOMETER_WITH_VIDEO=OFF)");
}

std::string ffmpeg_version() { return "none (built with ROBOMETER_WITH_VIDEO=OFF)"; }

}  // namespace robometer::data
