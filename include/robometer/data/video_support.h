// Whether this build can decode/encode video files (FFmpeg). False with
// -DROBOMETER_WITH_VIDEO=OFF, where VideoReader/VideoWriter throw on construction; tests that
// need real video files GTEST_SKIP() on it.
#pragma once

namespace robometer::data {

#ifdef ROBOMETER_NO_VIDEO
inline constexpr bool kVideoSupported = false;
#else
inline constexpr bool kVideoSupported = true;
#endif

}  // namespace robometer::data
