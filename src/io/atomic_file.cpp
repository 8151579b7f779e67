#include "robometer/io/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "robometer/core/error.h"

namespace robometer::io {
namespace fs = std::filesystem;

namespace {

std::string errno_text() { return std::strerror(errno); }

// fsync of the directory makes the rename itself durable.
void fsync_directory(const std::string& dir, const std::string& for_path) {
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) throw Error(for_path + ": cannot open directory " + dir + " to sync: " + errno_text());
  int rc = ::fsync(dfd);
  int err = errno;
  ::close(dfd);
  // Some file systems (e.g. certain network mounts) do not support fsync on directories.
  if (rc != 0 && err != EINVAL && err != EROFS)
    throw Error(for_path + ": fsync of directory " + dir + " failed: " + std::strerror(err));
}

}  // namespace

AtomicFileWriter::AtomicFileWriter(const std::string& path) : path_(path) {
  fs::path target(path);
  if (target.filename().empty()) throw Error(path + ": not a file path");
  fs::path dir = target.parent_path();
  if (dir.empty()) dir = ".";
  static std::atomic<unsigned> counter{0};
  // O_EXCL with a unique name instead of mkstemp so the file gets the usual 0666 & ~umask mode.
  for (int attempt = 0; attempt < 100; ++attempt) {
    std::string name = "." + target.filename().string() + ".tmp-" + std::to_string(::getpid()) + "-" +
                       std::to_string(counter++);
    std::string candidate = (dir / name).string();
    fd_ = ::open(candidate.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd_ >= 0) {
      temp_path_ = candidate;
      return;
    }
    if (errno != EEXIST) throw Error(path + ": cannot create temp file " + candidate + ": " + errno_text());
  }
  throw Error(path + ": cannot find a free temp file name in " + dir.string());
}

AtomicFileWriter::~AtomicFileWriter() { abort(); }

void AtomicFileWriter::abort() noexcept {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (!temp_path_.empty()) {
    ::unlink(temp_path_.c_str());
    temp_path_.clear();
  }
}

void AtomicFileWriter::write(const void* data, size_t size) {
  if (fd_ < 0) throw Error(path_ + ": write after commit");
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd_, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::string why = errno_text();
      abort();
      throw Error(path_ + ": write failed: " + why);
    }
    p += n;
    size -= static_cast<size_t>(n);
    written_ += static_cast<size_t>(n);
  }
}

void AtomicFileWriter::commit() {
  if (fd_ < 0) throw Error(path_ + ": commit called twice");
  if (::fsync(fd_) != 0) {
    std::string why = errno_text();
    abort();
    throw Error(path_ + ": fsync failed: " + why);
  }
  int rc = ::close(fd_);
  fd_ = -1;
  if (rc != 0) {
    std::string why = errno_text();
    abort();
    throw Error(path_ + ": close failed: " + why);
  }
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    std::string why = errno_text();
    abort();
    throw Error(path_ + ": cannot rename temp file into place: " + why);
  }
  temp_path_.clear();
  fs::path dir = fs::path(path_).parent_path();
  fsync_directory(dir.empty() ? "." : dir.string(), path_);
}

void write_file_atomic(const std::string& path, std::string_view contents) {
  AtomicFileWriter out(path);
  out.write(contents);
  out.commit();
}

}  // namespace robometer::io
