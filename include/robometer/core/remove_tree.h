// Recursive delete without std::filesystem::remove_all: the pip LibTorch of the GPU machines
// exports its own copy of libstdc++'s std::filesystem, our calls bind to it there, and its
// remove_all jumps to address 0 (found by the GPU test run). Plain POSIX (nftw + remove) has no
// such dependency.
#pragma once
#include <cstdint>
#include <string>
#include <system_error>

namespace robometer {

// Removes `path` and, for a directory, everything below it (symbolic links are removed, not
// followed). Returns the number of entries removed; a missing path removes nothing and is not
// an error. On failure sets `ec` and returns what was removed so far.
uintmax_t remove_tree(const std::string& path, std::error_code& ec);

// As above; throws robometer::Error naming the path on failure.
uintmax_t remove_tree(const std::string& path);

}  // namespace robometer
