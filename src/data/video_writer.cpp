// H.264/MP4 writer on libavformat + libavcodec (libx264) + libswscale.
#include "robometer/data/video_writer.h"

#include <cmath>
#include <filesystem>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/error.h>
#include <libavutil/imgutils.h>
#include <libavutil/log.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
}

#include "robometer/core/error.h"

namespace robometer::data {

namespace {

std::string av_err(int code) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(code, buf, sizeof buf);
  return buf;
}

}  // namespace

struct VideoWriter::Impl {
  std::string path;
  int width = 0, height = 0;
  AVFormatContext* fmt = nullptr;
  AVCodecContext* enc = nullptr;
  AVStream* stream = nullptr;
  AVFrame* yuv = nullptr;
  AVPacket* pkt = nullptr;
  SwsContext* sws = nullptr;
  int64_t next_pts = 0;
  bool header_written = false;
  bool closed = false;

  void fail(const std::string& what, int code) {
    throw Error(path + ": " + what + (code < 0 ? " (" + av_err(code) + ")" : ""));
  }

  // Sends `frame` (nullptr = flush) and writes every packet the encoder hands back.
  void encode(AVFrame* frame) {
    int rc = avcodec_send_frame(enc, frame);
    if (rc < 0) fail("encoder rejected a frame", rc);
    while (true) {
      rc = avcodec_receive_packet(enc, pkt);
      if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return;
      if (rc < 0) fail("encoding failed", rc);
      av_packet_rescale_ts(pkt, enc->time_base, stream->time_base);
      pkt->stream_index = stream->index;
      rc = av_interleaved_write_frame(fmt, pkt);  // takes ownership of the packet's data
      if (rc < 0) fail("writing a packet failed", rc);
    }
  }

  void release() {
    sws_freeContext(sws);
    sws = nullptr;
    av_packet_free(&pkt);
    av_frame_free(&yuv);
    avcodec_free_context(&enc);
    if (fmt) {
      if (fmt->pb) avio_closep(&fmt->pb);
      avformat_free_context(fmt);
      fmt = nullptr;
    }
  }
};

VideoWriter::VideoWriter(const std::string& path, int width, int height, double fps, VideoWriterOptions opts)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.path = path;
  m.width = width;
  m.height = height;
  if (width <= 0 || height <= 0 || width % 2 || height % 2)
    throw ConfigError(path + ": video size " + std::to_string(width) + "x" + std::to_string(height) +
                      " must be positive and even (yuv420p)");
  if (!(fps > 0) || !std::isfinite(fps)) throw ConfigError(path + ": fps must be > 0");
  // libx264 prints its statistics at INFO; lower FFmpeg's level if nobody changed the default
  // (the same rule as the reader).
  if (av_log_get_level() == AV_LOG_INFO) av_log_set_level(AV_LOG_ERROR);
  try {
    const AVCodec* codec = avcodec_find_encoder_by_name("libx264");
    if (!codec) m.fail("FFmpeg was built without libx264", 0);
    int rc = avformat_alloc_output_context2(&m.fmt, nullptr, "mp4", path.c_str());
    if (rc < 0 || !m.fmt) m.fail("cannot create an mp4 muxer", rc);
    m.stream = avformat_new_stream(m.fmt, nullptr);
    m.enc = avcodec_alloc_context3(codec);
    m.yuv = av_frame_alloc();
    m.pkt = av_packet_alloc();
    if (!m.stream || !m.enc || !m.yuv || !m.pkt) m.fail("out of memory", 0);

    const AVRational rate = av_d2q(fps, 100000);
    m.enc->width = width;
    m.enc->height = height;
    m.enc->pix_fmt = AV_PIX_FMT_YUV420P;
    m.enc->framerate = rate;
    m.enc->time_base = av_inv_q(rate);
    m.enc->gop_size = opts.gop;
    m.enc->max_b_frames = 0;  // pts == dts: simplest to index for frame-exact readers
    m.enc->thread_count = opts.threads;
    if (m.fmt->oformat->flags & AVFMT_GLOBALHEADER) m.enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    av_opt_set(m.enc->priv_data, "preset", opts.preset.c_str(), 0);
    av_opt_set(m.enc->priv_data, "crf", std::to_string(opts.crf).c_str(), 0);
    rc = avcodec_open2(m.enc, codec, nullptr);
    if (rc < 0) m.fail("cannot open libx264", rc);
    rc = avcodec_parameters_from_context(m.stream->codecpar, m.enc);
    if (rc < 0) m.fail("cannot set stream parameters", rc);
    m.stream->time_base = m.enc->time_base;
    m.stream->avg_frame_rate = rate;

    rc = avio_open(&m.fmt->pb, path.c_str(), AVIO_FLAG_WRITE);
    if (rc < 0) m.fail("cannot open for writing", rc);
    // Bitexact muxing: no creation time or version strings, so equal frames give equal bytes.
    m.fmt->flags |= AVFMT_FLAG_BITEXACT;
    rc = avformat_write_header(m.fmt, nullptr);
    if (rc < 0) m.fail("cannot write the mp4 header", rc);
    m.header_written = true;

    m.yuv->format = AV_PIX_FMT_YUV420P;
    m.yuv->width = width;
    m.yuv->height = height;
    rc = av_frame_get_buffer(m.yuv, 0);
    if (rc < 0) m.fail("cannot allocate a frame", rc);
    m.sws = sws_getContext(width, height, AV_PIX_FMT_RGB24, width, height, AV_PIX_FMT_YUV420P, SWS_BILINEAR,
                           nullptr, nullptr, nullptr);
    if (!m.sws) m.fail("cannot create an RGB->YUV converter", 0);
  } catch (...) {
    m.release();
    std::error_code ec;
    std::filesystem::remove(path, ec);
    throw;
  }
}

VideoWriter::~VideoWriter() {
  if (!impl_) return;
  try {
    close();
  } catch (...) {
    // Destructors must not throw; close() reports errors to callers that ask.
  }
  impl_->release();
}

void VideoWriter::write(const uint8_t* rgb) {
  Impl& m = *impl_;
  if (m.closed) throw Error(m.path + ": write after close");
  int rc = av_frame_make_writable(m.yuv);
  if (rc < 0) m.fail("frame not writable", rc);
  const uint8_t* src[1] = {rgb};
  const int stride[1] = {3 * m.width};
  sws_scale(m.sws, src, stride, 0, m.height, m.yuv->data, m.yuv->linesize);
  m.yuv->pts = m.next_pts++;
  m.encode(m.yuv);
}

void VideoWriter::write(const at::Tensor& frame) {
  Impl& m = *impl_;
  if (frame.scalar_type() != at::kByte || frame.dim() != 3 || frame.size(0) != m.height ||
      frame.size(1) != m.width || frame.size(2) != 3)
    throw Error(m.path + ": frame must be uint8 [" + std::to_string(m.height) + ", " +
                std::to_string(m.width) + ", 3], got " +
                std::string(frame.scalar_type() == at::kByte ? "uint8 " : "non-uint8 ") +
                std::to_string(frame.dim()) + "-d");
  const at::Tensor c = frame.contiguous();
  write(c.data_ptr<uint8_t>());
}

void VideoWriter::close() {
  Impl& m = *impl_;
  if (m.closed) return;
  m.closed = true;
  if (!m.header_written) return;
  m.encode(nullptr);  // drain delayed frames
  const int rc = av_write_trailer(m.fmt);
  if (rc < 0) m.fail("cannot write the mp4 trailer", rc);
  if (m.fmt->pb) avio_closep(&m.fmt->pb);
}

int64_t VideoWriter::frames_written() const { return impl_->next_pts; }
const std::string& VideoWriter::path() const { return impl_->path; }

}  // namespace robometer::data
