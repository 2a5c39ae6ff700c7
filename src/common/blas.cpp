#include "excel/common/blas.h"

#include <dlfcn.h>
#include <torch/torch.h>

namespace excel {
namespace {

// OpenBLAS's own entry points, looked up at run time: the BLAS behind libblas.so.3 is chosen by
// Debian's alternatives, so the build cannot assume it.
template <class Fn>
Fn openblas_symbol(const char* name) {
  return reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, name));
}

}  // namespace

std::string blas_kernel() {
  auto corename = openblas_symbol<char* (*)()>("openblas_get_corename");
  if (!corename) return "not OpenBLAS";
  std::string s = corename();
  if (!s.empty()) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
  return s;
}

int blas_threads() {
  auto get = openblas_symbol<int (*)()>("openblas_get_num_threads");
  return get ? get() : 0;
}

void set_blas_threads(int threads) {
  if (auto set = openblas_symbol<void (*)(int)>("openblas_set_num_threads")) set(threads);
}

std::string compute_summary() {
  const std::string k = blas_kernel();
  std::string s = k == "not OpenBLAS" ? k : "OpenBLAS " + k + " kernel, " + std::to_string(blas_threads()) + " threads";
  return s + "; LibTorch " + std::to_string(at::get_num_threads()) + " threads";
}

}  // namespace excel
