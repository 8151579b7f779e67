// Manifest I/O: manifest.json (header) + trajectories.jsonl (one trajectory per line).
#include "robometer/data/manifest.h"

#include <sys/stat.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "robometer/core/error.h"
#include "robometer/io/atomic_file.h"

namespace robometer::data {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kFormatName = "robometer-manifest";

// Errors inside one record name "<file>:<line>" and the key.
struct RecordReader {
  const json& obj;
  std::string where;  // "<path>:<line>"

  [[noreturn]] void fail(const std::string& what) const { throw FormatError(where, what); }

  const json& get(const char* key) const {
    auto it = obj.find(key);
    if (it == obj.end()) fail(std::string("missing key '") + key + "'");
    return *it;
  }
  std::string str(const char* key) const {
    const json& v = get(key);
    if (!v.is_string()) fail(std::string("key '") + key + "' must be a string, got " + v.type_name());
    return v.get<std::string>();
  }
  double num(const json& v, const std::string& key) const {
    if (!v.is_number()) fail("key '" + key + "' must be a number, got " + v.type_name());
    return v.get<double>();
  }
  double num(const char* key) const { return num(get(key), key); }
  int64_t integer(const char* key) const {
    const json& v = get(key);
    if (!v.is_number_integer())
      fail(std::string("key '") + key + "' must be an integer, got " + v.type_name());
    return v.get<int64_t>();
  }
  bool boolean(const char* key) const {
    const json& v = get(key);
    if (!v.is_boolean()) fail(std::string("key '") + key + "' must be a boolean, got " + v.type_name());
    return v.get<bool>();
  }
};

Trajectory parse_record(const json& obj, const std::string& where, const fs::path& dir) {
  RecordReader r{obj, where};
  if (!obj.is_object()) r.fail(std::string("record must be a JSON object, got ") + obj.type_name());
  Trajectory t;
  t.id = r.str("id");
  if (t.id.empty()) r.fail("key 'id' is empty");
  t.task = r.str("task");
  t.data_source = r.str("data_source");

  const json& video = r.get("video");
  if (!video.is_object()) r.fail(std::string("key 'video' must be an object, got ") + video.type_name());
  RecordReader vr{video, where};
  std::string path = vr.str("path");
  if (path.empty()) r.fail("key 'video.path' is empty");
  fs::path p(path);
  if (!p.is_absolute()) {  // relative paths are inside the manifest directory by construction
    const fs::path rel = p.lexically_normal();
    if (!rel.empty() && *rel.begin() == "..")
      r.fail("key 'video.path' (" + path + ") leaves the manifest directory");
  }
  t.video.path = (p.is_absolute() ? p : dir / p).lexically_normal().string();
  if (video.contains("from_s")) t.video.from_s = vr.num(video["from_s"], "video.from_s");
  if (video.contains("to_s") && !video["to_s"].is_null()) t.video.to_s = vr.num(video["to_s"], "video.to_s");
  if (t.video.from_s < 0) r.fail("key 'video.from_s' must be >= 0");
  if (t.video.to_s >= 0 && t.video.to_s <= t.video.from_s) r.fail("key 'video.to_s' must be > from_s");

  t.num_frames = r.integer("num_frames");
  if (t.num_frames <= 0) r.fail("key 'num_frames' must be positive, got " + std::to_string(t.num_frames));
  t.fps = r.num("fps");
  if (!(t.fps > 0)) r.fail("key 'fps' must be positive");

  std::string q = r.str("quality_label");
  try {
    t.quality = parse_quality(q);
  } catch (const Error& e) {
    r.fail(std::string("key 'quality_label': ") + e.what());
  }
  const json& ps = r.get("partial_success");
  if (!ps.is_null()) {
    double v = r.num(ps, "partial_success");
    if (!(v >= 0.0 && v <= 1.0)) r.fail("key 'partial_success' must be null or in [0,1], got " + ps.dump());
    t.partial_success = static_cast<float>(v);
  }
  t.is_robot = r.boolean("is_robot");
  return t;
}

json header_json(const std::string& name, size_t n, const json& source) {
  auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  char created[32];
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return json{{"format", kFormatName}, {"version", kManifestVersion}, {"name", name}, {"created", created},
              {"source", source},      {"num_trajectories", n}};
}

}  // namespace

ManifestHeader read_manifest_header(const std::string& dir_arg) {
  fs::path dir = fs::absolute(dir_arg).lexically_normal();
  fs::path header_path = dir / "manifest.json";
  std::ifstream hf(header_path);
  if (!hf) throw FormatError(header_path.string(), "cannot open (is this a robometer manifest directory?)");
  json header;
  try {
    header = json::parse(hf);
  } catch (const json::exception& e) {
    throw FormatError(header_path.string(), std::string("invalid JSON: ") + e.what());
  }
  RecordReader h{header, header_path.string()};
  if (!header.is_object()) h.fail("must be a JSON object");
  if (h.str("format") != kFormatName) h.fail("key 'format' must be \"robometer-manifest\"");
  int64_t version = h.integer("version");
  if (version != kManifestVersion)
    h.fail("unknown version " + std::to_string(version) + " (this build reads version " +
           std::to_string(kManifestVersion) + ")");
  ManifestHeader m;
  m.dir = dir.string();
  m.name = h.str("name");
  if (header.contains("source")) m.source = header["source"];
  m.num_trajectories = h.integer("num_trajectories");
  return m;
}

void for_each_record(const ManifestHeader& m, const RecordFn& fn, const BadRecordFn& on_bad) {
  const fs::path dir(m.dir);
  const fs::path records_path = dir / "trajectories.jsonl";
  std::ifstream rf(records_path);
  if (!rf) throw FormatError(records_path.string(), "cannot open");
  std::string line;
  int64_t line_no = 0, count = 0;
  while (std::getline(rf, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;  // blank line
    const std::string where = records_path.string() + ":" + std::to_string(line_no);
    json obj;
    Trajectory t;
    try {
      try {
        obj = json::parse(line);
      } catch (const json::exception& e) {
        throw FormatError(where, std::string("invalid JSON: ") + e.what());
      }
      t = parse_record(obj, where, dir);
    } catch (const FormatError& e) {
      if (!on_bad) throw;
      on_bad(e.what());
      ++count;
      continue;
    }
    fn(std::move(t), obj, line_no);
    ++count;
  }
  if (count != m.num_trajectories)
    throw FormatError((dir / "manifest.json").string(),
                      "num_trajectories is " + std::to_string(m.num_trajectories) + " but " +
                          records_path.string() + " holds " + std::to_string(count) + " records");
}

Manifest read_manifest(const std::string& dir_arg) {
  const ManifestHeader h = read_manifest_header(dir_arg);
  Manifest m;
  m.dir = h.dir;
  m.name = h.name;
  m.source = h.source;
  for_each_record(h, [&](Trajectory&& t, const json&, int64_t) { m.trajectories.push_back(std::move(t)); });
  return m;
}

struct ManifestWriter::Impl {
  fs::path dir;
  io::AtomicFileWriter records;
  std::string buf;
  std::string last_video;  // LeRobot v3.0 episodes share a file: stat it once
  struct stat st {};
  explicit Impl(const fs::path& d) : dir(d), records((d / "trajectories.jsonl").string()) {}
};

ManifestWriter::ManifestWriter(const std::string& dir_arg) {
  const fs::path dir = fs::absolute(dir_arg).lexically_normal();
  fs::create_directories(dir);
  impl_ = std::make_unique<Impl>(dir);
}

ManifestWriter::~ManifestWriter() = default;

void ManifestWriter::add(const Trajectory& t) {
  Impl& m = *impl_;
  fs::path video = fs::absolute(t.video.path).lexically_normal();
  if (video.native() != m.last_video) {
    if (::stat(video.c_str(), &m.st) != 0)
      throw Error("write_manifest: trajectory " + std::to_string(n_) + " ('" + t.id + "'): video " +
                  video.string() + " does not exist");
    m.last_video = video.native();
  }
  // Paths under the manifest directory are stored relative, so the folder can be moved.
  fs::path rel = video.lexically_relative(m.dir);
  bool inside = !rel.empty() && *rel.begin() != "..";
  json v{{"path", inside ? rel.string() : video.string()},
         {"from_s", t.video.from_s},
         {"to_s", t.video.to_s < 0 ? json(nullptr) : json(t.video.to_s)}};
  json rec{{"id", t.id},
           {"task", t.task},
           {"data_source", t.data_source},
           {"video", v},
           {"num_frames", t.num_frames},
           {"fps", t.fps},
           {"quality_label", quality_name(t.quality)},
           {"partial_success", t.partial_success ? json(*t.partial_success) : json(nullptr)},
           {"is_robot", t.is_robot},
           {"video_size", static_cast<int64_t>(m.st.st_size)},
           {"video_mtime", static_cast<int64_t>(m.st.st_mtime)}};
  m.buf += rec.dump();
  m.buf += '\n';
  ++n_;
  // Written in 1 MB pieces.
  if (m.buf.size() >= (1u << 20)) {
    m.records.write(m.buf);
    m.buf.clear();
  }
}

void ManifestWriter::commit(const std::string& name, const json& source) {
  Impl& m = *impl_;
  m.records.write(m.buf);
  m.buf.clear();
  // Records first, header last: a reader that finds the new header also finds its records.
  m.records.commit();
  io::write_file_atomic((m.dir / "manifest.json").string(), header_json(name, n_, source).dump(2) + "\n");
}

void write_manifest(const std::string& dir, const std::string& name,
                    const std::vector<Trajectory>& trajectories, const json& source) {
  ManifestWriter w(dir);
  for (const auto& t : trajectories) w.add(t);
  w.commit(name, source);
}

}  // namespace robometer::data
