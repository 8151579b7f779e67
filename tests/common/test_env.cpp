// Linked into every test binary: fills in the environment the suites read (the robometer
// binary, ../shared, one intra-op thread) when ctest or the user did not set it, so a test
// binary behaves the same when run by hand.
#include <cstdlib>

namespace {
struct TestEnvDefaults {
  TestEnvDefaults() {
    setenv("ROBOMETER_BINARY", ROBOMETER_BINARY_PATH, /*overwrite=*/0);
    setenv("ROBOMETER_SOURCE_DIR", ROBOMETER_SOURCE_DIR, 0);
    setenv("ROBOMETER_SHARED_DIR", ROBOMETER_SOURCE_DIR "/../shared", 0);
    setenv("OMP_NUM_THREADS", "1", 0);
  }
} defaults;
}  // namespace
