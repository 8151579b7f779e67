// XXH64 (xxHash, 64-bit, seed 0; the algorithm of Yann Collet's reference, as `xxhsum -H1`
// prints it). Checkpoints record it per file so that flipped bytes are caught at resume: it runs
// at memory speed (several GB/s on one core, see `robometer bench hash`), so hashing ~20 GB of
// weights and optimizer state costs seconds next to the minutes of writing them.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace robometer::io {

class Xxh64 {
 public:
  explicit Xxh64(uint64_t seed = 0);
  void update(const void* data, size_t size);
  uint64_t digest() const;

 private:
  uint64_t v_[4];
  uint64_t seed_;
  uint64_t total_ = 0;
  unsigned char buf_[32];
  size_t buffered_ = 0;
};

uint64_t xxh64(const void* data, size_t size, uint64_t seed = 0);
// Of a whole file, read in large blocks. Throws Error naming the file when it cannot be read.
uint64_t xxh64_file(const std::string& path);
// 16 lower-case hex digits, as xxhsum prints it.
std::string xxh64_hex(uint64_t h);

}  // namespace robometer::io
