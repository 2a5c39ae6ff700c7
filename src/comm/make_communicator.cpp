#include "excel/comm/make_communicator.h"

#include "excel/common/errors.h"
#if EXCEL_WITH_CUDA
#include "excel/comm/nccl_communicator.h"
#endif

namespace excel::comm {

bool built_with_nccl() {
#if EXCEL_WITH_CUDA
  return true;
#else
  return false;
#endif
}

int64_t gpu_memory_used_bytes() {
#if EXCEL_WITH_CUDA
  return cuda_memory_used_bytes();
#else
  return -1;
#endif
}

std::unique_ptr<Communicator> make_communicator(const std::string& backend, MPI_Comm base) {
  if (backend == "mpi") return std::make_unique<MpiCommunicator>(base);
#if EXCEL_WITH_CUDA
  if (backend == "nccl") return std::make_unique<NcclCommunicator>(base);
  if (backend == "auto") {
    // Every rank must pick the same backend: NCCL only if all ranks see a device.
    int has_device = cuda_device_count() > 0 ? 1 : 0;
    MPI_Allreduce(MPI_IN_PLACE, &has_device, 1, MPI_INT, MPI_MIN, base);
    if (has_device) return std::make_unique<NcclCommunicator>(base);
    return std::make_unique<MpiCommunicator>(base);
  }
#else
  if (backend == "nccl")
    throw ConfigError("communicator backend nccl: this build has no NCCL: configure with -DEXCEL_WITH_CUDA=ON");
  if (backend == "auto") return std::make_unique<MpiCommunicator>(base);
#endif
  throw ConfigError("unknown communicator backend '" + backend + "' (expected mpi, nccl or auto)");
}

}  // namespace excel::comm
