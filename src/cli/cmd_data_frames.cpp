// `robometer data frames VIDEO --indices 0,5,9 [--resize none|WxH|N] [--from S --to S]
//   [--no-autorotate] [--format rgb|png|npy] --out DIR|FILE|-`
// Writes the uint8 RGB frames exactly as the loader hands them to the model (same VideoReader,
// same resize, same autorotate), so anyone can look at or diff what training sees:
//   --out -          raw RGB24 frames back to back on stdout (or one .npy with --format npy)
//   --out X.npy      one [N, H, W, 3] uint8 array;  --out X.rgb: raw RGB24, back to back
//   --out DIR        DIR/frame_<index>.png (or .rgb) per frame, DIR/frames.npy for npy
// The sizes go to stderr. Errors name the video and the index.
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "robometer/cli/command.h"
#include "robometer/cli/data_frames.h"
#include "robometer/core/error.h"
#include "robometer/data/video_reader.h"

namespace robometer::cli {
namespace {

namespace fs = std::filesystem;

struct FramesArgs {
  std::string video, indices, resize = "none", format, out;
  double from_s = 0.0, to_s = -1.0;
  bool no_autorotate = false;
};

std::vector<int64_t> parse_indices(const std::string& text, int64_t num_frames, const std::string& video) {
  std::vector<int64_t> out;
  if (text == "all") {
    for (int64_t i = 0; i < num_frames; ++i) out.push_back(i);
    return out;
  }
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ',');) {
    size_t used = 0;
    int64_t v = -1;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size())
      throw ConfigError("--indices '" + text + "': '" + item + "' is not a frame index");
    if (v < 0 || v >= num_frames)
      throw ConfigError("--indices: frame index " + std::to_string(v) + " is out of range for " + video +
                        " (" + std::to_string(num_frames) + " frames)");
    out.push_back(v);
  }
  if (out.empty()) throw ConfigError("--indices '" + text + "': no frame index given");
  return out;
}

void append_u32(std::string& s, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) s.push_back(static_cast<char>((v >> shift) & 0xff));
}

// 8-bit RGB PNG: one zlib stream of rows, each with filter byte 0.
std::string encode_png(const uint8_t* rgb, int w, int h) {
  std::string raw;
  raw.reserve(static_cast<size_t>(h) * (w * 3 + 1));
  for (int y = 0; y < h; ++y) {
    raw.push_back('\0');
    raw.append(reinterpret_cast<const char*>(rgb) + static_cast<size_t>(y) * w * 3,
               static_cast<size_t>(w) * 3);
  }
  uLongf packed_size = compressBound(raw.size());
  std::string packed(packed_size, '\0');
  if (compress2(reinterpret_cast<Bytef*>(packed.data()), &packed_size,
                reinterpret_cast<const Bytef*>(raw.data()), raw.size(), 6) != Z_OK)
    throw Error("data frames: PNG compression failed");
  packed.resize(packed_size);
  std::string png("\x89PNG\r\n\x1a\n", 8);
  auto chunk = [&](const char* type, const std::string& body) {
    append_u32(png, static_cast<uint32_t>(body.size()));
    const std::string typed = std::string(type, 4) + body;
    png += typed;
    append_u32(png,
               static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(typed.data()), typed.size())));
  };
  std::string ihdr;
  append_u32(ihdr, static_cast<uint32_t>(w));
  append_u32(ihdr, static_cast<uint32_t>(h));
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);  // 8 bits, RGB, deflate, no filter choice, no interlace
  chunk("IHDR", ihdr);
  chunk("IDAT", packed);
  chunk("IEND", "");
  return png;
}

// NumPy .npy v1.0: header dict padded so the data starts at a multiple of 64 bytes.
std::string npy_header(int64_t n, int h, int w) {
  std::string dict = "{'descr': '|u1', 'fortran_order': False, 'shape': (" + std::to_string(n) + ", " +
                     std::to_string(h) + ", " + std::to_string(w) + ", 3), }";
  const size_t unpadded = 10 + dict.size() + 1;
  dict += std::string((64 - unpadded % 64) % 64, ' ') + "\n";
  std::string header("\x93NUMPY\x01\x00", 8);
  header.push_back(static_cast<char>(dict.size() & 0xff));
  header.push_back(static_cast<char>(dict.size() >> 8));
  return header + dict;
}

void write_file(const fs::path& path, const std::string& head, const uint8_t* data, size_t bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(head.data(), static_cast<std::streamsize>(head.size()));
  f.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(bytes));
  if (!f) throw Error("data frames: cannot write " + path.string());
}

int run_frames(const FramesArgs& a) {
  data::VideoReaderOptions o;
  o.resize = data::parse_resize_spec(a.resize);
  o.window_from_s = a.from_s;
  o.window_to_s = a.to_s;
  o.autorotate = !a.no_autorotate;
  data::VideoReader reader(a.video, o);
  const std::vector<int64_t> indices = parse_indices(a.indices, reader.num_frames(), a.video);
  const at::Tensor frames = reader.frames(indices).contiguous();
  const int w = reader.width(), h = reader.height();
  const size_t frame_bytes = static_cast<size_t>(w) * h * 3;
  const uint8_t* data = frames.data_ptr<uint8_t>();

  std::string format = a.format;
  const std::string ext = a.out == "-" ? "" : fs::path(a.out).extension().string();
  if (format.empty()) format = ext == ".npy" ? "npy" : ext == ".rgb" ? "rgb" : a.out == "-" ? "rgb" : "png";
  if (format != "rgb" && format != "png" && format != "npy")
    throw ConfigError("--format '" + format + "': expected rgb, png or npy");
  std::fprintf(stderr, "%s: %zu frame(s) of %dx%d RGB (%s, %.3f fps, %lld frames)\n", a.video.c_str(),
               indices.size(), w, h, reader.codec_name().c_str(), reader.fps(),
               static_cast<long long>(reader.num_frames()));

  if (a.out == "-") {
    if (format == "png")
      throw ConfigError("--out -: PNG goes to a directory; use --format rgb or npy for stdout");
    const std::string head = format == "npy" ? npy_header(frames.size(0), h, w) : "";
    if (std::fwrite(head.data(), 1, head.size(), stdout) != head.size() ||
        std::fwrite(data, 1, frame_bytes * indices.size(), stdout) != frame_bytes * indices.size())
      throw Error("data frames: writing to stdout failed");
    std::fflush(stdout);
    return 0;
  }
  const bool single_file = ext == ".npy" || ext == ".rgb";
  if (single_file) {
    if (format == "png") throw ConfigError("--out " + a.out + ": PNG frames go to a directory");
    write_file(a.out, format == "npy" ? npy_header(frames.size(0), h, w) : "", data,
               frame_bytes * indices.size());
    return 0;
  }
  fs::create_directories(a.out);
  if (format == "npy") {
    write_file(fs::path(a.out) / "frames.npy", npy_header(frames.size(0), h, w), data,
               frame_bytes * indices.size());
    return 0;
  }
  for (size_t i = 0; i < indices.size(); ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "frame_%06lld.%s", static_cast<long long>(indices[i]), format.c_str());
    const uint8_t* image = data + i * frame_bytes;
    if (format == "png") {
      const std::string png = encode_png(image, w, h);
      write_file(fs::path(a.out) / name, png, nullptr, 0);
    } else {
      write_file(fs::path(a.out) / name, "", image, frame_bytes);
    }
  }
  return 0;
}

}  // namespace

void add_data_frames_subcommand(CLI::App& data_cmd, int& exit_code) {
  auto a = std::make_shared<FramesArgs>();
  CLI::App* sub = data_cmd.add_subcommand("frames", "Write the RGB frames the loader would feed the model");
  sub->add_option("video", a->video, "Video file")->required();
  sub->add_option("--indices", a->indices, "Comma-separated frame indices (in the window), or 'all'")
      ->required();
  sub->add_option("--resize", a->resize, "none | WxH | short-edge px, as data.resize")->capture_default_str();
  sub->add_option("--from", a->from_s, "Window start in seconds (episodes sharing a file)");
  sub->add_option("--to", a->to_s, "Window end in seconds (< 0: to the end)");
  sub->add_flag("--no-autorotate", a->no_autorotate, "Ignore the display rotation (data.autorotate: false)");
  sub->add_option("--format", a->format, "rgb | png | npy (default: from --out)");
  sub->add_option("--out", a->out, "Directory, FILE.npy, FILE.rgb, or - for stdout")->required();
  sub->callback([a, &exit_code] { exit_code = run_frames(*a); });
}

}  // namespace robometer::cli
