// Picks the collective backend by name: "mpi", "nccl" (needs a build with -DEXCEL_WITH_CUDA=ON)
// or "auto" (NCCL when built with CUDA and a CUDA device is visible, else MPI).
#pragma once
#include <mpi.h>

#include <cstdint>
#include <memory>
#include <string>

#include "excel/comm/communicator.h"

namespace excel::comm {

// Collective over `base`. Throws ConfigError for an unknown name or "nccl" without CUDA support.
std::unique_ptr<Communicator> make_communicator(const std::string& backend, MPI_Comm base = MPI_COMM_WORLD);

// Whether this build has the NCCL backend (EXCEL_WITH_CUDA).
bool built_with_nccl();
// Memory in use on this process's current CUDA device; -1 in CPU builds or without a device.
int64_t gpu_memory_used_bytes();

}  // namespace excel::comm
