// VideoWriter for builds without FFmpeg (-DROBOMETER_WITH_VIDEO=OFF): CMake compiles this file
// instead of video_writer.cpp. Opening a file for writing throws (so `robometer synth` reports
// why it cannot write videos); nothing else is reachable without a constructed writer.
#include "robometer/core/error.h"
#include "robometer/data/video_writer.h"

namespace robometer::data {

struct VideoWriter::Impl {
  std::string path;
};

VideoWriter::VideoWriter(const std::string& path, int, int, double, VideoWriterOptions) {
  throw Error(path + ": robometer was built without FFmpeg (ROBOMETER_WITH_VIDEO=OFF)");
}
VideoWriter::~VideoWriter() = default;

void VideoWriter::write(const uint8_t*) {
  throw Error(impl_->path + ": robometer was built without FFmpeg (ROBOMETER_WITH_VIDEO=OFF)");
}
void VideoWriter::write(const at::Tensor&) {
  throw Error(impl_->path + ": robometer was built without FFmpeg (ROBOMETER_WITH_VIDEO=OFF)");
}
void VideoWriter::close() {}
int64_t VideoWriter::frames_written() const { return 0; }
const std::string& VideoWriter::path() const { return impl_->path; }

}  // namespace robometer::data
