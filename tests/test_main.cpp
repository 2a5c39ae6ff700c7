#include <glog/logging.h>
#include <gtest/gtest.h>

#include <iostream>

#include "excel/common/blas.h"

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  FLAGS_logtostderr = true;
  FLAGS_minloglevel = 1;
  google::InitGoogleLogging(argv[0]);
  std::cout << "[blas] " << excel::compute_summary() << std::endl;  // read by scripts/test_kernels.sh
  return RUN_ALL_TESTS();
}
