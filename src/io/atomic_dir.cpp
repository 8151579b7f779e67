#include "robometer/io/atomic_dir.h"

#include <fcntl.h>

#include <cstdio>

#include "robometer/core/error.h"
#include "robometer/core/remove_tree.h"

namespace robometer::io {

namespace fs = std::filesystem;

fs::path swap_directory_into_place(const fs::path& src, const fs::path& dst, const fs::path& aside) {
  std::error_code ec;
  if (!fs::exists(dst, ec)) {
    fs::rename(src, dst, ec);
    if (ec) throw Error(src.string() + ": cannot rename to " + dst.string() + ": " + ec.message());
    return {};
  }
  if (::renameat2(AT_FDCWD, src.c_str(), AT_FDCWD, dst.c_str(), RENAME_EXCHANGE) == 0) return src;
  remove_tree(aside.string(), ec);
  fs::rename(dst, aside, ec);
  if (ec) throw Error(dst.string() + ": cannot move aside: " + ec.message());
  fs::rename(src, dst, ec);
  if (ec) {
    std::error_code back;
    fs::rename(aside, dst, back);
    throw Error(src.string() + ": cannot rename to " + dst.string() + ": " + ec.message() +
                (back ? "; the previous contents stay in " + aside.string() : std::string()));
  }
  return aside;
}

}  // namespace robometer::io
