// A small, fully specified random generator (splitmix64) so that sampled pairs are identical on
// every platform and standard library (std::uniform_*_distribution is implementation-defined).
#pragma once
#include <cstdint>
#include <initializer_list>
#include <vector>

namespace robometer::data {

inline uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Mixes several integers into one seed (order matters): hash_seed({seed, epoch, index}).
inline uint64_t hash_seed(std::initializer_list<uint64_t> parts) {
  uint64_t h = 0x5EED5EED5EED5EEDULL;
  for (uint64_t p : parts) {
    uint64_t s = h ^ p;
    h = splitmix64(s);
  }
  return h;
}

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next_u64() { return splitmix64(state_); }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next_u64() >> 11) * (1.0 / 9007199254740992.0); }
  // Uniform integer in [0, n), n > 0 (rejection sampling: no modulo bias).
  int64_t below(int64_t n) {
    const uint64_t un = static_cast<uint64_t>(n);
    const uint64_t limit = UINT64_MAX - UINT64_MAX % un;
    uint64_t x;
    do x = next_u64();
    while (x >= limit);
    return static_cast<int64_t>(x % un);
  }
  bool bernoulli(double p) { return uniform() < p; }
  // Any container with size() and operator[] (a vector, an index view).
  template <typename C>
  auto choice(const C& v) -> decltype(v[0]) {
    return v[static_cast<size_t>(below(static_cast<int64_t>(v.size())))];
  }

 private:
  uint64_t state_;
};

}  // namespace robometer::data
