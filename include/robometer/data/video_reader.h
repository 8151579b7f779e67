// Frame-exact random access into one video file (FFmpeg: libavformat/libavcodec/libswscale).
//
// Design (after torchcodec/decord): open once, index every packet (pts, keyframe flag) without
// decoding, then serve batches of frame indices by decoding forward in ascending order and
// seeking only when the next wanted frame lies past the next keyframe.
//
// Rules (tests in tests/data/test_video_reader*.cpp pin them down):
// - Frame i is the i-th frame the decoder outputs when the whole stream is decoded in order:
//   the frames `ffmpeg -i FILE -fps_mode passthrough` writes, in presentation order
//   (frames an edit list hides are not counted). Its time is pts × time_base (no start_time
//   subtraction, the same convention as LeRobot's PyAV/torchcodec decoders). Frame count and
//   timestamps come from the packet index, so they are exact also for webm/mkv (where the
//   container stores no frame count) and for variable frame rate.
// - Streams whose packets do not each carry a unique pts (AVI with B-frames, packed
//   bitstream AVI, raw .h264/.hevc, mkv blocks without timestamps), or that do not start with
//   a keyframe, are numbered by decoding the whole file once at open; their times are then
//   first_time + i / fps, and every backward read restarts from the start of the file
//   (exact, but slower: convert such datasets to mp4 for training).
// - Window [from, to) in seconds, for episodes stored in a shared file (LeRobot v3.0): a frame
//   at time t belongs to the window iff  from - h <= t < to - h,  h = half the average frame
//   period. This is "round each time to the nearest frame" and makes float32 timestamps from
//   parquet (1.2999999) select the same frames as the exact values. An empty window, from < 0,
//   to <= from, or a `to` more than one frame period past the end of the stream → FormatError.
// - frames(): unique targets are decoded in ascending order (never seeking backwards within a
//   call); a seek (to the keyframe at/before the target, then a decoder flush) happens only
//   when the target lies behind the decode position or past the next keyframe. Decoded frames
//   are identified by pts, unwanted ones are dropped before colour conversion, and unwanted
//   non-reference frames are not decoded at all (AVCodecContext::skip_frame = NONREF).
//   With flush_early (the default), once the packets of every wanted frame are in the decoder
//   it is flushed instead of fed further: a codec with frame reordering (B-frames) would
//   otherwise decode up to `has_b_frames` more reference frames just to release the last
//   target. The next frames() call then starts with a seek. Readers that serve consecutive
//   chunks of one long video from one object should turn it off. Streams with open GOPs
//   (a keyframe followed in decode order by frames shown before it) never flush early.
// - Timestamp seeks in containers without a sample index (ts, ps) are searches: a seek that
//   lands past the keyframe's packet is detected (packets are known by pts) and retried
//   earlier; the start of such files is reached by reopening them.
// - Resize uses swscale SWS_BILINEAR (PyAV's default, so benchmarks compare like with like).
//   ShortEdge S: the shorter side becomes S, the other is round(other × S / shorter) to the
//   nearest even number (same as FFmpeg's `scale=-2:S`). YUV→RGB honours the frame's
//   color_range (limited/full) and colorspace (BT.601/BT.709/BT.2020...; untagged = BT.601,
//   FFmpeg's default); output is full-range RGB. At native size the bytes equal
//   `ffmpeg -i FILE -f rawvideo -pix_fmt rgb24 -fps_mode passthrough -`.
// - autorotate (default, as the ffmpeg CLI): a display matrix (phones, some robot cameras)
//   is applied after colour conversion, the same transpose/flip ffmpeg inserts; width() and
//   height() are then the displayed size and the resize applies to it. source_width/height
//   stay the stored size. Angles that are not multiples of 90 degrees raise FormatError.
// - A truncated file whose container index points past the end of the file (mp4) fails at
//   open; a decoder error on a packet, or a wanted frame the decoder does not produce, raises
//   FormatError naming the frame. Other failures (missing, empty, no video stream, bad index)
//   also raise FormatError; the reader stays usable after an error.
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
  bool keep_square = false;   // ShortEdge: a square source keeps its size (RBM storage did)
  static ResizeSpec none() { return {}; }
  static ResizeSpec exact(int w, int h) { return {Mode::Exact, w, h, 0}; }
  static ResizeSpec shortest_edge(int s, bool keep_square = false) {
    return {Mode::ShortEdge, 0, 0, s, keep_square};
  }
};

// Output size for a source of src_w × src_h under `spec` (throws ConfigError on a bad spec).
void resized_size(const ResizeSpec& spec, int src_w, int src_h, int& out_w, int& out_h);

// "none", "WxH" (exact) or "N" (short edge N); ConfigError naming `what` and the text otherwise.
ResizeSpec parse_resize_spec(const std::string& text, const std::string& what = "--resize");

struct VideoReaderOptions {
  ResizeSpec resize;
  int threads = 1;  // decoder threads (0 = FFmpeg auto); the loader parallelises across files
  double window_from_s = 0.0;
  double window_to_s = -1.0;  // < 0: to the end
  bool flush_early = true;    // see the rules above; false for chunk-by-chunk sequential reads
  bool autorotate = true;     // apply the stream's display rotation (data.autorotate)
};

// Counters since the reader was opened (the index scan at open is not counted).
struct DecodeStats {
  int64_t packets_read = 0;      // packets of the video stream handed to the decoder
  int64_t frames_decoded = 0;    // frames received from the decoder (wanted or not); unwanted
                                 // non-reference frames (B-frames) are skipped, not decoded
  int64_t frames_converted = 0;  // frames colour-converted/resized (one per unique wanted index)
  int64_t seeks = 0;             // av_seek_frame calls (each followed by a decoder flush)
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

  int64_t num_frames() const;  // inside the window
  double fps() const;          // average frame rate of the stream
  double duration_s() const;   // inside the window, from pts (last frame's duration included)
  int source_width() const;    // stored size
  int source_height() const;
  int width() const;  // output size after autorotate and resize
  int height() const;
  const std::string& codec_name() const;
  const std::string& path() const;
  std::vector<double> timestamps_s() const;       // presentation time of each frame in the window
  std::vector<int64_t> keyframe_indices() const;  // window-relative indices of keyframes

  // uint8 RGB frames, layout [N, H, W, 3] (contiguous, HWC), in the order of `indices`.
  // Indices are relative to the window. Throws FormatError on an out-of-range index or a
  // decode failure.
  at::Tensor frames(const std::vector<int64_t>& indices);

  const DecodeStats& stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// "5.1.9 (libavcodec 59.37.100, libavformat ..., libswscale ...)" of the linked libraries.
std::string ffmpeg_version();

}  // namespace robometer::data
