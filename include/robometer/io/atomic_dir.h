// Putting a finished directory in place of another one without a moment in which neither
// exists (checkpoints re-saved at the same step, exports written over an earlier export).
#pragma once
#include <filesystem>

namespace robometer::io {

// Moves directory `src` to `dst`. When `dst` exists it is swapped with `src` atomically
// (renameat2 RENAME_EXCHANGE); where the filesystem cannot exchange, `dst` is renamed to
// `aside` first, and moved back if the final rename fails. Returns the path that now holds
// the previous contents of `dst` (`src` or `aside`; empty when there were none), for the
// caller to remove. Throws Error naming the paths.
std::filesystem::path swap_directory_into_place(const std::filesystem::path& src,
                                                const std::filesystem::path& dst,
                                                const std::filesystem::path& aside);

}  // namespace robometer::io
