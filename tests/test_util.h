// Shared helpers for tests: locating ../shared and temporary folders, placement scopes, errors.
#pragma once
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <set>
#include <string>

#include "excel/model/placement.h"
#include "excel/stages/stage_dump.h"

namespace excel::test {

inline bool ci_mode() {
  const char* ci = std::getenv("CI");
  return ci && std::string(ci) == "true";
}

// Path under ../shared, or "" when the shared folder is absent.
inline std::string shared_path(const std::string& rel) {
  std::string dir = stages::default_shared_dir();
  if (dir.empty()) return "";
  std::filesystem::path p = std::filesystem::path(dir) / rel;
  return std::filesystem::exists(p) ? p.string() : "";
}

// One line per equivalence claim, collected per OpenBLAS kernel by scripts/test_kernels.sh.
inline void report_equivalence(const std::string& what, double largest, double bound) {
  std::cout << "[equivalence] " << what << ": largest difference " << largest << " (bound " << bound << ")"
            << std::endl;
}

// A scratch folder per test name and process, the same path on every call in the process. The
// first call empties it: the PID is in the name, and PIDs are reused (pid_max is 32768 on many
// machines), so a folder left by an earlier process with the same PID would otherwise be read as
// this test's output (it once made a cached-training run fail on a machine with old folders).
inline std::string temp_dir(const std::string& name) {
  static std::set<std::string> made;
  auto p = std::filesystem::temp_directory_path() / ("excel_test_" + name + "_" + std::to_string(::getpid()));
  if (made.insert(p.string()).second) std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p.string();
}

// The process-wide placement (model/placement.h) restored when the scope ends.
struct ScopedPlacement {
  DeviceChoice saved = model::placement();
  ScopedPlacement() = default;
  ScopedPlacement(const ScopedPlacement&) = delete;
  ScopedPlacement& operator=(const ScopedPlacement&) = delete;
  ~ScopedPlacement() { model::set_placement(saved); }
};

// The same with other kernels for the scope: kTorch runs the device path (the code CUDA runs)
// on the CPU.
struct ScopedKernels : ScopedPlacement {
  explicit ScopedKernels(Kernels k) {
    DeviceChoice c = saved;
    c.kernels = k;
    model::set_placement(c);
  }
};

// compare.py's float error: max |got - want| / max(1, max |want|).
inline double normalised_error(const at::Tensor& want, const at::Tensor& got) {
  at::Tensor w = want.to(at::kDouble), g = got.to(at::kDouble);
  return (w - g).abs().max().item<double>() / std::max(1.0, w.abs().max().item<double>());
}

}  // namespace excel::test

// Skips (or fails under CI=true) when a file from ../shared is missing.
#define EXCEL_REQUIRE_SHARED(var, rel)                                                       \
  const std::string var = ::excel::test::shared_path(rel);                                   \
  if (var.empty()) {                                                                         \
    if (::excel::test::ci_mode()) FAIL() << "CI=true but ../shared/" << rel << " is absent"; \
    GTEST_SKIP() << "../shared/" << rel << " is absent; skipping";                           \
  }
