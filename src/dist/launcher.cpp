#include "robometer/dist/launcher.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "robometer/core/error.h"

extern char** environ;

namespace robometer::dist {
namespace {

volatile sig_atomic_t g_signal = 0;
void on_signal(int sig) { g_signal = sig; }

std::string status_text(int status) {
  if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    const char* name = strsignal(sig);
    return "signal " + std::to_string(sig) + " (" + (name ? name : "?") + ")";
  }
  return "status " + std::to_string(status);
}

bool is_rank_var(const char* entry) {
  static const char* names[] = {"RANK=",        "LOCAL_RANK=",  "WORLD_SIZE=", "LOCAL_WORLD_SIZE=",
                                "MASTER_ADDR=", "MASTER_PORT=", "GROUP_RANK="};
  for (const char* n : names)
    if (std::strncmp(entry, n, std::strlen(n)) == 0) return true;
  return false;
}

struct Child {
  int rank = 0;
  pid_t pid = -1;
  bool running = false;
  int status = 0;
};

}  // namespace

int pick_free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw Error(std::string("socket: ") + std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof(a);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    throw Error(std::string("picking a free port: ") + std::strerror(errno));
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

int launch(const LaunchOptions& o) {
  if (o.nproc_per_node < 1) throw ConfigError("launch: --nproc-per-node must be >= 1");
  if (o.nnodes < 1) throw ConfigError("launch: --nnodes must be >= 1");
  if (o.node_rank < 0 || o.node_rank >= o.nnodes)
    throw ConfigError("launch: --node-rank " + std::to_string(o.node_rank) + " is not in [0, " +
                      std::to_string(o.nnodes) + ")");
  if (o.args.empty())
    throw ConfigError("launch: no command given (usage: launch [options] -- <subcommand> [args])");
  if (o.master_port < 0 || o.master_port > 65535) throw ConfigError("launch: --master-port out of range");
  if (o.master_port == 0 && o.nnodes > 1)
    throw ConfigError("launch: --master-port 0 (pick a free port) only works with one node");
  const int port = o.master_port == 0 ? pick_free_port() : o.master_port;
  const int world = o.nnodes * o.nproc_per_node;

  // Everything the children need is built before fork (only async-signal-safe calls after).
  std::vector<std::string> base_env;
  bool has_omp = false;
  for (char** e = environ; *e; ++e) {
    if (is_rank_var(*e)) continue;
    if (std::strncmp(*e, "OMP_NUM_THREADS=", 16) == 0) has_omp = true;
    base_env.emplace_back(*e);
  }
  // As torchrun: one OpenMP thread per rank unless the user chose otherwise.
  if (!has_omp && o.nproc_per_node > 1) base_env.emplace_back("OMP_NUM_THREADS=1");
  std::vector<std::string> argv_s;
  argv_s.push_back(o.executable);
  argv_s.insert(argv_s.end(), o.args.begin(), o.args.end());
  std::vector<char*> argv;
  for (auto& s : argv_s) argv.push_back(s.data());
  argv.push_back(nullptr);

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  struct sigaction old_int {
  }, old_term{};
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  g_signal = 0;

  std::vector<Child> children(static_cast<size_t>(o.nproc_per_node));
  std::vector<std::vector<std::string>> envs(children.size());
  std::vector<std::vector<char*>> envps(children.size());
  for (int l = 0; l < o.nproc_per_node; ++l) {
    const int rank = o.node_rank * o.nproc_per_node + l;
    auto& env = envs[l];
    env = base_env;
    env.push_back("RANK=" + std::to_string(rank));
    env.push_back("LOCAL_RANK=" + std::to_string(l));
    env.push_back("WORLD_SIZE=" + std::to_string(world));
    env.push_back("LOCAL_WORLD_SIZE=" + std::to_string(o.nproc_per_node));
    env.push_back("GROUP_RANK=" + std::to_string(o.node_rank));
    env.push_back("MASTER_ADDR=" + o.master_addr);
    env.push_back("MASTER_PORT=" + std::to_string(port));
    for (auto& s : env) envps[l].push_back(s.data());
    envps[l].push_back(nullptr);
  }
  spdlog::info("launch: {} local rank(s) of {} on node {} of {}, master {}:{}: {}", o.nproc_per_node, world,
               o.node_rank, o.nnodes, o.master_addr, port, o.args.front());
  const pid_t parent = getpid();
  for (int l = 0; l < o.nproc_per_node; ++l) {
    const pid_t pid = fork();
    if (pid < 0) {
      for (auto& c : children)
        if (c.running) kill(-c.pid, SIGKILL);
      throw Error(std::string("launch: fork failed: ") + std::strerror(errno));
    }
    if (pid == 0) {
      // Own process group (a terminal's Ctrl-C reaches the launcher once, which forwards it);
      // die with the launcher.
      setpgid(0, 0);
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (getppid() != parent) _exit(1);
      signal(SIGINT, SIG_DFL);
      signal(SIGTERM, SIG_DFL);
      execve(argv[0], argv.data(), envps[l].data());
      const char msg[] = "robometer launch: execve failed\n";
      (void)!write(2, msg, sizeof(msg) - 1);
      _exit(127);
    }
    setpgid(pid, pid);  // also here: signals sent before the child ran its own setpgid still reach its group
    children[l].rank = o.node_rank * o.nproc_per_node + l;
    children[l].pid = pid;
    children[l].running = true;
  }

  using Clock = std::chrono::steady_clock;
  int failed = -1;  // index of the first child that failed
  int forwarded = 0;
  bool stopping = false;
  Clock::time_point kill_at;
  auto alive = [&] {
    int n = 0;
    for (auto& c : children) n += c.running;
    return n;
  };
  // Each rank leads its own process group: signalling the group also reaches what the rank
  // started (data workers, a shell's children), also of ranks that have already exited.
  auto signal_all = [&](int sig) {
    for (auto& c : children)
      if (c.pid > 0) kill(-c.pid, sig);
  };
  while (alive() > 0) {
    if (g_signal != 0 && forwarded != g_signal) {
      forwarded = g_signal;
      spdlog::warn("launch: forwarding signal {} to every rank", static_cast<int>(forwarded));
      signal_all(forwarded);
      if (!stopping) {
        stopping = true;
        // The ranks checkpoint on SIGTERM; give them longer than a failure's grace.
        kill_at = Clock::now() +
                  std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.grace_s * 6));
      }
    }
    int status = 0;
    const pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid > 0) {
      for (size_t i = 0; i < children.size(); ++i) {
        auto& c = children[i];
        if (c.pid != pid || !c.running) continue;
        c.running = false;
        c.status = status;
        const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (!ok && failed < 0 && forwarded == 0) {
          failed = static_cast<int>(i);
          spdlog::error("launch: rank {} (pid {}) failed with {}; stopping the other ranks", c.rank, c.pid,
                        status_text(status));
          signal_all(SIGTERM);
          stopping = true;
          kill_at = Clock::now() +
                    std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.grace_s));
        }
      }
      continue;
    }
    if (pid < 0 && errno != EINTR) break;
    if (stopping && Clock::now() >= kill_at) {
      spdlog::warn("launch: ranks still running after the grace period; sending SIGKILL");
      signal_all(SIGKILL);
      kill_at = Clock::time_point::max();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);

  if (failed >= 0) {
    const auto& c = children[static_cast<size_t>(failed)];
    spdlog::error("launch: failed: rank {} exited with {}", c.rank, status_text(c.status));
    return 1;
  }
  int worst = -1;
  for (size_t i = 0; i < children.size(); ++i) {
    const auto& c = children[i];
    if (!(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0)) {
      spdlog::error("launch: rank {} exited with {}", c.rank, status_text(c.status));
      if (worst < 0) worst = static_cast<int>(i);
    }
  }
  if (worst >= 0) return forwarded ? 128 + forwarded : 1;
  return 0;
}

}  // namespace robometer::dist
