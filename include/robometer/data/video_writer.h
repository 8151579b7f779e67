// H.264 MP4 writer (FFmpeg: libx264 through libavcodec, yuv420p via libswscale, mp4 muxing).
// Used by `robometer synth`; frames are uint8 RGB, HWC, written in presentation order.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <string>

namespace robometer::data {

struct VideoWriterOptions {
  int crf = 18;                     // x264 constant rate factor (0 lossless .. 51)
  std::string preset = "veryfast";  // x264 preset
  int gop = 10;                     // keyframe interval in frames
  int threads = 1;                  // 1 keeps the output byte-identical run to run
};

class VideoWriter {
 public:
  // Opens `path` for writing. Throws ConfigError for an odd or non-positive size or fps, Error
  // naming the path when libx264 or the file cannot be opened.
  VideoWriter(const std::string& path, int width, int height, double fps, VideoWriterOptions opts = {});
  ~VideoWriter();  // closes (errors swallowed); call close() to see them
  VideoWriter(const VideoWriter&) = delete;
  VideoWriter& operator=(const VideoWriter&) = delete;

  // One RGB24 frame, height*width*3 bytes, row-major HWC.
  void write(const uint8_t* rgb);
  // uint8 [H, W, 3] tensor (any strides; made contiguous).
  void write(const at::Tensor& frame);
  // Flushes the encoder, writes the trailer, closes the file. Idempotent.
  void close();

  int64_t frames_written() const;
  const std::string& path() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace robometer::data
