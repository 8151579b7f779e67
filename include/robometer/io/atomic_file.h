// Crash-safe file replacement: write to a temp file in the same directory, fsync it, rename it
// over the target, fsync the directory. Readers see either the old file or the complete new one,
// never a torn write, even after a power loss. Used for weights, checkpoints and manifests.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace robometer::io {

// Streams a file into place. Nothing is visible at `path` until commit(); destroying the writer
// without commit() removes the temp file (so an exception midway leaves the old file intact).
//   AtomicFileWriter out(path);
//   out.write(header); out.write(data, n);
//   out.commit();
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(const std::string& path);  // creates <dir>/.<name>.tmp-<pid>-<n>
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(const void* data, size_t size);
  void write(std::string_view bytes) { write(bytes.data(), bytes.size()); }
  size_t bytes_written() const { return written_; }

  // fsync + rename over `path` + fsync of the directory. Throws Error on any failure (the temp
  // file is then removed and `path` is untouched).
  void commit();

  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_path_; }

 private:
  void abort() noexcept;
  std::string path_;
  std::string temp_path_;
  int fd_ = -1;
  size_t written_ = 0;
};

// Replaces `path` with `contents` atomically (the one-shot form of AtomicFileWriter).
void write_file_atomic(const std::string& path, std::string_view contents);

}  // namespace robometer::io
