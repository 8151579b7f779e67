#include "robometer/dist/process_group.h"

#include <spdlog/spdlog.h>
#include <torch/cuda.h>

#include <cstdlib>
#include <map>

#include "robometer/core/error.h"
#include "robometer/core/host_sync.h"
#include "robometer/dist/c10d_compat.h"

namespace robometer::dist {

struct C10dWorld::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d_compat::BackendBase> pg;
};

namespace {

bool is_loopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

// Runs `op` on one flat buffer per (dtype, device) built from `tensors`, then copies the
// result back: c10d backends want one tensor per device, and one big message beats hundreds.
template <class Op>
void flat_apply(std::vector<at::Tensor>& tensors, Op op) {
  std::map<std::pair<int, std::string>, std::vector<size_t>> groups;
  for (size_t i = 0; i < tensors.size(); ++i) {
    groups[{static_cast<int>(tensors[i].scalar_type()), tensors[i].device().str()}].push_back(i);
  }
  for (auto& [key, idx] : groups) {
    std::vector<at::Tensor> parts;
    for (auto i : idx) parts.push_back(tensors[i].detach().reshape({-1}));
    at::Tensor flat = at::cat(parts);
    op(flat);
    int64_t off = 0;
    for (auto i : idx) {
      const auto n = tensors[i].numel();
      tensors[i].detach().copy_(flat.slice(0, off, off + n).view(tensors[i].sizes()));
      off += n;
    }
  }
}

class WorkHandle final : public PendingCollective {
 public:
  WorkHandle(c10::intrusive_ptr<c10d::Work> w, std::string what, int rank, int world,
             std::chrono::milliseconds timeout)
      : work_(std::move(w)), what_(std::move(what)), rank_(rank), world_(world), timeout_(timeout) {}
  void wait() override {
    if (!work_) return;
    try {
      work_->wait(timeout_);
    } catch (const std::exception& e) {
      work_.reset();
      throw Error("distributed " + what_ + " failed on rank " + std::to_string(rank_) + " of " +
                  std::to_string(world_) + " (timeout " + std::to_string(timeout_.count() / 1000) +
                  " s; a peer rank probably died, hung or timed out): " + e.what());
    }
    work_.reset();
  }

 private:
  c10::intrusive_ptr<c10d::Work> work_;
  std::string what_;
  int rank_, world_;
  std::chrono::milliseconds timeout_;
};

}  // namespace

C10dWorld::C10dWorld(const DistEnv& env, const ProcessGroupConfig& cfg)
    : env_(env), cfg_(cfg), impl_(std::make_unique<Impl>()) {
  backend_ = cfg.backend;
  if (backend_ == "auto") {
#ifdef USE_C10D_NCCL
    backend_ = torch::cuda::is_available() ? "nccl" : "gloo";
#else
    backend_ = "gloo";
#endif
  }
  if (backend_ != "gloo" && backend_ != "nccl")
    throw ConfigError("dist.backend: unknown backend '" + backend_ + "' (auto, gloo, nccl)");
#ifndef USE_C10D_NCCL
  if (backend_ == "nccl")
    throw ConfigError("dist.backend = nccl, but this build has no NCCL (USE_C10D_NCCL); use gloo");
#endif
#if !ROBOMETER_HAVE_GLOO
  if (backend_ == "gloo")
    throw ConfigError("dist.backend = gloo, but this build has no Gloo headers; use nccl");
#endif

  const std::string where = env_.master_addr + ":" + std::to_string(env_.master_port);
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(env_.master_port);
    so.isServer = env_.rank == 0 && !env_.agent_store;
    so.numWorkers = static_cast<std::size_t>(env_.world_size);
    so.waitWorkers = true;
    so.timeout = cfg_.timeout;
    impl_->store = c10::make_intrusive<c10d::TCPStore>(env_.master_addr, so);
    if (env_.agent_store)
      impl_->store = c10::make_intrusive<c10d::PrefixStore>(
          "/worker/attempt_" + std::to_string(env_.restart_count), impl_->store);
  } catch (const std::exception& e) {
    throw Error("distributed rendezvous at " + where + " failed on rank " + std::to_string(env_.rank) +
                " of " + std::to_string(env_.world_size) + " (timeout " +
                std::to_string(cfg_.timeout.count() / 1000) + " s): " + e.what());
  }
  try {
    if (backend_ == "gloo") {
#if ROBOMETER_HAVE_GLOO
      auto opts = c10d::ProcessGroupGloo::Options::create(cfg_.timeout);
      if (const char* iface = std::getenv("GLOO_SOCKET_IFNAME")) {
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(iface));
      } else if (is_loopback(env_.master_addr)) {
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      } else {
        opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      opts->threads = 2;
      impl_->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(impl_->store, env_.rank, env_.world_size, opts);
#endif
    } else {
#ifdef USE_C10D_NCCL
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = cfg_.timeout;
      impl_->pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(impl_->store, env_.rank, env_.world_size, opts);
#endif
    }
  } catch (const std::exception& e) {
    throw Error("creating the " + backend_ + " process group (rank " + std::to_string(env_.rank) + " of " +
                std::to_string(env_.world_size) + ", store " + where + ") failed: " + e.what());
  }
  spdlog::info("distributed: rank {} of {} (local {}), backend {}, store {}, timeout {} s", env_.rank,
               env_.world_size, env_.local_rank, backend_, where, cfg_.timeout.count() / 1000);
}

C10dWorld::~C10dWorld() = default;

at::Device C10dWorld::device() const {
  if (backend_ == "nccl") return at::Device(at::kCUDA, static_cast<int16_t>(env_.local_rank));
  return at::Device(at::kCPU);
}

std::unique_ptr<PendingCollective> C10dWorld::all_reduce_async(at::Tensor tensor, const std::string& what) {
  std::vector<at::Tensor> ts{tensor};
  c10d::AllreduceOptions o;
  o.reduceOp = c10d::ReduceOp::SUM;
  try {
    return std::make_unique<WorkHandle>(impl_->pg->allreduce(ts, o), what, env_.rank, env_.world_size,
                                        cfg_.timeout);
  } catch (const std::exception& e) {
    throw Error("distributed " + what + " could not start on rank " + std::to_string(env_.rank) + ": " +
                e.what());
  }
}

void C10dWorld::broadcast(std::vector<at::Tensor>& tensors, int root) {
  flat_apply(tensors, [&](at::Tensor& flat) {
    std::vector<at::Tensor> ts{flat};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    WorkHandle(impl_->pg->broadcast(ts, o), "broadcast from rank " + std::to_string(root), env_.rank,
               env_.world_size, cfg_.timeout)
        .wait();
  });
}

void C10dWorld::all_reduce_sum(std::vector<at::Tensor>& tensors) {
  flat_apply(tensors, [&](at::Tensor& flat) { all_reduce_async(flat, "all_reduce")->wait(); });
}

void C10dWorld::barrier() {
  c10d::BarrierOptions o;
  o.timeout = cfg_.timeout;
  WorkHandle(impl_->pg->barrier(o), "barrier", env_.rank, env_.world_size, cfg_.timeout).wait();
}

bool C10dWorld::any(bool flag) {
  auto t = at::full({1}, flag ? 1.0f : 0.0f, at::TensorOptions().device(device()));
  all_reduce_async(t, "any (stop flag)")->wait();
  return core::host_value<float>(t, "dist: any") > 0;
}

void C10dWorld::reduce_scatter_sum(at::Tensor flat, at::Tensor out) {
  TORCH_CHECK(flat.numel() == out.numel() * env_.world_size, "reduce_scatter_sum: size mismatch");
  if (backend_ == "nccl") {
    c10d::ReduceScatterOptions o;
    WorkHandle(impl_->pg->_reduce_scatter_base(out, flat, o), "reduce_scatter", env_.rank, env_.world_size,
               cfg_.timeout)
        .wait();
    return;
  }
  all_reduce_async(flat, "all_reduce (for reduce_scatter)")->wait();
  const auto n = out.numel();
  out.copy_(flat.slice(0, n * env_.rank, n * (env_.rank + 1)));
}

void C10dWorld::all_gather(at::Tensor flat, const at::Tensor& shard) {
  const auto n = shard.numel();
  TORCH_CHECK(flat.numel() == n * env_.world_size, "all_gather: size mismatch");
  std::vector<std::vector<at::Tensor>> outs(1);
  for (int r = 0; r < env_.world_size; ++r) outs[0].push_back(flat.slice(0, n * r, n * (r + 1)));
  std::vector<at::Tensor> in{shard};
  c10d::AllgatherOptions o;
  WorkHandle(impl_->pg->allgather(outs, in, o), "all_gather", env_.rank, env_.world_size, cfg_.timeout)
      .wait();
}

}  // namespace robometer::dist
