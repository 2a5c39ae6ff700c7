// What the CPU BLAS is and how many threads it runs. Debian's LibTorch calls OpenBLAS through
// libblas.so.3; OpenBLAS picks a GEMM kernel for the processor (or OPENBLAS_CORETYPE) and keeps its
// own thread pool, which LibTorch's set_num_threads does not size. Both change the rounding of a
// GEMM's rows (docs/numerics.md), so benchmarks print them and tools set the pool with the ranks.
#pragma once
#include <string>

namespace excel {

// OpenBLAS's kernel name ("Haswell", "SkylakeX", ...), or "not OpenBLAS" when another BLAS is loaded.
std::string blas_kernel();
// OpenBLAS's thread count (0 when not OpenBLAS).
int blas_threads();
// Sizes OpenBLAS's pool; a no-op with another BLAS.
void set_blas_threads(int threads);
// "OpenBLAS Haswell kernel, 2 threads; LibTorch 2 threads" for logs and benchmark headers.
std::string compute_summary();

}  // namespace excel
