// Frame-exact random access into one video file (FFmpeg: libavformat/libavcodec/libswscale).
//
// Design (after torchcodec/decord): open once, index every packet (pts, keyframe flag) without
// decoding, then serve batches of frame indices by decoding forward in ascending order and
// seeking only when the next wanted frame lies past the next keyframe.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace robometer::data {

struct ResizeSpec {
  enum class Mode { None, Exact, ShortEdge };
  Mode mode = Mode::None;
  int width = 0, height = 0;  // Exact
  int short_edge = 0;         // ShortEdge: the shorter side becomes this, aspect kept, even sizes
  static ResizeSpec none() { return {}; }
  static ResizeSpec exact(int w, int h) { return {Mode::Exact, w, h, 0}; }
  static ResizeSpec shortest_edge(int s) { return {Mode::ShortEdge, 0, 0, s}; }
};

struct VideoReaderOptions {
  ResizeSpec resize;
  int threads = 1;          // decoder threads; the loader parallelises across files instead
  double window_from_s = 0.0;
  double window_to_s = -1.0;  // < 0: to the end
};

struct DecodeStats {
  int64_t packets_read = 0;
  int64_t frames_decoded = 0;
  int64_t frames_converted = 0;
  int64_t seeks = 0;
};

class VideoReader {
 public:
  // Throws FormatError naming the path and the reason (missing, empty, no video stream, ...).
  explicit VideoReader(const std::string& path, VideoReaderOptions opts = {});
  ~VideoReader();
  VideoReader(const VideoReader&) = delete;
  VideoReader& operator=(const VideoReader&) = delete;
  VideoReader(VideoReader&&) noexcept;
  VideoReader& operator=(VideoReader&&) noexcept;

  int64_t num_frames() const;      // inside the window
  double fps() const;              // average frame rate of the stream
  double duration_s() const;       // inside the window, from pts
  int source_width() const;
  int source_height() const;
  int width() const;               // output size after resize
  int height() const;
  const std::string& codec_name() const;
  const std::string& path() const;
  std::vector<double> timestamps_s() const;  // presentation time of each frame in the window

  // uint8 RGB frames, layout [N, H, W, 3] (contiguous, HWC), in the order of `indices`.
  // Indices are relative to the window. Throws FormatError on an out-of-range index or a
  // decode failure.
  at::Tensor frames(const std::vector<int64_t>& indices);

  const DecodeStats& stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace robometer::data
