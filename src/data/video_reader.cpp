// VideoReader: packet index at open, ascending decode with keyframe-aware seeking, swscale
// straight into the output tensor. See include/robometer/data/video_reader.h for the rules.
#include "robometer/data/video_reader.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <numeric>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libavutil/mem.h>
#include <libswscale/swscale.h>
}

#include "robometer/core/error.h"

namespace robometer::data {
namespace {

// ---------------------------------------------------------------- RAII for FFmpeg objects
struct FormatCloser {
  void operator()(AVFormatContext* p) const { avformat_close_input(&p); }
};
struct CodecFreer {
  void operator()(AVCodecContext* p) const { avcodec_free_context(&p); }
};
struct PacketFreer {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct FrameFreer {
  void operator()(AVFrame* p) const { av_frame_free(&p); }
};
struct SwsFreer {
  void operator()(SwsContext* p) const { sws_freeContext(p); }
};
struct AvFreer {
  void operator()(uint8_t* p) const { av_free(p); }
};

std::string av_error_string(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(err, buf, sizeof(buf));
  return buf;
}

// FFmpeg logs every concealed macroblock at INFO/WARNING; errors reach the user through
// FormatError instead. Only lowers the level if nobody changed the default.
void quiet_ffmpeg_logs_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (av_log_get_level() == AV_LOG_INFO) av_log_set_level(AV_LOG_ERROR);
  });
}

// swscale's coefficient table for a frame's colorspace tag (untagged → BT.601, FFmpeg's default).
int sws_colorspace(AVColorSpace cs) {
  switch (cs) {
    case AVCOL_SPC_BT709: return SWS_CS_ITU709;
    case AVCOL_SPC_FCC: return SWS_CS_FCC;
    case AVCOL_SPC_SMPTE240M: return SWS_CS_SMPTE240M;
    case AVCOL_SPC_BT2020_NCL:
    case AVCOL_SPC_BT2020_CL: return SWS_CS_BT2020;
    default: return SWS_CS_ITU601;
  }
}

// One entry of the packet index, in presentation order after sorting.
struct IndexEntry {
  int64_t pts = 0;
  int64_t duration = 0;
  bool key = false;
};

}  // namespace

struct VideoReader::Impl {
  std::string path;
  VideoReaderOptions opts;
  std::unique_ptr<AVFormatContext, FormatCloser> fmt;
  std::unique_ptr<AVCodecContext, CodecFreer> dec;
  std::unique_ptr<AVPacket, PacketFreer> pkt{av_packet_alloc()};
  std::unique_ptr<AVFrame, FrameFreer> frame{av_frame_alloc()};
  std::unique_ptr<SwsContext, SwsFreer> sws;
  std::unique_ptr<uint8_t, AvFreer> scratch;  // aligned staging buffer for unaligned outputs
  int sws_cs = -1, sws_range = -1;           // colour details last set on `sws`
  int stream = -1;
  AVRational time_base{0, 1};
  std::string codec;
  int src_w = 0, src_h = 0, out_w = 0, out_h = 0;
  double avg_fps = 0.0;

  std::vector<IndexEntry> index;     // every frame of the stream, sorted by pts
  std::vector<int64_t> key_before;   // key_before[i]: last keyframe at or before frame i
  int64_t first = 0, count = 0;      // the window, in global frame indices

  // Decode position: the last frame received from the decoder (global index), or first-1
  // right after a seek / at open. `valid` is false after an error (forces a seek).
  int64_t last_out = -1;
  bool valid = true;
  bool draining = false;     // a null packet was sent: at EOF, or early once nothing further is wanted
  bool after_seek = false;   // no frame at/after the seek keyframe received yet
  std::string read_error;    // why av_read_frame stopped early, if it did
  std::vector<int64_t> wanted;  // global indices the current frames() call needs, sorted, unique
  std::vector<char> wanted_sent;  // wanted[i]'s packet went to the decoder since the last seek
  int64_t target = -1;            // the frame decode_until() is after
  bool all_pts_known = true;      // every packet has a pts: frames can be matched to packets
  DecodeStats stats;

  [[noreturn]] void fail(const std::string& why) const { throw FormatError(path, why); }

  void open();
  void build_index();
  void apply_window();
  void open_decoder();
  int64_t lookup(int64_t pts) const;
  void seek_to_key(int64_t key);
  bool next_frame();
  bool every_wanted_packet_sent() const;
  void decode_until(int64_t wanted_frame);
  void convert(uint8_t* dst);
  double seconds(int64_t pts) const { return pts * av_q2d(time_base); }
};

void VideoReader::Impl::open() {
  quiet_ffmpeg_logs_once();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) fail("file not found");
  if (std::filesystem::is_directory(path, ec)) fail("is a directory, not a video file");
  if (std::filesystem::file_size(path, ec) == 0 && !ec) fail("file is empty (0 bytes)");
  if (!pkt || !frame) fail("out of memory allocating packet/frame");

  AVFormatContext* raw = nullptr;
  int err = avformat_open_input(&raw, path.c_str(), nullptr, nullptr);
  if (err < 0) fail("cannot open as a video container: " + av_error_string(err));
  fmt.reset(raw);

  // Most containers (mp4, mkv, webm) describe the stream in the header; probing by decoding
  // (find_stream_info) is only needed when they do not.
  stream = av_find_best_stream(fmt.get(), AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  if (stream < 0 || fmt->streams[stream]->codecpar->width <= 0) {
    err = avformat_find_stream_info(fmt.get(), nullptr);
    if (err < 0) fail("cannot read stream information: " + av_error_string(err));
    stream = av_find_best_stream(fmt.get(), AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  }
  if (stream == AVERROR_STREAM_NOT_FOUND) fail("no video stream");
  if (stream < 0) fail("cannot select the video stream: " + av_error_string(stream));
  for (unsigned i = 0; i < fmt->nb_streams; ++i)
    if (static_cast<int>(i) != stream) fmt->streams[i]->discard = AVDISCARD_ALL;

  AVStream* st = fmt->streams[stream];
  time_base = st->time_base;
  src_w = st->codecpar->width;
  src_h = st->codecpar->height;
  codec = avcodec_get_name(st->codecpar->codec_id);
  if (src_w <= 0 || src_h <= 0) fail("video stream has no frame size");
  resized_size(opts.resize, src_w, src_h, out_w, out_h);
  AVRational rate = st->avg_frame_rate.num > 0 ? st->avg_frame_rate : st->r_frame_rate;
  if (rate.num > 0 && rate.den > 0) avg_fps = av_q2d(rate);

  build_index();
  apply_window();
  open_decoder();
}

// Reads every packet of the video stream once (no decoding): pts, duration, keyframe flag.
void VideoReader::Impl::build_index() {
  AVStream* st = fmt->streams[stream];
  int err = 0;
  while ((err = av_read_frame(fmt.get(), pkt.get())) >= 0) {
    if (pkt->stream_index == stream && !(pkt->flags & AV_PKT_FLAG_DISCARD)) {
      int64_t ts = pkt->pts != AV_NOPTS_VALUE ? pkt->pts : pkt->dts;
      if (ts != AV_NOPTS_VALUE)
        index.push_back({ts, pkt->duration, (pkt->flags & AV_PKT_FLAG_KEY) != 0});
      if (pkt->pts == AV_NOPTS_VALUE) all_pts_known = false;
    }
    av_packet_unref(pkt.get());
  }
  if (err != AVERROR_EOF)
    fail("container is truncated or corrupt (after " + std::to_string(index.size()) +
         " frames): " + av_error_string(err));
  if (index.empty()) fail("video stream has no frames");
  // A header that promises more frames than the file holds means the file was cut short.
  if (st->nb_frames > 0 && static_cast<int64_t>(index.size()) < st->nb_frames)
    fail("file is truncated: the header lists " + std::to_string(st->nb_frames) +
         " frames but only " + std::to_string(index.size()) + " are present");

  // B-frames arrive in decode order; frame i is the i-th in presentation order.
  std::stable_sort(index.begin(), index.end(),
                   [](const IndexEntry& a, const IndexEntry& b) { return a.pts < b.pts; });
  if (!index.front().key)
    fail("the first frame is not a keyframe (stream cannot be decoded from its start)");
  key_before.resize(index.size());
  int64_t last_key = 0;
  for (size_t i = 0; i < index.size(); ++i) {
    if (index[i].key) last_key = static_cast<int64_t>(i);
    key_before[i] = last_key;
  }
  if (avg_fps <= 0.0) {  // no rate in the header: derive it from the timestamps
    double span = seconds(index.back().pts - index.front().pts);
    avg_fps = index.size() > 1 && span > 0 ? (index.size() - 1) / span : 1.0;
  }

  err = av_seek_frame(fmt.get(), stream, index.front().pts, AVSEEK_FLAG_BACKWARD);
  if (err < 0) fail("cannot rewind after indexing: " + av_error_string(err));
}

void VideoReader::Impl::apply_window() {
  const double from = opts.window_from_s, to = opts.window_to_s;
  const int64_t total = static_cast<int64_t>(index.size());
  if (from == 0.0 && to < 0.0) {
    first = 0;
    count = total;
    last_out = -1;
    return;
  }
  auto window_str = [&] {
    return "window [" + std::to_string(from) + ", " + (to < 0 ? std::string("end") : std::to_string(to)) + ")";
  };
  if (from < 0.0 || (to >= 0.0 && to <= from)) fail(window_str() + " is invalid");
  const double half = 0.5 / avg_fps;
  const double end_s = seconds(index.back().pts) + 1.0 / avg_fps;  // end of the last frame
  if (to >= 0.0 && to > end_s + 1.0 / avg_fps)
    fail(window_str() + " extends past the end of the video (" + std::to_string(end_s) + " s)");
  int64_t lo = 0;
  while (lo < total && seconds(index[lo].pts) < from - half) ++lo;
  int64_t hi = lo;
  while (hi < total && (to < 0.0 || seconds(index[hi].pts) < to - half)) ++hi;
  if (hi == lo) fail(window_str() + " holds no frames (video ends at " + std::to_string(end_s) + " s)");
  first = lo;
  count = hi - lo;
  last_out = -1;  // the demuxer stands at the start of the file
}

void VideoReader::Impl::open_decoder() {
  AVStream* st = fmt->streams[stream];
  const AVCodec* codec_impl = avcodec_find_decoder(st->codecpar->codec_id);
  if (!codec_impl) fail("no decoder for codec " + codec);
  dec.reset(avcodec_alloc_context3(codec_impl));
  if (!dec) fail("out of memory allocating the decoder");
  int err = avcodec_parameters_to_context(dec.get(), st->codecpar);
  if (err < 0) fail("bad codec parameters: " + av_error_string(err));
  if (opts.threads < 0) throw ConfigError("video decoder threads must be >= 0");
  dec->thread_count = opts.threads;
  dec->pkt_timebase = time_base;
  err = avcodec_open2(dec.get(), codec_impl, nullptr);
  if (err < 0) fail("cannot open the " + codec + " decoder: " + av_error_string(err));
}

// Global frame index of a decoded frame's pts, or -1 when it is not in the index.
int64_t VideoReader::Impl::lookup(int64_t pts) const {
  auto it = std::lower_bound(index.begin(), index.end(), pts,
                             [](const IndexEntry& e, int64_t v) { return e.pts < v; });
  if (it == index.end() || it->pts != pts) return -1;
  return it - index.begin();
}

void VideoReader::Impl::seek_to_key(int64_t key) {
  int err = av_seek_frame(fmt.get(), stream, index[key].pts, AVSEEK_FLAG_BACKWARD);
  if (err < 0) fail("seek to frame " + std::to_string(key - first) + " failed: " + av_error_string(err));
  avcodec_flush_buffers(dec.get());
  ++stats.seeks;
  last_out = key - 1;
  draining = false;
  after_seek = true;
  std::fill(wanted_sent.begin(), wanted_sent.end(), 0);
  read_error.clear();
  valid = true;
}

// Receives the next frame from the decoder, feeding it packets as needed. False at the end.
bool VideoReader::Impl::next_frame() {
  for (;;) {
    int err = avcodec_receive_frame(dec.get(), frame.get());
    if (err == 0) {
      ++stats.frames_decoded;
      return true;
    }
    if (err == AVERROR_EOF) return false;
    if (err != AVERROR(EAGAIN)) fail("decoding failed after frame " + std::to_string(last_out - first) + ": " + av_error_string(err));
    if (draining) return false;

    if (every_wanted_packet_sent()) {
      // Nothing further in the stream is wanted: flush the decoder instead of feeding it the
      // reference frames that its reorder delay would otherwise make us decode for nothing.
      // The next frames() call seeks.
      draining = true;
      err = avcodec_send_packet(dec.get(), nullptr);
      if (err < 0 && err != AVERROR_EOF) fail("cannot flush the decoder: " + av_error_string(err));
      continue;
    }

    for (;;) {  // next packet of our stream
      err = av_read_frame(fmt.get(), pkt.get());
      if (err < 0 || pkt->stream_index == stream) break;
      av_packet_unref(pkt.get());
    }
    if (err < 0) {
      if (err != AVERROR_EOF) read_error = av_error_string(err);
      draining = true;
      err = avcodec_send_packet(dec.get(), nullptr);
    } else {
      ++stats.packets_read;
      const int64_t pts = pkt->pts;
      // A packet whose frame nobody wants need not be decoded unless other frames refer to
      // it: let the decoder drop non-reference frames (B-frames) outright.
      const int64_t idx = pts != AV_NOPTS_VALUE ? lookup(pts) : -1;
      const auto hit = std::lower_bound(wanted.begin(), wanted.end(), idx);
      const bool is_wanted = idx >= 0 && hit != wanted.end() && *hit == idx;
      if (is_wanted) wanted_sent[hit - wanted.begin()] = 1;
      // Without flush_early the next call may continue from here: frames past this call's
      // last target are decoded in full so that they are still there for it (a skipped
      // frame never comes out, and the next call would not know to seek for it).
      const bool needed = idx < 0 || is_wanted || (!opts.flush_early && idx > wanted.back());
      dec->skip_frame = needed ? AVDISCARD_DEFAULT : AVDISCARD_NONREF;
      err = avcodec_send_packet(dec.get(), pkt.get());
      av_packet_unref(pkt.get());
      if (err < 0 && err != AVERROR(EAGAIN))
        fail("decoder rejected the packet at pts " + std::to_string(pts) + " (" +
             std::to_string(seconds(pts)) + " s): " + av_error_string(err));
    }
  }
}

// True when the packets of all wanted frames from `target` on are in the decoder. Only
// trusted when every packet carries a pts (otherwise a frame cannot be matched to its packet).
bool VideoReader::Impl::every_wanted_packet_sent() const {
  if (!opts.flush_early || !all_pts_known || wanted.empty()) return false;
  for (size_t i = 0; i < wanted.size(); ++i)
    if (wanted[i] >= target && !wanted_sent[i]) return false;
  return true;
}

// Leaves the frame with global index `target` in `frame`. Decodes forward from the current
// position, seeking first when the target is behind us or past the next keyframe.
void VideoReader::Impl::decode_until(int64_t wanted_frame) {
  target = wanted_frame;
  const int64_t key = key_before[target];
  if (!valid || target <= last_out || key > last_out + 1) seek_to_key(key);
  int retries = 0;
  for (;;) {
    if (!next_frame()) {
      fail("frame " + std::to_string(target - first) + " was not produced: the stream ended after frame " +
           std::to_string(last_out - first) + (read_error.empty() ? "" : " (" + read_error + ")"));
    }
    const int64_t pts = frame->pts != AV_NOPTS_VALUE ? frame->pts : frame->best_effort_timestamp;
    const int64_t got = lookup(pts);
    if (got < 0 || got <= last_out) continue;  // not in the index / before the seek point
    if (got > target) {
      // Right after a seek this means the demuxer landed past the keyframe: go one GOP back.
      const int64_t key_now = key_before[last_out + 1];
      if (after_seek && key_now > 0 && retries++ < 8) {
        seek_to_key(key_before[key_now - 1]);
        continue;
      }
      fail("frame " + std::to_string(target - first) + " (pts " + std::to_string(index[target].pts) +
           ") was not produced by the decoder (corrupt or missing data)");
    }
    last_out = got;
    after_seek = false;
    if (got == target) {
      if (frame->decode_error_flags != 0 || (frame->flags & AV_FRAME_FLAG_CORRUPT))
        fail("frame " + std::to_string(target - first) + " is corrupt (decoder reported errors)");
      return;
    }
  }
}

// Colour-converts (and resizes) `frame` into dst, a contiguous out_h × out_w × 3 RGB image.
void VideoReader::Impl::convert(uint8_t* dst) {
  const auto src_fmt = static_cast<AVPixelFormat>(frame->format);
  SwsContext* ctx = sws_getCachedContext(sws.release(), frame->width, frame->height, src_fmt,
                                         out_w, out_h, AV_PIX_FMT_RGB24, SWS_BILINEAR, nullptr,
                                         nullptr, nullptr);
  if (!ctx) fail("cannot convert " + std::string(av_get_pix_fmt_name(src_fmt) ? av_get_pix_fmt_name(src_fmt) : "?") + " frames to RGB");
  if (ctx != sws.get()) sws_cs = sws_range = -1;  // a new context: colour details not set yet
  sws.reset(ctx);

  const int cs = sws_colorspace(frame->colorspace);
  int range = -1;
  if (frame->color_range == AVCOL_RANGE_JPEG) range = 1;
  if (frame->color_range == AVCOL_RANGE_MPEG) range = 0;
  if (cs != sws_cs || range != sws_range) {
    int *inv_table, *table, src_range, dst_range, brightness, contrast, saturation;
    if (sws_getColorspaceDetails(ctx, &inv_table, &src_range, &table, &dst_range, &brightness,
                                 &contrast, &saturation) >= 0) {
      // Untagged range keeps swscale's choice (full for yuvj*, limited otherwise).
      sws_setColorspaceDetails(ctx, sws_getCoefficients(cs), range >= 0 ? range : src_range,
                               sws_getCoefficients(SWS_CS_DEFAULT), 1, brightness, contrast,
                               saturation);
    }
    sws_cs = cs;
    sws_range = range;
  }

  const int row = out_w * 3;
  const bool aligned = row % 16 == 0 && reinterpret_cast<uintptr_t>(dst) % 16 == 0;
  if (aligned) {
    uint8_t* planes[4] = {dst, nullptr, nullptr, nullptr};
    int strides[4] = {row, 0, 0, 0};
    sws_scale(ctx, frame->data, frame->linesize, 0, frame->height, planes, strides);
  } else {  // SIMD paths want 16-byte aligned rows: stage, then copy rows
    const int padded = (row + 63) & ~63;
    if (!scratch) scratch.reset(static_cast<uint8_t*>(av_malloc(static_cast<size_t>(padded) * out_h)));
    if (!scratch) fail("out of memory allocating a conversion buffer");
    uint8_t* planes[4] = {scratch.get(), nullptr, nullptr, nullptr};
    int strides[4] = {padded, 0, 0, 0};
    sws_scale(ctx, frame->data, frame->linesize, 0, frame->height, planes, strides);
    for (int y = 0; y < out_h; ++y)
      std::memcpy(dst + static_cast<size_t>(y) * row, scratch.get() + static_cast<size_t>(y) * padded, row);
  }
  ++stats.frames_converted;
}

// ---------------------------------------------------------------- public API

VideoReader::VideoReader(const std::string& path, VideoReaderOptions opts) : impl_(new Impl) {
  impl_->path = path;
  impl_->opts = opts;
  impl_->open();
}
VideoReader::~VideoReader() = default;
VideoReader::VideoReader(VideoReader&&) noexcept = default;
VideoReader& VideoReader::operator=(VideoReader&&) noexcept = default;

int64_t VideoReader::num_frames() const { return impl_->count; }
double VideoReader::fps() const { return impl_->avg_fps; }
int VideoReader::source_width() const { return impl_->src_w; }
int VideoReader::source_height() const { return impl_->src_h; }
int VideoReader::width() const { return impl_->out_w; }
int VideoReader::height() const { return impl_->out_h; }
const std::string& VideoReader::codec_name() const { return impl_->codec; }
const std::string& VideoReader::path() const { return impl_->path; }
const DecodeStats& VideoReader::stats() const { return impl_->stats; }

double VideoReader::duration_s() const {
  const Impl& m = *impl_;
  const int64_t a = m.first, b = m.first + m.count - 1;
  // The last frame lasts until the next frame of the stream, else its packet duration, else
  // one average frame period.
  double last = 1.0 / m.avg_fps;
  if (b + 1 < static_cast<int64_t>(m.index.size())) last = m.seconds(m.index[b + 1].pts - m.index[b].pts);
  else if (m.index[b].duration > 0) last = m.seconds(m.index[b].duration);
  return m.seconds(m.index[b].pts - m.index[a].pts) + last;
}

std::vector<double> VideoReader::timestamps_s() const {
  std::vector<double> out(impl_->count);
  for (int64_t i = 0; i < impl_->count; ++i) out[i] = impl_->seconds(impl_->index[impl_->first + i].pts);
  return out;
}

std::vector<int64_t> VideoReader::keyframe_indices() const {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < impl_->count; ++i)
    if (impl_->index[impl_->first + i].key) out.push_back(i);
  return out;
}

at::Tensor VideoReader::frames(const std::vector<int64_t>& indices) {
  Impl& m = *impl_;
  for (size_t i = 0; i < indices.size(); ++i)
    if (indices[i] < 0 || indices[i] >= m.count)
      m.fail("frame index " + std::to_string(indices[i]) + " (position " + std::to_string(i) +
             ") is out of range [0, " + std::to_string(m.count) + ")");

  const int64_t n = static_cast<int64_t>(indices.size());
  at::Tensor out = at::empty({n, m.out_h, m.out_w, 3}, at::kByte);
  if (n == 0) return out;
  const size_t image_bytes = static_cast<size_t>(m.out_h) * m.out_w * 3;
  uint8_t* base = out.data_ptr<uint8_t>();

  // Visit the requested positions in ascending frame order; duplicates share one decode.
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return indices[a] < indices[b]; });
  m.wanted.clear();
  for (int64_t i : indices) m.wanted.push_back(m.first + i);
  std::sort(m.wanted.begin(), m.wanted.end());
  m.wanted.erase(std::unique(m.wanted.begin(), m.wanted.end()), m.wanted.end());
  // Packets already in the decoder (a previous call left it mid-stream) count as sent
  // only after a seek; until then nothing is assumed about them, so no early drain.
  m.wanted_sent.assign(m.wanted.size(), 0);
  // A decoder drained by the previous call holds no reference frames any more: seek.
  if (m.draining) m.valid = false;
  try {
    for (int64_t k = 0; k < n;) {
      const int64_t wanted = indices[order[k]];
      m.decode_until(m.first + wanted);
      uint8_t* dst = base + order[k] * image_bytes;
      m.convert(dst);
      for (++k; k < n && indices[order[k]] == wanted; ++k)
        std::memcpy(base + order[k] * image_bytes, dst, image_bytes);
    }
  } catch (...) {
    m.valid = false;  // decoder state unknown: the next call seeks
    throw;
  }
  return out;
}

std::string ffmpeg_version() {
  auto ver = [](unsigned v) {
    return std::to_string(AV_VERSION_MAJOR(v)) + "." + std::to_string(AV_VERSION_MINOR(v)) + "." +
           std::to_string(AV_VERSION_MICRO(v));
  };
  return std::string(av_version_info()) + " (libavcodec " + ver(avcodec_version()) +
         ", libavformat " + ver(avformat_version()) + ", libswscale " + ver(swscale_version()) + ")";
}

}  // namespace robometer::data
