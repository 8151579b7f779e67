#include "robometer/train/metrics_log.h"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "robometer/core/error.h"
#include "robometer/io/atomic_file.h"

namespace robometer::train {

MetricsLog::MetricsLog(const std::filesystem::path& path, int64_t resumed_step) : path_(path) {
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  if (resumed_step >= 0 && std::filesystem::exists(path)) {
    std::ifstream in(path, std::ios::binary);
    std::string line, kept;
    int64_t dropped = 0;
    bool past = false;  // once a line beyond the resumed step is seen, nothing later is kept
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      bool keep = !past && !j.is_discarded() && j.is_object();
      if (keep && j.contains("step") && j["step"].is_number() &&
          j["step"].get<double>() > static_cast<double>(resumed_step)) {
        keep = false;
        past = true;
      }
      if (keep) {
        kept += line + "\n";
        ++kept_;
      } else {
        ++dropped;
      }
    }
    io::write_file_atomic(path.string(), kept);
    if (dropped > 0)
      spdlog::info("metrics log {}: dropped {} lines after step {} (resume)", path.string(), dropped,
                   resumed_step);
  }
  file_ = std::fopen(path.c_str(), resumed_step >= 0 ? "ab" : "wb");
  if (!file_) throw Error(path.string() + ": cannot open for writing: " + std::strerror(errno));
}

MetricsLog::~MetricsLog() {
  if (file_) std::fclose(file_);
}

void MetricsLog::write(const nlohmann::json& record) {
  // nlohmann writes NaN/Inf as null already; `replace` keeps invalid UTF-8 from throwing.
  const std::string line = record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0)
    throw Error(path_.string() + ": write failed: " + std::strerror(errno));
}

std::vector<nlohmann::json> MetricsLog::read(const std::filesystem::path& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path.string() + ": cannot open");
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded()) out.push_back(std::move(j));
  }
  return out;
}

}  // namespace robometer::train
