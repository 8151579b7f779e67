// The few c10d differences between LibTorch 1.13 (Debian) and 2.x (pip/GPU box), in one place.
// Include only from src/dist/*.cpp: it pulls in c10d (and gloo) headers.
//  - 1.13: ProcessGroupGloo/ProcessGroupNCCL derive from c10d::ProcessGroup.
//    2.x:  they derive from c10d::Backend (ProcessGroup became a dispatching wrapper); calling
//          the backend object directly keeps the same collective signatures.
//  - ProcessGroupGloo.hpp is guarded by USE_C10D_GLOO, which LibTorch's CMake config does not
//    define for consumers; we define it when the gloo headers are installed (libgloo-dev here).
//  - ProcessGroupNCCL only with USE_C10D_NCCL (the GPU build defines it).
#pragma once
#include <torch/version.h>

#if __has_include(<gloo/algorithm.h>)
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO
#endif
#define ROBOMETER_HAVE_GLOO 1
#else
#define ROBOMETER_HAVE_GLOO 0
#endif

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>
#if ROBOMETER_HAVE_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#if TORCH_VERSION_MAJOR >= 2
#include <torch/csrc/distributed/c10d/Backend.hpp>
#else
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#endif

namespace robometer::dist::c10d_compat {

// The common base of the concrete Gloo / NCCL process-group classes.
#if TORCH_VERSION_MAJOR >= 2
using BackendBase = c10d::Backend;
#else
using BackendBase = c10d::ProcessGroup;
#endif

}  // namespace robometer::dist::c10d_compat
