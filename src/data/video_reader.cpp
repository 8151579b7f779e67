// VideoReader: packet index at open, ascending decode with keyframe-aware seeking; pixels go
// through ColorConverter straight into the output tensor. See
// include/robometer/data/video_reader.h for the rules.
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
#include <libavutil/avutil.h>
#include <libswscale/swscale.h>
}

#include "robometer/core/error.h"
#include "video_color_converter.h"

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

bool is_key_frame(const AVFrame* f) {
#if LIBAVUTIL_VERSION_INT >= AV_VERSION_INT(58, 7, 100)
  return (f->flags & AV_FRAME_FLAG_KEY) != 0;
#else
  return f->key_frame != 0;
#endif
}

// One frame of the stream, in presentation order.
struct IndexEntry {
  double time_s = 0;             // presentation time
  double duration_s = 0;         // from the packet, 0 when unknown
  int64_t pts = AV_NOPTS_VALUE;  // container timestamps (pts identity: the frame's key)
  int64_t dts = AV_NOPTS_VALUE;
  int64_t ordinal = 0;  // position of its packet in decode order, from the start of the file
  bool key = false;
};

// One packet of the video stream as the scan at open saw it, in decode order.
struct ScannedPacket {
  int64_t pts, dts, duration;
  bool key, discard;
};

}  // namespace

// How decoded frames are matched to index entries.
//  - ContainerPts: by their pts (mp4, mkv, webm, ts, ps: every packet has a unique pts).
//  - PacketOrdinal: the reader numbers the packets itself from the start of the file and hands
//    that number to the decoder as the pts, which the decoder passes on to the packet's frame.
//    For streams whose container timestamps cannot name a frame (AVI with B-frames, raw
//    .h264, packets without timestamps); the frame order is learnt by decoding once at open
//    and every seek is a rewind to the start.
enum class FrameIdentity { ContainerPts, PacketOrdinal };

// Where the demuxer and decoder stand between and within frames() calls.
struct DecodeCursor {
  int64_t last_out = -1;         // global index of the last frame taken from the decoder
                                 // (seek keyframe - 1 right after a seek)
  int64_t seek_key = 0;          // the keyframe the last seek went to
  int64_t next_ordinal = 0;      // PacketOrdinal: decode-order number of the next packet read
  bool valid = true;             // false after an error or a drain: the next read seeks
  bool draining = false;         // a null packet was sent: at EOF, or early once nothing further is wanted
  bool after_seek = false;       // no frame at/after the seek keyframe received yet
  bool landing_checked = false;  // the first identifiable packet after the seek was checked
  std::string read_error;        // why av_read_frame stopped early, if it did

  void reset_after_seek(int64_t key) {
    last_out = key - 1;
    seek_key = key;
    next_ordinal = 0;
    valid = true;
    draining = false;
    after_seek = true;
    landing_checked = false;
    read_error.clear();
  }
};

// The frames one frames() call needs.
struct WantedFrames {
  std::vector<int64_t> frames;  // global indices, sorted, unique
  std::vector<char> sent;       // frames[i]'s packet went to the decoder since the last seek
  int64_t target = -1;          // the frame decode_until() is after

  int64_t position(int64_t idx) const {
    if (idx < 0) return -1;
    auto it = std::lower_bound(frames.begin(), frames.end(), idx);
    return it != frames.end() && *it == idx ? it - frames.begin() : -1;
  }
  bool all_sent_from_target() const {
    for (size_t i = 0; i < frames.size(); ++i)
      if (frames[i] >= target && !sent[i]) return false;
    return !frames.empty();
  }
  void clear_sent() { std::fill(sent.begin(), sent.end(), 0); }
};

struct VideoReader::Impl {
  std::string path;
  VideoReaderOptions opts;
  std::unique_ptr<AVFormatContext, FormatCloser> fmt;
  std::unique_ptr<AVCodecContext, CodecFreer> dec;
  std::unique_ptr<AVPacket, PacketFreer> pkt{av_packet_alloc()};
  std::unique_ptr<AVFrame, FrameFreer> frame{av_frame_alloc()};
  std::unique_ptr<ColorConverter> converter;
  int stream = -1;
  bool probed = false;      // avformat_find_stream_info was needed to describe the stream
  bool exact_seek = false;  // the container keeps a sample index (mp4/mov, mkv/webm)
  AVRational time_base{0, 1};
  std::string codec;
  int src_w = 0, src_h = 0, out_w = 0, out_h = 0;
  double avg_fps = 0.0;
  FrameIdentity identity = FrameIdentity::ContainerPts;

  std::vector<IndexEntry> index;    // every frame of the stream, in presentation order
  std::vector<int64_t> key_before;  // key_before[i]: last keyframe at or before frame i
  std::vector<std::pair<int64_t, int64_t>> ordinal_of_pts;  // ContainerPts: (pts, ordinal) of every packet
  std::vector<int64_t> frame_of_ordinal;  // PacketOrdinal: frame index of each packet, -1: none
  int64_t first = 0, count = 0;           // the window, in global frame indices
  bool open_gop = false;  // a keyframe has leading frames (presented before it, decoded after)

  DecodeCursor cursor;
  WantedFrames wanted;
  DecodeStats stats;

  [[noreturn]] void fail(const std::string& why) const { throw FormatError(path, why); }

  void open();
  void open_container();
  std::vector<ScannedPacket> scan_packets();
  void check_not_truncated() const;
  void index_by_pts(const std::vector<ScannedPacket>& packets);
  void index_by_decoding(const std::vector<ScannedPacket>& packets);
  void apply_window();
  void open_decoder();
  void rewind();
  int64_t frame_of_pts(int64_t pts) const;
  int64_t packet_ordinal(int64_t pts) const;
  int64_t frame_of_decoded() const;
  void seek_to_key(int64_t key, bool by_dts = false);
  enum class Next { Frame, End, LandedLate };
  Next next_frame();
  bool read_stream_packet(int& err);
  void decode_until(int64_t wanted_frame);
  double seconds(int64_t ts) const { return ts * av_q2d(time_base); }
  std::string frame_name(int64_t global) const { return "frame " + std::to_string(global - first); }
};

// Opens the container and selects the video stream (again, on a rewind by reopening).
void VideoReader::Impl::open_container() {
  const int previous_stream = stream;
  fmt.reset();
  AVFormatContext* raw = nullptr;
  int err = avformat_open_input(&raw, path.c_str(), nullptr, nullptr);
  if (err < 0) fail("cannot open as a video container: " + av_error_string(err));
  fmt.reset(raw);

  // Most containers (mp4, mkv, webm) describe the stream in the header; probing by decoding
  // (find_stream_info) is only needed when they do not.
  stream = av_find_best_stream(fmt.get(), AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  if (probed || stream < 0 || fmt->streams[stream]->codecpar->width <= 0) {
    probed = true;
    err = avformat_find_stream_info(fmt.get(), nullptr);
    if (err < 0) fail("cannot read stream information: " + av_error_string(err));
    stream = av_find_best_stream(fmt.get(), AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  }
  if (stream == AVERROR_STREAM_NOT_FOUND) fail("no video stream");
  if (stream < 0) fail("cannot select the video stream: " + av_error_string(stream));
  if (previous_stream >= 0 && stream != previous_stream)
    fail("the video stream changed on reopening the file");
  for (unsigned i = 0; i < fmt->nb_streams; ++i)
    if (static_cast<int>(i) != stream) fmt->streams[i]->discard = AVDISCARD_ALL;
  const std::string name = fmt->iformat->name;
  exact_seek = name.rfind("mov,", 0) == 0 || name.rfind("matroska", 0) == 0;
}

void VideoReader::Impl::open() {
  quiet_ffmpeg_logs_once();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) fail("file not found");
  if (std::filesystem::is_directory(path, ec)) fail("is a directory, not a video file");
  if (std::filesystem::file_size(path, ec) == 0 && !ec) fail("file is empty (0 bytes)");
  if (!pkt || !frame) fail("out of memory allocating packet/frame");
  if (opts.threads < 0) throw ConfigError("video decoder threads must be >= 0");

  open_container();
  AVStream* st = fmt->streams[stream];
  time_base = st->time_base;
  src_w = st->codecpar->width;
  src_h = st->codecpar->height;
  codec = avcodec_get_name(st->codecpar->codec_id);
  if (src_w <= 0 || src_h <= 0) fail("video stream has no frame size");
  const DisplayOrientation orientation =
      opts.autorotate ? display_orientation(st, path) : DisplayOrientation{};
  int display_w = 0, display_h = 0;
  orientation.display_size(src_w, src_h, display_w, display_h);
  resized_size(opts.resize, display_w, display_h, out_w, out_h);
  converter = std::make_unique<ColorConverter>(path, out_w, out_h, orientation);
  AVRational rate = st->avg_frame_rate.num > 0 ? st->avg_frame_rate : st->r_frame_rate;
  if (rate.num > 0 && rate.den > 0) avg_fps = av_q2d(rate);

  const std::vector<ScannedPacket> packets = scan_packets();
  check_not_truncated();
  open_decoder();
  // Container timestamps name the frames when every packet that makes a frame has its own
  // pts and the stream starts with a keyframe; otherwise number the frames by decoding.
  std::vector<int64_t> pts;
  for (const ScannedPacket& p : packets)
    if (!p.discard) pts.push_back(p.pts);
  std::sort(pts.begin(), pts.end());
  bool by_pts = !pts.empty() && pts.front() != AV_NOPTS_VALUE &&
                std::adjacent_find(pts.begin(), pts.end()) == pts.end();
  if (by_pts) {
    index_by_pts(packets);
    // The first shown frame must be decodable from the start: a keyframe, or preceded by
    // one that an edit list hides (a rewind lands on it).
    by_pts = index.front().key || std::any_of(packets.begin(), packets.end(), [&](const ScannedPacket& p) {
               return p.discard && p.key && p.pts != AV_NOPTS_VALUE && p.pts < index.front().pts;
             });
  }
  if (!by_pts) index_by_decoding(packets);

  key_before.resize(index.size());
  int64_t last_key = 0;
  for (size_t i = 0; i < index.size(); ++i) {
    if (index[i].key) last_key = static_cast<int64_t>(i);
    key_before[i] = last_key;
  }
  apply_window();
  rewind();
  cursor.reset_after_seek(0);
  cursor.after_seek = false;
}

// Reads every packet of the video stream once (no decoding): timestamps, duration, flags.
std::vector<ScannedPacket> VideoReader::Impl::scan_packets() {
  std::vector<ScannedPacket> out;
  int err = 0;
  while ((err = av_read_frame(fmt.get(), pkt.get())) >= 0) {
    if (pkt->stream_index == stream)
      out.push_back({pkt->pts, pkt->dts, pkt->duration, (pkt->flags & AV_PKT_FLAG_KEY) != 0,
                     (pkt->flags & AV_PKT_FLAG_DISCARD) != 0});
    av_packet_unref(pkt.get());
  }
  if (err != AVERROR_EOF)
    fail("container is truncated or corrupt (after " + std::to_string(out.size()) +
         " packets): " + av_error_string(err));
  if (out.empty()) fail("video stream has no frames");
  return out;
}

// A container index that points past the end of the file means the file was cut short (an
// mp4 whose moov, written first, promises samples that are not there).
void VideoReader::Impl::check_not_truncated() const {
  const int64_t size = avio_size(fmt->pb);
  if (size <= 0) return;
  const AVStream* st = fmt->streams[stream];
  const int n = avformat_index_get_entries_count(st);
  for (int i = 0; i < n; ++i) {
    const AVIndexEntry* e = avformat_index_get_entry(const_cast<AVStream*>(st), i);
    if (e && e->pos >= 0 && e->pos + e->size > size)
      fail("file is truncated: the container index lists sample " + std::to_string(i) + " at bytes " +
           std::to_string(e->pos) + "-" + std::to_string(e->pos + e->size) + " but the file has " +
           std::to_string(size) + " bytes");
  }
}

void VideoReader::Impl::index_by_pts(const std::vector<ScannedPacket>& packets) {
  identity = FrameIdentity::ContainerPts;
  index.clear();
  ordinal_of_pts.clear();
  for (size_t i = 0; i < packets.size(); ++i) {
    const ScannedPacket& p = packets[i];
    const int64_t ordinal = static_cast<int64_t>(i);
    if (p.pts != AV_NOPTS_VALUE) ordinal_of_pts.push_back({p.pts, ordinal});
    // Packets outside an edit list are decoded (they may be references) but never shown.
    if (!p.discard)
      index.push_back(
          {seconds(p.pts), p.duration > 0 ? seconds(p.duration) : 0.0, p.pts, p.dts, ordinal, p.key});
  }
  // Packets arrive in decode order; frame i is the i-th in presentation order.
  std::sort(ordinal_of_pts.begin(), ordinal_of_pts.end());
  std::sort(index.begin(), index.end(),
            [](const IndexEntry& a, const IndexEntry& b) { return a.pts < b.pts; });
  // Open GOP: a keyframe followed, in decode order, by frames shown before it.
  int64_t key_pts = AV_NOPTS_VALUE;
  for (const ScannedPacket& p : packets) {
    if (p.key)
      key_pts = p.pts;
    else if (key_pts != AV_NOPTS_VALUE && p.pts != AV_NOPTS_VALUE && p.pts < key_pts)
      open_gop = true;
  }
  if (avg_fps <= 0.0) {  // no rate in the header: derive it from the timestamps
    const double span = index.back().time_s - index.front().time_s;
    avg_fps = index.size() > 1 && span > 0 ? (index.size() - 1) / span : 1.0;
  }
}

// Decodes the whole stream once, numbering its packets, to learn which packet's frame comes
// out in which place. Times are then first_time + i / fps (these containers are constant
// rate, or carry no times at all).
void VideoReader::Impl::index_by_decoding(const std::vector<ScannedPacket>& packets) {
  identity = FrameIdentity::PacketOrdinal;
  index.clear();
  rewind();
  cursor.reset_after_seek(0);
  std::vector<int64_t> order;  // ordinals of the frames in output order
  std::vector<char> key;
  auto receive_all = [&] {
    while (avcodec_receive_frame(dec.get(), frame.get()) == 0) {
      order.push_back(frame->pts);
      key.push_back(is_key_frame(frame.get()));
    }
  };
  int err = 0;
  while (read_stream_packet(err)) {
    pkt->pts = cursor.next_ordinal++;
    // Like the ffmpeg CLI, go on after a packet the decoder rejects: its frame is missing.
    while (avcodec_send_packet(dec.get(), pkt.get()) == AVERROR(EAGAIN)) receive_all();
    av_packet_unref(pkt.get());
    receive_all();
  }
  avcodec_send_packet(dec.get(), nullptr);
  receive_all();
  avcodec_flush_buffers(dec.get());
  if (order.empty())
    fail("the decoder produced no frames from " + std::to_string(packets.size()) + " packets");
  if (static_cast<size_t>(cursor.next_ordinal) != packets.size())
    fail("the stream has " + std::to_string(packets.size()) + " packets on the first read but " +
         std::to_string(cursor.next_ordinal) + " on the second");

  if (avg_fps <= 0.0) avg_fps = 25.0;  // FFmpeg's assumption for streams without timing
  double t0 = 0.0;
  for (const ScannedPacket& p : packets)
    if (!p.discard) {
      if (p.pts != AV_NOPTS_VALUE)
        t0 = seconds(p.pts);
      else if (p.dts != AV_NOPTS_VALUE)
        t0 = seconds(p.dts);
      break;
    }
  frame_of_ordinal.assign(packets.size(), -1);
  for (size_t i = 0; i < order.size(); ++i) {
    const int64_t ordinal = order[i];
    if (ordinal < 0 || ordinal >= static_cast<int64_t>(packets.size()) || frame_of_ordinal[ordinal] >= 0)
      fail("cannot number the frames: the decoder's frame " + std::to_string(i) +
           " does not carry the number of a packet of its own");
    frame_of_ordinal[ordinal] = static_cast<int64_t>(i);
    IndexEntry e;
    e.time_s = t0 + static_cast<double>(i) / avg_fps;
    e.ordinal = ordinal;
    e.key = i == 0 || key[i];
    index.push_back(e);
  }
}

void VideoReader::Impl::apply_window() {
  const double from = opts.window_from_s, to = opts.window_to_s;
  const int64_t total = static_cast<int64_t>(index.size());
  if (from == 0.0 && to < 0.0) {
    first = 0;
    count = total;
    return;
  }
  auto window_str = [&] {
    return "window [" + std::to_string(from) + ", " + (to < 0 ? std::string("end") : std::to_string(to)) +
           ")";
  };
  if (from < 0.0 || (to >= 0.0 && to <= from)) fail(window_str() + " is invalid");
  const double half = 0.5 / avg_fps;
  const double end_s = index.back().time_s + 1.0 / avg_fps;  // end of the last frame
  if (to >= 0.0 && to > end_s + 1.0 / avg_fps)
    fail(window_str() + " extends past the end of the video (" + std::to_string(end_s) + " s)");
  int64_t lo = 0;
  while (lo < total && index[lo].time_s < from - half) ++lo;
  int64_t hi = lo;
  while (hi < total && (to < 0.0 || index[hi].time_s < to - half)) ++hi;
  if (hi == lo) fail(window_str() + " holds no frames (video ends at " + std::to_string(end_s) + " s)");
  first = lo;
  count = hi - lo;
}

void VideoReader::Impl::open_decoder() {
  AVStream* st = fmt->streams[stream];
  const AVCodec* codec_impl = avcodec_find_decoder(st->codecpar->codec_id);
  if (!codec_impl) fail("no decoder for codec " + codec);
  dec.reset(avcodec_alloc_context3(codec_impl));
  if (!dec) fail("out of memory allocating the decoder");
  int err = avcodec_parameters_to_context(dec.get(), st->codecpar);
  if (err < 0) fail("bad codec parameters: " + av_error_string(err));
  dec->thread_count = opts.threads;
  dec->pkt_timebase = time_base;
  err = avcodec_open2(dec.get(), codec_impl, nullptr);
  if (err < 0) fail("cannot open the " + codec + " decoder: " + av_error_string(err));
}

// Back to the first packet of the file with an empty decoder. Containers with a sample index
// seek there exactly; for the others (ts, ps, avi, raw streams) a timestamp seek is a search
// that may land elsewhere, so the file is opened again.
void VideoReader::Impl::rewind() {
  if (dec) avcodec_flush_buffers(dec.get());
  if (exact_seek && identity == FrameIdentity::ContainerPts &&
      av_seek_frame(fmt.get(), stream, index.front().pts, AVSEEK_FLAG_BACKWARD) >= 0)
    return;
  open_container();
}

// Global frame index of a frame pts, or -1 when it is not in the index.
int64_t VideoReader::Impl::frame_of_pts(int64_t pts) const {
  auto it = std::lower_bound(index.begin(), index.end(), pts,
                             [](const IndexEntry& e, int64_t v) { return e.pts < v; });
  if (it == index.end() || it->pts != pts) return -1;
  return it - index.begin();
}

// Decode-order position of the packet with this pts (ContainerPts), or -1.
int64_t VideoReader::Impl::packet_ordinal(int64_t pts) const {
  auto it = std::lower_bound(ordinal_of_pts.begin(), ordinal_of_pts.end(), std::make_pair(pts, int64_t{-1}));
  return it != ordinal_of_pts.end() && it->first == pts ? it->second : -1;
}

// Global frame index of the frame in `frame`, or -1 when it is none of the index's.
int64_t VideoReader::Impl::frame_of_decoded() const {
  if (identity == FrameIdentity::PacketOrdinal) {
    const int64_t ordinal = frame->pts;
    return ordinal >= 0 && ordinal < static_cast<int64_t>(frame_of_ordinal.size()) ? frame_of_ordinal[ordinal]
                                                                                   : -1;
  }
  return frame_of_pts(frame->pts != AV_NOPTS_VALUE ? frame->pts : frame->best_effort_timestamp);
}

// Positions the demuxer at keyframe `key` (ContainerPts) or at the start (PacketOrdinal).
void VideoReader::Impl::seek_to_key(int64_t key, bool by_dts) {
  ++stats.seeks;
  if (identity == FrameIdentity::PacketOrdinal || key == 0) {
    rewind();
    cursor.reset_after_seek(0);
  } else {
    const IndexEntry& e = index[key];
    const int64_t ts = by_dts && e.dts != AV_NOPTS_VALUE ? e.dts : e.pts;
    int err = av_seek_frame(fmt.get(), stream, ts, AVSEEK_FLAG_BACKWARD);
    if (err < 0) fail("seek to " + frame_name(key) + " failed: " + av_error_string(err));
    avcodec_flush_buffers(dec.get());
    cursor.reset_after_seek(key);
  }
  wanted.clear_sent();
}

// Next packet of our stream into `pkt`; false at the end or on a read error (err says which).
bool VideoReader::Impl::read_stream_packet(int& err) {
  for (;;) {
    err = av_read_frame(fmt.get(), pkt.get());
    if (err < 0) return false;
    if (pkt->stream_index == stream) return true;
    av_packet_unref(pkt.get());
  }
}

// Receives the next frame from the decoder, feeding it packets as needed.
VideoReader::Impl::Next VideoReader::Impl::next_frame() {
  for (;;) {
    int err = avcodec_receive_frame(dec.get(), frame.get());
    if (err == 0) {
      ++stats.frames_decoded;
      return Next::Frame;
    }
    if (err == AVERROR_EOF) return Next::End;
    if (err != AVERROR(EAGAIN))
      fail("decoding failed after " + frame_name(cursor.last_out) + ": " + av_error_string(err));
    if (cursor.draining) return Next::End;

    // Nothing further in the stream is wanted: flush the decoder instead of feeding it the
    // reference frames that its reorder delay would otherwise make us decode for nothing.
    // The next frames() call seeks. Not with open GOPs: there the decoder may hold frames
    // back past the last wanted packet in ways the packet order does not show.
    if (opts.flush_early && !open_gop && wanted.all_sent_from_target()) {
      cursor.draining = true;
      err = avcodec_send_packet(dec.get(), nullptr);
      if (err < 0 && err != AVERROR_EOF) fail("cannot flush the decoder: " + av_error_string(err));
      continue;
    }

    if (!read_stream_packet(err)) {
      if (err != AVERROR_EOF) cursor.read_error = av_error_string(err);
      cursor.draining = true;
      avcodec_send_packet(dec.get(), nullptr);
      continue;
    }
    ++stats.packets_read;
    const int64_t container_pts = pkt->pts;
    int64_t idx = -1;
    if (identity == FrameIdentity::PacketOrdinal) {
      const int64_t ordinal = cursor.next_ordinal++;
      pkt->pts = ordinal;
      if (ordinal < static_cast<int64_t>(frame_of_ordinal.size())) idx = frame_of_ordinal[ordinal];
    } else if (container_pts != AV_NOPTS_VALUE) {
      idx = frame_of_pts(container_pts);
      // A timestamp seek is a search: make sure it did not land past the keyframe's packet.
      if (!cursor.landing_checked) {
        const int64_t ordinal = packet_ordinal(container_pts);
        if (ordinal >= 0) {
          cursor.landing_checked = true;
          if (ordinal > index[cursor.seek_key].ordinal) {
            av_packet_unref(pkt.get());
            return Next::LandedLate;
          }
        }
      }
    }
    // A packet whose frame nobody wants need not be decoded unless other frames refer to
    // it: let the decoder drop non-reference frames (B-frames) outright. Not when frames are
    // known by packet number: a packed-bitstream packet holds a second frame that comes out
    // with the next packet's number, so skipping by packet would skip the wrong frame.
    const int64_t pos = wanted.position(idx);
    if (pos >= 0) wanted.sent[pos] = 1;
    // Without flush_early the next call may continue from here: frames past this call's
    // last target are decoded in full so that they are still there for it (a skipped
    // frame never comes out, and the next call would not know to seek for it).
    const bool needed = identity == FrameIdentity::PacketOrdinal || idx < 0 || pos >= 0 ||
                        (!opts.flush_early && idx > wanted.frames.back());
    dec->skip_frame = needed ? AVDISCARD_DEFAULT : AVDISCARD_NONREF;
    err = avcodec_send_packet(dec.get(), pkt.get());
    av_packet_unref(pkt.get());
    if (err < 0 && err != AVERROR(EAGAIN)) {
      const std::string where = container_pts != AV_NOPTS_VALUE
                                    ? "at pts " + std::to_string(container_pts) + " (" +
                                          std::to_string(seconds(container_pts)) + " s)"
                                    : "number " + std::to_string(stats.packets_read);
      fail("decoder rejected the packet " + where + ": " + av_error_string(err));
    }
  }
}

// Leaves the frame with global index `wanted_frame` in `frame`. Decodes forward from the
// current position, seeking first when the target is behind us or past the next keyframe.
void VideoReader::Impl::decode_until(int64_t wanted_frame) {
  const int64_t target = wanted.target = wanted_frame;
  const bool by_pts = identity == FrameIdentity::ContainerPts;
  if (!cursor.valid || target <= cursor.last_out || (by_pts && key_before[target] > cursor.last_out + 1))
    seek_to_key(by_pts ? key_before[target] : 0);
  int retries = 0;
  bool tried_dts = false;
  for (;;) {
    const Next got_next = next_frame();
    if (got_next == Next::LandedLate) {
      // Retry at the keyframe's dts (earlier than its pts with B-frames), then a GOP back;
      // keyframe 0 is a rewind, which is exact.
      const int64_t key = cursor.seek_key;
      if (!tried_dts && index[key].dts != AV_NOPTS_VALUE && index[key].dts < index[key].pts) {
        tried_dts = true;
        seek_to_key(key, true);
      } else {
        seek_to_key(retries++ < 4 && key > 0 ? key_before[key - 1] : 0);
      }
      continue;
    }
    if (got_next == Next::End) {
      fail(frame_name(target) + " was not produced: the stream ended after " + frame_name(cursor.last_out) +
           (cursor.read_error.empty() ? "" : " (" + cursor.read_error + ")"));
    }
    const int64_t got = frame_of_decoded();
    if (got < 0 || got <= cursor.last_out) continue;  // not in the index / before the seek point
    if (got > target) {
      // Right after a seek this means the demuxer landed past the keyframe: go one GOP back.
      const int64_t key_now = key_before[cursor.last_out + 1];
      if (by_pts && cursor.after_seek && key_now > 0 && retries++ < 8) {
        seek_to_key(key_before[key_now - 1]);
        continue;
      }
      fail(frame_name(target) + " (at " + std::to_string(index[target].time_s) +
           " s) was not produced by the decoder (corrupt or missing data)");
    }
    cursor.last_out = got;
    cursor.after_seek = false;
    if (got == target) {
      if (frame->decode_error_flags != 0 || (frame->flags & AV_FRAME_FLAG_CORRUPT))
        fail(frame_name(target) + " is corrupt (decoder reported errors)");
      return;
    }
  }
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
  if (b + 1 < static_cast<int64_t>(m.index.size()))
    last = m.index[b + 1].time_s - m.index[b].time_s;
  else if (m.index[b].duration_s > 0)
    last = m.index[b].duration_s;
  return m.index[b].time_s - m.index[a].time_s + last;
}

std::vector<double> VideoReader::timestamps_s() const {
  std::vector<double> out(impl_->count);
  for (int64_t i = 0; i < impl_->count; ++i) out[i] = impl_->index[impl_->first + i].time_s;
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
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return indices[a] < indices[b]; });
  m.wanted.frames.clear();
  for (int64_t i : indices) m.wanted.frames.push_back(m.first + i);
  std::sort(m.wanted.frames.begin(), m.wanted.frames.end());
  m.wanted.frames.erase(std::unique(m.wanted.frames.begin(), m.wanted.frames.end()), m.wanted.frames.end());
  // Packets already in the decoder (a previous call left it mid-stream) count as sent
  // only after a seek; until then nothing is assumed about them, so no early drain.
  m.wanted.sent.assign(m.wanted.frames.size(), 0);
  // A decoder drained by the previous call holds no reference frames any more: seek.
  if (m.cursor.draining) m.cursor.valid = false;
  try {
    for (int64_t k = 0; k < n;) {
      const int64_t wanted = indices[order[k]];
      m.decode_until(m.first + wanted);
      uint8_t* dst = base + order[k] * image_bytes;
      m.converter->convert(m.frame.get(), dst);
      ++m.stats.frames_converted;
      for (++k; k < n && indices[order[k]] == wanted; ++k)
        std::memcpy(base + order[k] * image_bytes, dst, image_bytes);
    }
  } catch (...) {
    m.cursor.valid = false;  // decoder state unknown: the next call seeks
    throw;
  }
  return out;
}

std::string ffmpeg_version() {
  auto ver = [](unsigned v) {
    return std::to_string(AV_VERSION_MAJOR(v)) + "." + std::to_string(AV_VERSION_MINOR(v)) + "." +
           std::to_string(AV_VERSION_MICRO(v));
  };
  return std::string(av_version_info()) + " (libavcodec " + ver(avcodec_version()) + ", libavformat " +
         ver(avformat_version()) + ", libswscale " + ver(swscale_version()) + ")";
}

}  // namespace robometer::data
