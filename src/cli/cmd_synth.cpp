// `robometer synth --out DIR`: writes the procedural demo dataset (train + eval manifests).
#include <chrono>
#include <cstdio>

#include "robometer/cli/command.h"
#include "robometer/core/error.h"
#include "robometer/data/synth.h"

namespace robometer::cli {
namespace {

struct SynthArgs {
  std::string out;
  data::SynthOptions opts;
  int frames = 0;  // > 0: every episode has exactly this many frames
};

int run_synth(const SynthArgs& a) {
  data::SynthOptions o = a.opts;
  if (a.frames > 0) o.min_frames = o.max_frames = a.frames;
  const auto t0 = std::chrono::steady_clock::now();
  const data::SynthSummary s = data::write_synth_dataset(a.out, o);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("wrote %lld episodes (%lld frames, %.1f KiB of H.264) to %s/{train,eval} in %.2f s\n",
              static_cast<long long>(s.episodes), static_cast<long long>(s.frames), s.bytes / 1024.0,
              a.out.c_str(), secs);
  std::printf("tasks:\n");
  for (int t = 0; t < o.tasks; ++t) std::printf("  %d  %s\n", t, data::synth_instruction(t).c_str());
  return 0;
}

Registrar reg(
    "synth", "Write the procedural demo dataset (robot-like pick-and-place videos + manifests)",
    [](CLI::App& sub, int& exit_code) {
      static SynthArgs a;
      sub.add_option("--out", a.out, "Output directory (DIR/train and DIR/eval are created)")->required();
      sub.add_option("--episodes", a.opts.train_episodes, "Training episodes")->capture_default_str();
      sub.add_option("--eval-episodes", a.opts.eval_episodes, "Held-out evaluation episodes")
          ->capture_default_str();
      sub.add_option("--tasks", a.opts.tasks, "Number of tasks (1-6)")->capture_default_str();
      sub.add_option("--size", a.opts.size, "Frame width and height in pixels (even)")->capture_default_str();
      sub.add_option("--frames", a.frames,
                     "Frames per episode (default: uniform in [--min-frames, --max-frames])");
      sub.add_option("--min-frames", a.opts.min_frames, "Fewest frames per episode")->capture_default_str();
      sub.add_option("--max-frames", a.opts.max_frames, "Most frames per episode")->capture_default_str();
      sub.add_option("--fps", a.opts.fps, "Frame rate of the videos")->capture_default_str();
      sub.add_option("--seed", a.opts.seed, "Random seed (same seed, same dataset)")->capture_default_str();
      sub.add_option("--layout-jitter", a.opts.layout_jitter,
                     "Per-episode scene variation around each task's canonical scene, in pixels of "
                     "the 64-px design (negative: a new random scene per episode)")
          ->capture_default_str();
      sub.callback([&exit_code] { exit_code = run_synth(a); });
    });

}  // namespace
}  // namespace robometer::cli
