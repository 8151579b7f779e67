// The web UI's files (src/serve/web/*), compiled in by cmake/EmbedFiles.cmake.
#pragma once
#include <cstddef>

namespace robometer::serve::web_assets {

struct Asset {
  const char* name;  // file name, e.g. "reward.js"
  const char* body;
};
extern const Asset kAssets[];
extern const size_t kAssetCount;

}  // namespace robometer::serve::web_assets
