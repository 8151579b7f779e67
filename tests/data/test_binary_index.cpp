// The binary trajectory index (trajectories.rbmidx): the same trajectories, lookup tables and
// sampled pairs as the JSONL path on real datasets; stale and corrupt files detected and named.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <cstring>
#include <fstream>
#include <map>
#include <set>

#include "common/test_util.h"
#include "robometer/core/error.h"
#include "robometer/data/binary_index.h"
#include "robometer/data/dataset_readers.h"
#include "robometer/data/manifest.h"
#include "robometer/data/sampler.h"
#include "robometer/data/source_filters.h"
#include "robometer/data/trajectory_index.h"

using namespace robometer::data;
namespace fs = std::filesystem;
using robometer::test::shared_dir;
using robometer::test::TempDir;

namespace {

void expect_same_trajectory(const Trajectory& a, const Trajectory& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.task, b.task) << a.id;
  EXPECT_EQ(a.data_source, b.data_source) << a.id;
  EXPECT_EQ(a.video.path, b.video.path) << a.id;
  EXPECT_EQ(a.video.from_s, b.video.from_s) << a.id;
  EXPECT_EQ(a.video.to_s, b.video.to_s) << a.id;
  EXPECT_EQ(a.num_frames, b.num_frames) << a.id;
  EXPECT_EQ(a.fps, b.fps) << a.id;
  EXPECT_EQ(a.quality, b.quality) << a.id;
  EXPECT_EQ(a.partial_success, b.partial_success) << a.id;
  EXPECT_EQ(a.is_robot, b.is_robot) << a.id;
}

std::vector<int64_t> where(const std::vector<Trajectory>& ts,
                           const std::function<bool(const Trajectory&)>& f) {
  std::vector<int64_t> out;
  for (size_t i = 0; i < ts.size(); ++i)
    if (f(ts[i])) out.push_back(static_cast<int64_t>(i));
  return out;
}

// Every lookup table against a brute-force scan of the manifest's records.
void expect_tables_match(const TrajectoryIndex& idx, const std::vector<Trajectory>& ts) {
  ASSERT_EQ(idx.size(), static_cast<int64_t>(ts.size()));
  std::set<std::string> sources, tasks;
  for (const auto& t : ts) sources.insert(t.data_source), tasks.insert(t.task);
  EXPECT_EQ(idx.sources(), std::vector<std::string>(sources.begin(), sources.end()));
  ASSERT_EQ(idx.num_tasks(), tasks.size());
  for (size_t i = 0; i < ts.size(); ++i) {
    expect_same_trajectory(idx.at(static_cast<int64_t>(i)), ts[i]);
    EXPECT_EQ(idx.find(ts[i].id), static_cast<int64_t>(i));
  }
  const bool any_unsuccessful =
      !where(ts, [](const Trajectory& t) { return t.quality != Quality::Successful; }).empty();
  EXPECT_EQ(idx.has_unsuccessful(), any_unsuccessful);
  std::vector<std::string> with_success;
  for (const auto& task : tasks) {
    auto ok =
        where(ts, [&](const Trajectory& t) { return t.task == task && t.quality == Quality::Successful; });
    auto bad =
        where(ts, [&](const Trajectory& t) { return t.task == task && t.quality != Quality::Successful; });
    EXPECT_EQ(idx.by_task(task).to_vector(), where(ts, [&](const Trajectory& t) { return t.task == task; }))
        << task;
    EXPECT_EQ(idx.successful_by_task(task).to_vector(), ok) << task;
    EXPECT_EQ(idx.unsuccessful_by_task(task).to_vector(), bad) << task;
    EXPECT_EQ(idx.task_has_both(task), !ok.empty() && !bad.empty()) << task;
    if (!ok.empty()) with_success.push_back(task);
  }
  std::vector<std::string> got_with_success;
  for (uint32_t t : idx.tasks_with_successful()) got_with_success.emplace_back(idx.task_name(t));
  EXPECT_EQ(got_with_success, with_success);
  for (uint32_t s = 0; s < idx.sources().size(); ++s) {
    const std::string& src = idx.sources()[s];
    EXPECT_EQ(idx.by_source(src).to_vector(),
              where(ts, [&](const Trajectory& t) { return t.data_source == src; }));
    EXPECT_EQ(idx.successful_by_source(s).to_vector(), where(ts, [&](const Trajectory& t) {
                return t.data_source == src && t.quality == Quality::Successful;
              }));
    EXPECT_EQ(idx.both_outcomes_by_source(s).to_vector(), where(ts, [&](const Trajectory& t) {
                return t.data_source == src && idx.task_has_both(t.task);
              }));
    std::set<std::string> st;
    for (const auto& t : ts)
      if (t.data_source == src) st.insert(t.task);
    EXPECT_EQ(idx.tasks_of_source(src), std::vector<std::string>(st.begin(), st.end()));
    EXPECT_EQ(idx.source_has_unsuccessful(src), !where(ts, [&](const Trajectory& t) {
                                                   return t.data_source == src &&
                                                          t.quality != Quality::Successful;
                                                 }).empty());
    EXPECT_EQ(idx.source_has_partial_success(src), !where(ts, [&](const Trajectory& t) {
                                                      return t.data_source == src && t.partial_success;
                                                    }).empty());
  }
}

void expect_same_clip(const ClipPlan& a, const ClipPlan& b) {
  EXPECT_EQ(a.trajectory, b.trajectory);
  EXPECT_EQ(a.order, b.order);
  EXPECT_EQ(a.num_stored, b.num_stored);
  EXPECT_EQ(a.stored_indices, b.stored_indices);
  EXPECT_EQ(a.video_indices, b.video_indices);
  EXPECT_EQ(a.progress, b.progress);  // bitwise: the same doubles
  EXPECT_EQ(a.success, b.success);
  EXPECT_EQ(a.success_mask, b.success_mask);
  EXPECT_EQ(a.progress_mask, b.progress_mask);
  EXPECT_EQ(a.valid_frames, b.valid_frames);
}

// N pairs drawn with the same seeds from both indexes are identical; returns the strategies seen.
std::set<Strategy> expect_same_pairs(std::shared_ptr<const TrajectoryIndex> a,
                                     std::shared_ptr<const TrajectoryIndex> b, int n) {
  std::set<Strategy> seen;
  PairSampler sa(a, SamplerOptions{}), sb(b, SamplerOptions{});
  for (int k = 0; k < n; ++k) {
    Rng ra(hash_seed({7, static_cast<uint64_t>(k)})), rb(hash_seed({7, static_cast<uint64_t>(k)}));
    const PairPlan pa = sa.sample(ra), pb = sb.sample(rb);
    expect_same_clip(pa.chosen, pb.chosen);
    expect_same_clip(pa.rejected, pb.rejected);
    EXPECT_EQ(pa.strategy, pb.strategy);
    EXPECT_EQ(pa.chosen_first, pb.chosen_first);
    EXPECT_EQ(pa.task, pb.task);
    EXPECT_EQ(pa.attempts, pb.attempts);
    EXPECT_EQ(ra.next_u64(), rb.next_u64())
        << "the two paths consumed different random numbers at pair " << k;
    seen.insert(pa.strategy);
    if (::testing::Test::HasFailure()) break;
  }
  return seen;
}

// 3 real clips as 96 trajectories: 4 sources (one graded), 10 tasks, all three qualities, short
// and long windows.
std::vector<Trajectory> varied_trajectories() {
  const fs::path ex = shared_dir() / "data/robometer/scripts/example_videos";
  const std::vector<std::pair<std::string, int64_t>> clips = {
      {(ex / "soar_put_green_stick_in_brown_bowl.mp4").string(), 32},
      {(ex / "berkeley_rpt_stack_cup.mp4").string(), 32},
      {(ex / "jaco_play_pick_up_green_cup.mp4").string(), 64}};
  std::vector<Trajectory> ts;
  for (int i = 0; i < 96; ++i) {
    Trajectory t;
    t.id = "ep" + std::to_string((i * 37) % 96);  // not in position order
    const int source = i % 4;
    t.data_source = source == 3 ? "graded" : "src" + std::to_string(source);
    t.task = "task " + std::to_string((i * 7) % 10 + (source == 2 ? 10 : 0));
    const auto& c = clips[static_cast<size_t>(i) % clips.size()];
    t.video.path = c.first;
    t.num_frames = i % 11 == 0 ? 2 : c.second;  // some too short for a sub-clip
    t.fps = 10;
    t.quality = i % 5 == 0 ? Quality::Failure : i % 7 == 0 ? Quality::Suboptimal : Quality::Successful;
    if (source == 3) t.partial_success = static_cast<float>((i * 13) % 10) / 10.f;
    t.is_robot = i % 9 != 0;
    ts.push_back(t);
  }
  return ts;
}

// Writes trajectories as a manifest under dir/name (videos referenced where they are).
fs::path write_dataset(const fs::path& dir, const std::string& name, const std::vector<Trajectory>& ts) {
  write_manifest((dir / name).string(), name, ts, {{"tool", "test"}});
  return dir / name;
}

void rewrite_bytes(const fs::path& p, const std::function<void(std::string&)>& edit) {
  std::string bytes;
  {
    std::ifstream in(p, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  edit(bytes);
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
}

template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(BinaryIndex, SameTrajectoriesTablesAndPairsAsJsonl) {
  ROBOMETER_REQUIRE_SHARED_DATA();
  TempDir tmp;
  const auto ts = varied_trajectories();
  const fs::path dir = write_dataset(tmp.path(), "varied", ts);
  EXPECT_EQ(build_index(dir.string()), 96);
  ASSERT_TRUE(fs::exists(dir / kIndexFileName));
  auto mapped = open_trajectory_index({{dir.string(), 1.0}}, IndexPolicy::Require);
  ASSERT_TRUE(mapped->image().is_mapped());
  auto parsed = open_trajectory_index({{dir.string(), 1.0}}, IndexPolicy::Off);
  ASSERT_FALSE(parsed->image().is_mapped());
  const Manifest m = read_manifest(dir.string());
  expect_tables_match(*mapped, m.trajectories);
  expect_tables_match(*parsed, m.trajectories);
  const auto seen = expect_same_pairs(mapped, parsed, 3000);
  EXPECT_EQ(seen.size(), 4u) << "every strategy should have been drawn";
}

TEST(BinaryIndex, RealDatasetsIngestedAndMerged) {
  ROBOMETER_REQUIRE_SHARED_DATA();
  TempDir tmp;
  // G1 (LeRobot v2.1, 3 episodes with videos) and the example clips as a folder dataset.
  DatasetScan g1 = scan_dataset("lerobot", (shared_dir() / "data/G1-policy-train").string());
  probe_trajectories(g1, {2, nullptr});
  ASSERT_EQ(g1.trajectories.size(), 3u);
  const fs::path g1_dir = write_dataset(tmp.path(), "g1", g1.trajectories);
  const auto varied = varied_trajectories();
  const fs::path v_dir = write_dataset(tmp.path(), "varied", varied);
  // data.index: auto builds the missing indexes.
  auto mapped = open_trajectory_index({{g1_dir.string(), 2.0}, {v_dir.string(), 1.0}}, IndexPolicy::Auto);
  EXPECT_TRUE(fs::exists(g1_dir / kIndexFileName));
  EXPECT_TRUE(fs::exists(v_dir / kIndexFileName));
  auto parsed = open_trajectory_index({{g1_dir.string(), 2.0}, {v_dir.string(), 1.0}}, IndexPolicy::Off);
  std::vector<Trajectory> all = read_manifest(g1_dir.string()).trajectories;
  for (const auto& t : read_manifest(v_dir.string()).trajectories) all.push_back(t);
  expect_tables_match(*mapped, all);
  for (const auto& s : mapped->sources()) EXPECT_EQ(mapped->source_weight(s), parsed->source_weight(s)) << s;
  EXPECT_EQ(mapped->source_weight(all[0].data_source), 2.0);
  expect_same_pairs(mapped, parsed, 1000);
  // The single G1 index is used in place (zero copy) and matches too.
  auto g1_only = open_trajectory_index({{g1_dir.string(), 1.0}}, IndexPolicy::Require);
  EXPECT_TRUE(g1_only->image().is_mapped());
  expect_tables_match(*g1_only, read_manifest(g1_dir.string()).trajectories);
}

TEST(BinaryIndex, StaleIndexIsRebuiltOrRefused) {
  ROBOMETER_REQUIRE_SHARED_DATA();
  TempDir tmp;
  auto ts = varied_trajectories();
  ts.resize(10);
  const fs::path dir = write_dataset(tmp.path(), "ds", ts);
  build_index(dir.string());
  const fs::path idx = dir / kIndexFileName;
  // mtime changes with the same bytes (a copy, a checkout): the content hash keeps it fresh.
  const auto index_mtime = fs::last_write_time(idx);
  fs::last_write_time(dir / "trajectories.jsonl",
                      fs::last_write_time(dir / "trajectories.jsonl") + std::chrono::seconds(5));
  EXPECT_EQ(open_trajectory_index({{dir.string(), 1.0}}, IndexPolicy::Require)->size(), 10);
  EXPECT_EQ(fs::last_write_time(idx), index_mtime);
  // The manifest grows: require refuses, naming the index and the command; auto rebuilds.
  ts.push_back(ts[0]);
  ts.back().id = "new";
  write_manifest(dir.string(), "ds", ts);
  const std::string err = error_of([&] { open_index(dir.string(), IndexPolicy::Require); });
  EXPECT_NE(err.find(idx.string()), std::string::npos) << err;
  EXPECT_NE(err.find("stale"), std::string::npos) << err;
  EXPECT_NE(err.find("robometer data index"), std::string::npos) << err;
  EXPECT_EQ(open_trajectory_index({{dir.string(), 1.0}}, IndexPolicy::Auto)->size(), 11);
  EXPECT_EQ(open_trajectory_index({{dir.string(), 1.0}}, IndexPolicy::Require)->find("new"), 10);
  // Same size, different content (an edited task of equal length): the hash catches it.
  {
    std::string jsonl;
    {
      std::ifstream in(dir / "trajectories.jsonl");
      jsonl.assign(std::istreambuf_iterator<char>(in), {});
    }
    const size_t at = jsonl.find("task 0");
    ASSERT_NE(at, std::string::npos);
    jsonl[at + 5] = 'X';
    std::ofstream(dir / "trajectories.jsonl", std::ios::trunc) << jsonl;
  }
  EXPECT_NE(error_of([&] { open_index(dir.string(), IndexPolicy::Require); }).find("hash differs"),
            std::string::npos);
  EXPECT_GE(open_trajectory_index({{dir.string(), 1.0}}, IndexPolicy::Auto)->find_task("task X"), 0);
  // A missing index under require.
  fs::remove(idx);
  EXPECT_NE(error_of([&] { open_index(dir.string(), IndexPolicy::Require); }).find("missing"),
            std::string::npos);
}

TEST(BinaryIndex, CorruptIndexIsNamed) {
  ROBOMETER_REQUIRE_SHARED_DATA();
  TempDir tmp;
  auto ts = varied_trajectories();
  ts.resize(20);
  const fs::path dir = write_dataset(tmp.path(), "ds", ts);
  build_index(dir.string());
  const fs::path idx = dir / kIndexFileName;
  const fs::path good = tmp / "good.rbmidx";
  fs::copy_file(idx, good);
  auto restore = [&] { fs::copy_file(good, idx, fs::copy_options::overwrite_existing); };
  auto open_error = [&] { return error_of([&] { IndexImage::map_file(idx.string(), dir.string()); }); };
  auto expect_named = [&](const std::string& err, const std::string& what) {
    EXPECT_NE(err.find(idx.string()), std::string::npos) << err;
    EXPECT_NE(err.find(what), std::string::npos) << err;
  };

  fs::resize_file(idx, fs::file_size(idx) - 100);
  expect_named(open_error(), "truncated");
  fs::resize_file(idx, 64);
  expect_named(open_error(), "truncated");
  restore();
  rewrite_bytes(idx, [](std::string& b) { b[0] = 'X'; });
  expect_named(open_error(), "bad magic");
  restore();
  rewrite_bytes(idx, [](std::string& b) { b[8] = 99; });  // version
  expect_named(open_error(), "version 99");
  restore();
  rewrite_bytes(idx, [](std::string& b) { std::swap(b[12], b[15]); });  // byte-order mark
  expect_named(open_error(), "byte order");
  restore();
  // Section table entry 0 (after the 128-byte header): offset beyond the end of the file.
  rewrite_bytes(idx, [](std::string& b) {
    const uint64_t off = b.size() + 8;
    std::memcpy(&b[128 + 8], &off, 8);
  });
  expect_named(open_error(), "outside the file");
  restore();
  // A position inside a lookup table pointing past the records: caught where it is read.
  {
    uint64_t records_at = 0;  // file offset of the records section (section entry 0)
    {
      std::ifstream in(idx, std::ios::binary);
      in.seekg(128 + 8);
      in.read(reinterpret_cast<char*>(&records_at), 8);
    }
    size_t table_at = 0;
    {
      auto img = IndexImage::map_file(idx.string(), dir.string());
      const auto by_source = img->group(IndexImage::BySource, 0);
      ASSERT_FALSE(by_source.empty());
      table_at = records_at + static_cast<size_t>(reinterpret_cast<const char*>(by_source.p) -
                                                  reinterpret_cast<const char*>(&img->record(0)));
    }
    rewrite_bytes(idx, [&](std::string& b) {
      const int64_t bad = 1000000;
      std::memcpy(&b[table_at], &bad, 8);
    });
    auto broken = open_trajectory_index({{dir.string(), 1.0}}, IndexPolicy::Require);
    const int64_t first = broken->by_source(uint32_t{0})[0];
    EXPECT_EQ(first, 1000000);
    expect_named(error_of([&] { broken->at(first); }), "out of range");
    // `data validate` sees it: the body hash no longer matches.
    EXPECT_FALSE(broken->image().body_hash_ok());
  }
  restore();
  EXPECT_TRUE(IndexImage::map_file(idx.string(), dir.string())->body_hash_ok());
}

TEST(BinaryIndex, DuplicateIdsAndEscapingPathsNameFileAndLine) {
  ROBOMETER_REQUIRE_SHARED_DATA();
  TempDir tmp;
  auto ts = varied_trajectories();
  ts.resize(5);
  ts[4].id = ts[1].id;
  write_manifest((tmp / "dup").string(), "dup", ts);
  const std::string err = error_of([&] { build_index((tmp / "dup").string()); });
  EXPECT_NE(err.find("duplicate trajectory id '" + ts[1].id + "'"), std::string::npos) << err;
  EXPECT_NE(err.find("trajectories.jsonl lines 2 and 5"), std::string::npos) << err;
  // A relative video path that climbs out of the manifest directory is refused.
  ts[4].id = "x";
  const fs::path dir = write_dataset(tmp.path(), "esc", ts);
  rewrite_bytes(dir / "trajectories.jsonl", [](std::string& b) {
    const size_t line3 = b.find('\n', b.find('\n') + 1) + 1;
    const size_t at = b.find("\"path\":\"", line3) + 8;
    b.replace(at, b.find('"', at) - at, "../../etc/passwd");
  });
  const std::string esc = error_of([&] { read_manifest(dir.string()); });
  EXPECT_NE(esc.find("trajectories.jsonl:3"), std::string::npos) << esc;
  EXPECT_NE(esc.find("leaves the manifest directory"), std::string::npos) << esc;
}

namespace {

// Resident kB of this process's mapping of `file` (/proc/self/smaps), -1 when it is not mapped.
int64_t mapped_rss_kb(const fs::path& file) {
  std::ifstream in("/proc/self/smaps");
  bool inside = false, found = false;
  int64_t kb = 0;
  for (std::string line; std::getline(in, line);) {
    const bool header = !line.empty() && line.find(':') != std::string::npos &&
                        line.find(' ') > line.find('-') && line.find('-') < 17;
    if (header)
      inside = line.size() >= file.string().size() &&
               line.compare(line.size() - file.string().size(), std::string::npos, file.string()) == 0;
    if (inside && line.rfind("Rss:", 0) == 0) {
      kb += std::stoll(line.substr(4));
      found = true;
    }
  }
  return found ? kb : -1;
}

}  // namespace

// The filters' whole-index scan (training start, data stats), which releases record pages behind
// it, gives the same counts on the mapped index as on the in-memory one, and the released pages
// read back the same records. (The resident-set effect is measured by scripts/bench/index.py.)
TEST(BinaryIndex, FilterScanOfAMappedIndexReleasesRecordPagesAndCountsTheSame) {
  TempDir tmp;
  const fs::path clip = tmp / "clip.mp4";  // only stat'ed (size, mtime) by write_manifest
  std::ofstream(clip) << "not decoded here";
  std::vector<Trajectory> ts(300000);
  for (size_t i = 0; i < ts.size(); ++i) {
    Trajectory& t = ts[i];
    t.id = "ep" + std::to_string(i);
    t.data_source = "src" + std::to_string(i % 3);
    t.task = "task " + std::to_string(i % 5000);
    t.video.path = clip.string();
    t.num_frames = 1 + static_cast<int64_t>(i % 13);                     // <= 5: too short
    t.quality = i % 5000 < 40 ? Quality::Failure : Quality::Successful;  // 40 tasks without success
    if (i % 5000 == 7) t.quality = Quality::Suboptimal;
    t.fps = 10;
  }
  const fs::path dir = write_dataset(tmp.path(), "big", ts);
  build_index(dir.string());
  auto mapped = open_trajectory_index({{dir.string(), 1.0}}, IndexPolicy::Require);
  ASSERT_TRUE(mapped->image().is_mapped());
  const TrajectoryIndex in_memory(ts);
  const fs::path file = fs::canonical(dir / kIndexFileName);
  const int64_t before = mapped_rss_kb(file);
  ASSERT_GE(before, 0) << "index not found in /proc/self/smaps";
  const FilterReport a = filter_report(*mapped, 5, true), b = filter_report(in_memory, 5, true);
  const int64_t after = mapped_rss_kb(file);
  EXPECT_EQ(a.summary(), b.summary());
  EXPECT_EQ(a.too_short, b.too_short);
  EXPECT_EQ(a.no_success, b.no_success);
  EXPECT_GT(a.dropped(), 0);
  EXPECT_GT(a.tasks_without_success, 0);
  EXPECT_GE(after, 0);
  // Released pages read back the same records (filter_index itself also scans, then copies).
  const auto kept = filter_index(mapped, 5, true);
  ASSERT_EQ(kept->size(), a.kept);
  for (int64_t i : {int64_t{0}, int64_t{65535}, int64_t{65536}, mapped->size() - 1})
    EXPECT_EQ(mapped->at(i).id, ts[static_cast<size_t>(i)].id) << i;
}
