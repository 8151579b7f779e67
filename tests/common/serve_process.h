// A `robometer serve` child process for tests that talk to a real server over HTTP: started in
// its own process group with its output in a log file, its port read from the log line
// "... on http://127.0.0.1:PORT", stopped with SIGTERM when the object goes.
#pragma once
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <string>
#include <thread>
#include <vector>

namespace robometer::test {

class ServeProcess {
 public:
  ServeProcess(const std::string& bin, const std::vector<std::string>& args,
               const std::filesystem::path& log) {
    pid_ = ::fork();
    if (pid_ == 0) {
      ::setpgid(0, 0);
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      std::vector<char*> argv{const_cast<char*>(bin.c_str())};
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv(bin.c_str(), argv.data());
      ::_exit(127);
    }
    // "serving DIR on http://127.0.0.1:PORT (...)"
    const std::regex re("on http://127\\.0\\.0\\.1:([0-9]+)");
    for (int i = 0; i < 600 && port_ < 0; ++i) {
      std::ifstream f(log);
      const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
      std::smatch m;
      if (std::regex_search(text, m, re))
        port_ = std::stoi(m[1]);
      else if (::waitpid(pid_, nullptr, WNOHANG) == pid_)
        break;
      else
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  ~ServeProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int st = 0;
      ::waitpid(pid_, &st, 0);
    }
  }
  ServeProcess(const ServeProcess&) = delete;  // owns the child
  ServeProcess& operator=(const ServeProcess&) = delete;
  int port() const { return port_; }

 private:
  pid_t pid_ = -1;
  int port_ = -1;
};

}  // namespace robometer::test
