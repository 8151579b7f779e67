// Error types. Every failure the user can cause (bad file, bad config, bad data) is reported
// through these with the file/key/value at fault; the CLI maps them to exit codes.
#pragma once
#include <stdexcept>
#include <string>

namespace robometer {

// A recoverable, user-facing error: message says what, where (file, key, index) and why.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Invalid configuration or command-line usage (exit code 2).
class ConfigError : public Error {
 public:
  using Error::Error;
};

// Malformed or unreadable input file (video, parquet, safetensors, manifest).
class FormatError : public Error {
 public:
  FormatError(const std::string& path, const std::string& what) : Error(path + ": " + what), path_(path) {}
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace robometer
