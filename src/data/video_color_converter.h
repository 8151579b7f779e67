// Decoded frame → contiguous RGB24 image: colour conversion and resize (swscale), then the
// display orientation. Kept apart from the decode loop (as torchcodec separates its
// SwScale/ColorConversion from the decoder): the reader decides *which* frame, this decides
// *how its pixels look*. Internal to the data layer (FFmpeg types).
#pragma once
#include <cstdint>
#include <memory>
#include <string>

struct AVFrame;
struct AVStream;
struct SwsContext;

namespace robometer::data {

// How stored pixels map to displayed ones, as the ffmpeg CLI's autorotate applies it:
// output (x, y) shows stored (u, v) = transpose ? (y, x) : (x, y), then u and/or v mirrored.
struct DisplayOrientation {
  bool transpose = false;
  bool flip_u = false;  // u → stored_width - 1 - u
  bool flip_v = false;  // v → stored_height - 1 - v
  bool identity() const { return !transpose && !flip_u && !flip_v; }
  // Displayed size of a stored w × h picture.
  void display_size(int w, int h, int& dw, int& dh) const {
    dw = transpose ? h : w;
    dh = transpose ? w : h;
  }
};

// The orientation the stream's display matrix asks for (identity without one). Throws
// FormatError for a rotation that is not a multiple of 90 degrees.
DisplayOrientation display_orientation(const AVStream* stream, const std::string& path);

class ColorConverter {
 public:
  // Frames come out as out_w × out_h after `orientation` (the resize happens before it, to
  // the stored-orientation size).
  ColorConverter(std::string path, int out_w, int out_h, DisplayOrientation orientation);
  ~ColorConverter();
  ColorConverter(const ColorConverter&) = delete;
  ColorConverter& operator=(const ColorConverter&) = delete;
  ColorConverter(ColorConverter&&) noexcept;
  ColorConverter& operator=(ColorConverter&&) noexcept;

  // Writes `frame` into dst, a contiguous out_h × out_w × 3 RGB image.
  void convert(const AVFrame* frame, uint8_t* dst);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace robometer::data
