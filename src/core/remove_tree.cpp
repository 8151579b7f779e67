#include "robometer/core/remove_tree.h"

#include <ftw.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "robometer/core/error.h"

namespace robometer {

namespace {

// nftw's callback has no user pointer; one removal at a time per thread is all we need.
thread_local uintmax_t removed_count = 0;
thread_local int first_errno = 0;

int remove_entry(const char* path, const struct stat*, int, struct FTW*) {
  if (std::remove(path) != 0) {
    first_errno = errno;
    return 1;  // stop the walk
  }
  ++removed_count;
  return 0;
}

}  // namespace

uintmax_t remove_tree(const std::string& path, std::error_code& ec) {
  ec.clear();
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno != ENOENT) ec = std::error_code(errno, std::generic_category());
    return 0;
  }
  removed_count = 0;
  first_errno = 0;
  // FTW_DEPTH: children before their directory; FTW_PHYS: do not follow symbolic links.
  const int rc = ::nftw(path.c_str(), remove_entry, 32, FTW_DEPTH | FTW_PHYS);
  if (rc != 0) ec = std::error_code(first_errno != 0 ? first_errno : errno, std::generic_category());
  return removed_count;
}

uintmax_t remove_tree(const std::string& path) {
  std::error_code ec;
  const uintmax_t n = remove_tree(path, ec);
  if (ec) throw Error(path + ": cannot remove: " + ec.message());
  return n;
}

}  // namespace robometer
