// A folder of videos plus videos.jsonl (one JSON object per line) or videos.csv (header row)
// with fields path, task, quality_label, and optionally partial_success, data_source, id,
// is_robot. Paths are relative to the folder.
#include <filesystem>
#include <fstream>

#include "robometer/core/error.h"
#include "robometer/data/dataset_readers.h"

namespace robometer::data {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// One CSV line → fields (RFC 4180 quoting: "a, b" and "" for a quote).
std::vector<std::string> split_csv(const std::string& line, const std::string& where) {
  std::vector<std::string> out(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        out.back() += '"';
        ++i;
      } else if (c == '"')
        quoted = false;
      else
        out.back() += c;
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      out.emplace_back();
    } else if (c != '\r') {
      out.back() += c;
    }
  }
  if (quoted) throw FormatError(where, "unterminated quote");
  return out;
}

}  // namespace

void read_folder(const std::string& root_arg, const IngestOptions& opts, TrajectorySink& sink) {
  const fs::path root = fs::absolute(root_arg).lexically_normal();
  const fs::path jsonl = root / "videos.jsonl", csv = root / "videos.csv";
  if (!fs::exists(jsonl) && !fs::exists(csv))
    throw FormatError(root.string(), "no videos.jsonl or videos.csv (folder format)");
  sink.begin("folder", root.string(), -1);
  const std::string default_source = opts.data_source.empty() ? root.filename().string() : opts.data_source;
  // One record, as it is read (a list of a million videos is not held in memory).
  auto add = [&](const std::string& where, const json& r) {
    Trajectory t;
    try {
      const std::string path = r.at("path").get<std::string>();
      t.task = r.at("task").get<std::string>();
      t.id = r.contains("id") ? r["id"].get<std::string>() : fs::path(path).stem().string();
      t.data_source = r.contains("data_source") ? r["data_source"].get<std::string>() : default_source;
      t.video.path =
          (fs::path(path).is_absolute() ? fs::path(path) : root / path).lexically_normal().string();
      t.quality =
          r.contains("quality_label") ? parse_quality(r["quality_label"].get<std::string>()) : opts.quality;
      if (r.contains("partial_success") && !r["partial_success"].is_null()) {
        const json& p = r["partial_success"];
        double v = p.is_string() ? std::stod(p.get<std::string>()) : p.get<double>();
        if (!(v >= 0.0 && v <= 1.0))
          throw Error("partial_success " + std::to_string(v) + " is outside [0, 1]");
        t.partial_success = static_cast<float>(v);
      }
      if (r.contains("is_robot")) {
        const json& b = r["is_robot"];
        t.is_robot =
            b.is_boolean() ? b.get<bool>() : (b.get<std::string>() == "true" || b.get<std::string>() == "1");
      }
    } catch (const json::exception& e) {
      throw FormatError(where, std::string("bad record: ") + e.what());
    } catch (const std::invalid_argument&) {
      throw FormatError(where, "partial_success is not a number");
    } catch (const Error& e) {
      throw FormatError(where, e.what());
    }
    if (t.task.empty())
      sink.problem({t.id, where, "empty task"});
    else if (!fs::is_regular_file(t.video.path))
      sink.problem({t.id, t.video.path, "video file is missing"});
    else
      sink.trajectory(std::move(t));
    sink.row_done();
  };
  if (fs::exists(jsonl)) {
    std::ifstream in(jsonl);
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      const std::string where = jsonl.string() + ":" + std::to_string(n);
      json rec;
      try {
        rec = json::parse(line);
      } catch (const json::exception& e) {
        throw FormatError(where, std::string("invalid JSON: ") + e.what());
      }
      if (!rec.is_object()) throw FormatError(where, "not a JSON object");
      add(where, rec);
    }
  } else {
    std::ifstream in(csv);
    std::string line;
    std::vector<std::string> header;
    for (int n = 1; std::getline(in, line); ++n) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      const std::string where = csv.string() + ":" + std::to_string(n);
      auto fields = split_csv(line, where);
      if (header.empty()) {
        header = fields;
        continue;
      }
      if (fields.size() != header.size())
        throw FormatError(
            where, std::to_string(fields.size()) + " fields, header has " + std::to_string(header.size()));
      json rec = json::object();
      for (size_t k = 0; k < header.size(); ++k)
        if (!fields[k].empty()) rec[header[k]] = fields[k];
      add(where, rec);
    }
  }
}

DatasetScan scan_folder(const std::string& root, const IngestOptions& opts) {
  ScanSink sink;
  read_folder(root, opts, sink);
  return std::move(sink.scan);
}

}  // namespace robometer::data
