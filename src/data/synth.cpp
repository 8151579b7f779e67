// `robometer synth`: procedural top-down pick-and-place episodes (see synth.h for the rules).
// Drawing is plain rasterisation into an RGB buffer: filled squares, circles, rings and thick
// line segments, no anti-aliasing.
#include "robometer/data/synth.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "robometer/core/error.h"
#include "robometer/data/manifest.h"
#include "robometer/data/video_writer.h"
#include "robometer/io/atomic_file.h"

namespace robometer::data {

namespace fs = std::filesystem;

namespace {

// ---------------------------------------------------------------- random numbers
// Own generator (splitmix64) and own uniform mapping: std distributions differ between
// standard libraries, and the dataset must be the same everywhere for a seed.
struct Rng {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  double uniform(double a, double b) { return a + (b - a) * uniform(); }
  int below(int n) { return static_cast<int>(next() % static_cast<uint64_t>(n)); }
};

uint64_t mix(uint64_t a, uint64_t b) {
  Rng r{a ^ (b * 0xD1B54A32D192ED03ull)};
  return r.next();
}

// ---------------------------------------------------------------- geometry

struct Vec2 {
  double x = 0, y = 0;
};
Vec2 operator+(Vec2 a, Vec2 b) { return {a.x + b.x, a.y + b.y}; }
Vec2 operator-(Vec2 a, Vec2 b) { return {a.x - b.x, a.y - b.y}; }
Vec2 operator*(double s, Vec2 a) { return {s * a.x, s * a.y}; }
double dist(Vec2 a, Vec2 b) { return std::hypot(a.x - b.x, a.y - b.y); }
// (1-s)·a + s·b: exact at s = 0 and s = 1, so keyframes are hit exactly.
Vec2 lerp(Vec2 a, Vec2 b, double s) { return {(1 - s) * a.x + s * b.x, (1 - s) * a.y + s * b.y}; }
double smoothstep(double s) { return s * s * (3 - 2 * s); }
double clamp01(double v) { return std::clamp(v, 0.0, 1.0); }

// ---------------------------------------------------------------- drawing

struct Rgb {
  uint8_t r, g, b;
};

class Canvas {
 public:
  Canvas(uint8_t* px, int size) : px_(px), n_(size) {}

  void fill(Rgb c) {
    for (int i = 0; i < n_ * n_; ++i) set_index(i, c);
  }
  void rect(double x0, double y0, double x1, double y1, Rgb c) {  // inclusive pixel centres
    for (int y = lo(y0); y <= hi(y1); ++y)
      for (int x = lo(x0); x <= hi(x1); ++x) put(x, y, c);
  }
  void square(Vec2 p, double half, Rgb c) { rect(p.x - half, p.y - half, p.x + half, p.y + half, c); }
  void square_outline(Vec2 p, double half, double thick, Rgb c) {
    rect(p.x - half, p.y - half, p.x + half, p.y - half + thick - 1, c);
    rect(p.x - half, p.y + half - thick + 1, p.x + half, p.y + half, c);
    rect(p.x - half, p.y - half, p.x - half + thick - 1, p.y + half, c);
    rect(p.x + half - thick + 1, p.y - half, p.x + half, p.y + half, c);
  }
  void disc(Vec2 p, double r, Rgb c) { ring(p, r, -1, c); }
  void ring(Vec2 p, double r_out, double r_in, Rgb c) {
    for (int y = lo(p.y - r_out); y <= hi(p.y + r_out); ++y)
      for (int x = lo(p.x - r_out); x <= hi(p.x + r_out); ++x) {
        const double d = std::hypot(x - p.x, y - p.y);
        if (d <= r_out && d > r_in) put(x, y, c);
      }
  }
  void segment(Vec2 a, Vec2 b, double thick, Rgb c) {
    const double h = thick / 2, len2 = (b.x - a.x) * (b.x - a.x) + (b.y - a.y) * (b.y - a.y);
    for (int y = lo(std::min(a.y, b.y) - h); y <= hi(std::max(a.y, b.y) + h); ++y)
      for (int x = lo(std::min(a.x, b.x) - h); x <= hi(std::max(a.x, b.x) + h); ++x) {
        double s = len2 > 0 ? ((x - a.x) * (b.x - a.x) + (y - a.y) * (b.y - a.y)) / len2 : 0;
        s = clamp01(s);
        if (dist({double(x), double(y)}, lerp(a, b, s)) <= h) put(x, y, c);
      }
  }

 private:
  int lo(double v) const { return std::max(0, static_cast<int>(std::ceil(v - 0.5))); }
  int hi(double v) const { return std::min(n_ - 1, static_cast<int>(std::floor(v + 0.5))); }
  void put(int x, int y, Rgb c) {
    if (x >= 0 && y >= 0 && x < n_ && y < n_) set_index(y * n_ + x, c);
  }
  void set_index(int i, Rgb c) {
    const size_t p = 3 * static_cast<size_t>(i);
    px_[p] = c.r;
    px_[p + 1] = c.g;
    px_[p + 2] = c.b;
  }
  uint8_t* px_;
  int n_;
};

// ---------------------------------------------------------------- tasks

enum class TargetKind { Bowl, LeftEdge, StackBlock, SquareOutline, Mat, Corner };

struct TaskDef {
  std::string instruction;
  Rgb object;
  bool round_object;
  Rgb target;
  TargetKind kind;
};

const std::array<TaskDef, kSynthMaxTasks>& task_defs() {
  static const std::array<TaskDef, kSynthMaxTasks> defs = {{
      {"put the red block in the blue bowl", {220, 40, 40}, false, {40, 80, 220}, TargetKind::Bowl},
      {"push the green block to the left edge", {40, 170, 60}, false, {30, 30, 30}, TargetKind::LeftEdge},
      {"stack the yellow block on the purple block",
       {235, 215, 40},
       false,
       {140, 60, 170},
       TargetKind::StackBlock},
      {"move the orange ball onto the white square",
       {245, 140, 30},
       true,
       {250, 250, 250},
       TargetKind::SquareOutline},
      {"put the pink block on the brown mat", {245, 120, 185}, false, {115, 75, 40}, TargetKind::Mat},
      {"slide the cyan block into the top right corner",
       {40, 205, 215},
       false,
       {20, 20, 20},
       TargetKind::Corner},
  }};
  return defs;
}

constexpr Rgb kDistractorZone{95, 95, 95};
constexpr Rgb kArm{85, 85, 100};
constexpr Rgb kGripper{35, 35, 45};

// ---------------------------------------------------------------- one episode

struct Layout {
  double k = 1;  // pixels per unit of the 64-pixel design
  Vec2 base, home, object0, target, distractor_zone;
  Rgb table;
};

// Positions drawn by rejection sampling under the same constraints for every quality, so the
// first frame does not reveal how the episode goes.
Layout make_layout(const TaskDef& task, int size, Rng& rng) {
  Layout L;
  L.k = size / 64.0;
  const double k = L.k, S = size;
  L.base = {S / 2, S - 3 * k};
  L.home = {S / 2, S - 15 * k};
  auto in_region = [&] { return Vec2{rng.uniform(10 * k, S - 10 * k), rng.uniform(8 * k, S - 24 * k)}; };
  const int jitter[3] = {rng.below(21) - 10, rng.below(21) - 10, rng.below(21) - 10};
  L.table = {static_cast<uint8_t>(200 + jitter[0]), static_cast<uint8_t>(172 + jitter[1]),
             static_cast<uint8_t>(125 + jitter[2])};
  for (int attempt = 0;; ++attempt) {
    L.object0 = in_region();
    switch (task.kind) {
      case TargetKind::LeftEdge:
        L.target = {5 * k, L.object0.y};
        break;
      case TargetKind::Corner:
        L.target = {S - 7 * k, 7 * k};
        break;
      default:
        L.target = in_region();
        break;
    }
    L.distractor_zone = in_region();
    const double d_task = dist(L.object0, L.target);
    const bool ok = d_task >= 20 * k &&
                    dist(L.distractor_zone, L.target) >= d_task &&  // wrong target: no progress
                    dist(L.distractor_zone, L.object0) >= 16 * k;
    if (ok) return L;
    if (attempt > 10000) throw Error("synth: could not place the scene (size " + std::to_string(size) + ")");
  }
}

// The scene of one episode. layout_jitter < 0: drawn afresh (make_layout). Otherwise each task
// has one canonical scene (drawn from the dataset seed) and an episode moves its object, target
// and distractor zone by up to ±layout_jitter design pixels, re-drawing the offsets until the
// make_layout constraints hold again.
Layout episode_layout(const TaskDef& task, const SynthOptions& o, int task_index, Rng& rng) {
  if (o.layout_jitter < 0) return make_layout(task, o.size, rng);
  Rng canon_rng{mix(o.seed ^ 0x1A7017ull, static_cast<uint64_t>(task_index))};
  const Layout canon = make_layout(task, o.size, canon_rng);
  const double k = canon.k, S = o.size, j = o.layout_jitter * k;
  auto jitter = [&](Vec2 p) { return Vec2{p.x + rng.uniform(-j, j), p.y + rng.uniform(-j, j)}; };
  auto clamp_to_region = [&](Vec2 p) {
    return Vec2{std::clamp(p.x, 10 * k, S - 10 * k), std::clamp(p.y, 8 * k, S - 24 * k)};
  };
  for (int attempt = 0; attempt < 10000; ++attempt) {
    Layout L = canon;
    L.object0 = clamp_to_region(jitter(canon.object0));
    switch (task.kind) {
      case TargetKind::LeftEdge:
        L.target = {5 * k, L.object0.y};
        break;
      case TargetKind::Corner:
        break;  // fixed by the task
      default:
        L.target = clamp_to_region(jitter(canon.target));
        break;
    }
    L.distractor_zone = clamp_to_region(jitter(canon.distractor_zone));
    const double d_task = dist(L.object0, L.target);
    if (d_task >= 20 * k && dist(L.distractor_zone, L.target) >= d_task &&
        dist(L.distractor_zone, L.object0) >= 16 * k)
      return L;
  }
  return canon;  // the canonical scene satisfies the constraints
}

struct Plan {
  std::vector<std::pair<double, Vec2>> keys;  // gripper keyframes, t in [0, 1]
  double grasp = 0, release = 1;
  bool drop = false;
  Vec2 drop_end;
  double slide_end = 1;
  std::optional<double> partial;
  std::string failure_mode;
};

Vec2 clamp_region(Vec2 p, const Layout& L, int size) {
  return {std::clamp(p.x, 8 * L.k, size - 8 * L.k), std::clamp(p.y, 6 * L.k, size - 22 * L.k)};
}

Plan make_plan(const Layout& L, Quality q, int size, Rng& rng) {
  Plan p;
  const Vec2 o = L.object0, T = L.target;
  if (q == Quality::Successful) {
    p.grasp = rng.uniform(0.15, 0.25);
    p.release = rng.uniform(0.75, 0.85);
    p.keys = {{0, L.home}, {p.grasp, o}, {p.release, T}, {1, L.home}};  // then back home
  } else if (q == Quality::Suboptimal) {
    // A detour on the way, a wobble while carrying, and the object left part-way.
    const double target_progress = rng.uniform(0.3, 0.7);
    const double f = (target_progress - 0.25) / 0.75;
    const Vec2 stop = lerp(o, T, f);
    const Vec2 detour = clamp_region({rng.uniform(0, size), rng.uniform(0, size)}, L, size);
    const Vec2 dir = (1.0 / std::max(1e-9, dist(o, T))) * (T - o);
    const double side = (rng.uniform() < 0.5 ? -1 : 1) * rng.uniform(6, 10) * L.k;
    const Vec2 wobble = clamp_region(lerp(o, stop, 0.5) + side * Vec2{-dir.y, dir.x}, L, size);
    p.grasp = 0.5;
    p.release = 0.88;
    p.keys = {{0, L.home}, {0.22, detour}, {p.grasp, o}, {0.72, wobble}, {p.release, stop}, {1, L.home}};
  } else if (rng.uniform() < 0.5) {
    p.failure_mode = "wrong_target";
    p.grasp = rng.uniform(0.15, 0.25);
    p.release = rng.uniform(0.75, 0.85);
    p.keys = {{0, L.home}, {p.grasp, o}, {p.release, L.distractor_zone}, {1, L.home}};
  } else {
    // Dropped a third of the way; the object is knocked back past its start while the empty
    // gripper goes on to the target.
    p.failure_mode = "drop";
    p.grasp = rng.uniform(0.15, 0.25);
    p.release = 0.5;
    p.drop = true;
    p.slide_end = 0.7;
    p.drop_end = clamp_region(o - 0.15 * (T - o), L, size);
    p.keys = {{0, L.home}, {p.grasp, o}, {p.release, lerp(o, T, 0.35)}, {0.85, T}, {1, L.home}};
  }
  return p;
}

Vec2 gripper_at(const Plan& p, double t) {
  for (size_t i = 0; i + 1 < p.keys.size(); ++i) {
    const auto& [t0, a] = p.keys[i];
    const auto& [t1, b] = p.keys[i + 1];
    if (t <= t1) return lerp(a, b, smoothstep(clamp01((t - t0) / (t1 - t0))));
  }
  return p.keys.back().second;
}

Vec2 object_at(const Plan& p, const Layout& L, double t) {
  if (t < p.grasp) return L.object0;
  if (t <= p.release) return gripper_at(p, t);
  const Vec2 released = gripper_at(p, p.release);
  if (!p.drop) return released;
  return lerp(released, p.drop_end, smoothstep(clamp01((t - p.release) / (p.slide_end - p.release))));
}

double progress_at(const Plan& p, const Layout& L, double t) {
  if (t < p.grasp)
    return 0.25 * clamp01(1 - dist(gripper_at(p, t), L.object0) / std::max(1e-9, dist(L.home, L.object0)));
  return 0.25 + 0.75 * clamp01(1 - dist(object_at(p, L, t), L.target) / dist(L.object0, L.target));
}

void draw_target(Canvas& c, const TaskDef& task, const Layout& L, int size) {
  const double k = L.k;
  switch (task.kind) {
    case TargetKind::Bowl:
      c.ring(L.target, 9 * k, 6 * k, task.target);
      break;
    case TargetKind::LeftEdge:
      c.rect(0, 0, 2 * k, size - 1, task.target);
      break;
    case TargetKind::StackBlock:
      c.square(L.target, 6.5 * k, task.target);
      break;
    case TargetKind::SquareOutline:
      c.square_outline(L.target, 8 * k, std::max(1.0, std::round(2 * k)), task.target);
      break;
    case TargetKind::Mat:
      c.rect(L.target.x - 10 * k, L.target.y - 8 * k, L.target.x + 10 * k, L.target.y + 8 * k, task.target);
      break;
    case TargetKind::Corner:
      c.rect(size - 13 * k, 0, size - 1, 2 * k, task.target);
      c.rect(size - 3 * k, 0, size - 1, 13 * k, task.target);
      break;
  }
}

void draw_frame(uint8_t* px, int size, const TaskDef& task, const Layout& L, const Plan& p, double t) {
  Canvas c(px, size);
  const double k = L.k;
  c.fill(L.table);
  draw_target(c, task, L, size);
  c.ring(L.distractor_zone, 9 * k, 6 * k, kDistractorZone);
  // The object leaves a trail on the table (as a wiping or painting tool would): how far it has
  // travelled, and which way, is visible in every frame.
  const Rgb trail{static_cast<uint8_t>((task.object.r + L.table.r) / 2),
                  static_cast<uint8_t>((task.object.g + L.table.g) / 2),
                  static_cast<uint8_t>((task.object.b + L.table.b) / 2)};
  if (t > p.grasp) {
    constexpr int kTrailSteps = 48;
    Vec2 prev = object_at(p, L, p.grasp);
    for (int i = 1; i <= kTrailSteps; ++i) {
      const Vec2 cur = object_at(p, L, p.grasp + (t - p.grasp) * i / kTrailSteps);
      c.segment(prev, cur, 5 * k, trail);
      prev = cur;
    }
  }
  // The object is large (9 px of 64) so that each 16-px vision patch sees it clearly.
  const Vec2 obj = object_at(p, L, t);
  if (task.round_object)
    c.disc(obj, 5 * k, task.object);
  else
    c.square(obj, 4.5 * k, task.object);

  // Two-link arm from the base to the gripper (analytic IK, elbow to the right).
  const Vec2 g = gripper_at(p, t);
  const double l1 = 31 * k, l2 = 31 * k;
  const double d = std::clamp(dist(g, L.base), 1e-6, l1 + l2 - 1e-6);
  const double phi = std::atan2(g.y - L.base.y, g.x - L.base.x);
  const double alpha = std::acos(std::clamp((l1 * l1 + d * d - l2 * l2) / (2 * l1 * d), -1.0, 1.0));
  const Vec2 elbow = L.base + l1 * Vec2{std::cos(phi + alpha), std::sin(phi + alpha)};
  c.disc(L.base, 5 * k, kGripper);
  c.segment(L.base, elbow, 3 * k, kArm);
  c.segment(elbow, g, 2.5 * k, kArm);
  c.disc(elbow, 2.5 * k, kGripper);
  const bool closed = t >= p.grasp && t <= p.release;
  c.square_outline(g, 6.5 * k, std::max(1.0, std::round(k)), kGripper);
  if (closed) {  // jaws pressed against the object
    c.rect(g.x - 6.5 * k, g.y - 2.5 * k, g.x - 4.5 * k, g.y + 2.5 * k, kGripper);
    c.rect(g.x + 4.5 * k, g.y - 2.5 * k, g.x + 6.5 * k, g.y + 2.5 * k, kGripper);
  }
}

void check_options(const SynthOptions& o) {
  auto bad = [](const std::string& what) { throw ConfigError("synth: " + what); };
  if (o.tasks < 1 || o.tasks > kSynthMaxTasks) bad("--tasks must be in 1.." + std::to_string(kSynthMaxTasks));
  if (o.size < 32 || o.size > 1024 || o.size % 2) bad("--size must be even and in 32..1024");
  if (o.min_frames < 2 || o.max_frames < o.min_frames || o.max_frames > 10000)
    bad("frames per episode must satisfy 2 <= min <= max <= 10000");
  if (o.train_episodes < 0 || o.eval_episodes < 0) bad("episode counts must be >= 0");
  if (o.layout_jitter > 32) bad("--layout-jitter must be <= 32 design pixels (negative: random scenes)");
  if (!(o.fps > 0) || o.fps > 1000) bad("--fps must be in (0, 1000]");
}

}  // namespace

const std::string& synth_instruction(int task) {
  if (task < 0 || task >= kSynthMaxTasks) throw ConfigError("synth: no task " + std::to_string(task));
  return task_defs()[task].instruction;
}

SynthEpisode render_synth_episode(const SynthOptions& opts, int task, Quality quality, int num_frames,
                                  uint64_t episode_seed, const std::string& id) {
  check_options(opts);
  if (num_frames < 2) throw ConfigError("synth: an episode needs >= 2 frames");
  const TaskDef& def = task_defs().at(static_cast<size_t>(task));
  Rng rng{episode_seed};
  const Layout L = episode_layout(def, opts, task, rng);
  const Plan plan = make_plan(L, quality, opts.size, rng);

  SynthEpisode e;
  e.id = id;
  e.task_index = task;
  e.task = def.instruction;
  e.quality = quality;
  e.failure_mode = plan.failure_mode;
  e.num_frames = num_frames;
  e.size = opts.size;
  const size_t frame_bytes = static_cast<size_t>(opts.size) * opts.size * 3;
  e.frames.resize(frame_bytes * num_frames);
  for (int f = 0; f < num_frames; ++f) {
    const double t = static_cast<double>(f) / (num_frames - 1);  // last frame: exactly 1
    draw_frame(e.frames.data() + frame_bytes * f, opts.size, def, L, plan, t);
    e.progress.push_back(progress_at(plan, L, t));
  }
  if (quality == Quality::Suboptimal) e.partial_success = static_cast<float>(e.progress.back());
  return e;
}

std::vector<SynthEpisodeSpec> synth_episode_specs(const SynthOptions& opts, const std::string& split) {
  check_options(opts);
  const int n = split == "train" ? opts.train_episodes : split == "eval" ? opts.eval_episodes : -1;
  if (n < 0) throw ConfigError("synth: unknown split '" + split + "' (train or eval)");
  static constexpr Quality kCycle[4] = {Quality::Successful, Quality::Successful, Quality::Suboptimal,
                                        Quality::Failure};
  const uint64_t split_salt = split == "train" ? 0x7472616eull : 0x6576616cull;
  std::vector<SynthEpisodeSpec> specs;
  for (int i = 0; i < n; ++i) {
    SynthEpisodeSpec s;
    char id[64];
    std::snprintf(id, sizeof id, "synth_%s_%04d", split.c_str(), i);
    s.id = id;
    s.task = i % opts.tasks;
    s.quality = kCycle[(i / opts.tasks) % 4];
    s.seed = mix(mix(opts.seed, split_salt), static_cast<uint64_t>(i));
    Rng r{s.seed ^ 0xF00Dull};
    s.num_frames = opts.min_frames + r.below(opts.max_frames - opts.min_frames + 1);
    specs.push_back(s);
  }
  return specs;
}

SynthSummary write_synth_dataset(const std::string& out_dir, const SynthOptions& opts) {
  check_options(opts);
  SynthSummary sum;
  for (const std::string split : {"train", "eval"}) {
    const auto specs = synth_episode_specs(opts, split);
    if (specs.empty()) continue;
    const fs::path dir = fs::absolute(fs::path(out_dir) / split);
    fs::create_directories(dir / "videos");
    std::vector<Trajectory> trajs;
    std::string gt_lines;
    for (const auto& s : specs) {
      const SynthEpisode e = render_synth_episode(opts, s.task, s.quality, s.num_frames, s.seed, s.id);
      const fs::path video = dir / "videos" / (e.id + ".mp4");
      {
        VideoWriter w(video.string(), e.size, e.size, opts.fps);
        const size_t frame_bytes = static_cast<size_t>(e.size) * e.size * 3;
        for (int f = 0; f < e.num_frames; ++f) w.write(e.frames.data() + frame_bytes * f);
        w.close();
      }
      Trajectory t;
      t.id = e.id;
      t.task = e.task;
      t.data_source = "synth";
      t.video.path = video.string();
      t.num_frames = e.num_frames;
      t.fps = opts.fps;
      t.quality = e.quality;
      // Off by default: labels.h would turn a partial-success clip that reaches its last frame
      // into all-zero progress labels but for that frame, which contradicts what the frames show.
      if (opts.partial_success_labels) t.partial_success = e.partial_success;
      t.is_robot = true;
      trajs.push_back(t);
      nlohmann::json gt = {{"id", e.id},
                           {"task", e.task},
                           {"task_index", e.task_index},
                           {"quality_label", quality_name(e.quality)},
                           {"partial_success",
                            e.partial_success ? nlohmann::json(*e.partial_success) : nlohmann::json(nullptr)},
                           {"failure_mode", e.failure_mode},
                           {"num_frames", e.num_frames},
                           {"progress", e.progress}};
      gt_lines += gt.dump() + "\n";
      sum.episodes += 1;
      sum.frames += e.num_frames;
      sum.bytes += static_cast<int64_t>(fs::file_size(video));
    }
    const nlohmann::json source = {{"generator", "robometer synth"},
                                   {"split", split},
                                   {"seed", opts.seed},
                                   {"tasks", opts.tasks},
                                   {"size", opts.size},
                                   {"min_frames", opts.min_frames},
                                   {"max_frames", opts.max_frames},
                                   {"layout_jitter", opts.layout_jitter},
                                   {"fps", opts.fps},
                                   {"ground_truth", "ground_truth.jsonl"}};
    io::write_file_atomic((dir / "ground_truth.jsonl").string(), gt_lines);
    write_manifest(dir.string(), "synth-" + split, trajs, source);
  }
  return sum;
}

}  // namespace robometer::data
