// common/device (src/common/device.cpp): --device, --model_precision and --model_kernels resolved
// for a local rank and a number of visible CUDA devices; every bad value or impossible choice is a
// ConfigError naming its flag.
#include <gtest/gtest.h>

#include <string>

#include "excel/common/device.h"
#include "excel/common/errors.h"

using namespace excel;

namespace {
// The ConfigError's message for a resolution that must fail ("" when it does not throw).
std::string error_of(const std::string& dev, const std::string& prec, const std::string& kern, int rank, int gpus) {
  try {
    resolve_device(dev, prec, kern, rank, gpus);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(DeviceTest, auto_is_cpu_without_cuda_devices_and_says_why) {
  const DeviceChoice c = resolve_device("auto", "fp32", "auto", 3, 0);
  EXPECT_FALSE(c.cuda);
  EXPECT_EQ(c.name(), "cpu");
  EXPECT_FALSE(c.torch_kernels());
  EXPECT_NE(c.why.find("0 CUDA devices"), std::string::npos) << c.why;
}

TEST(DeviceTest, auto_and_cuda_take_local_rank_modulo_visible_devices) {
  for (const char* d : {"auto", "cuda"}) {
    for (int rank = 0; rank < 5; ++rank) {
      const DeviceChoice c = resolve_device(d, "fp32", "auto", rank, 2);
      EXPECT_TRUE(c.cuda);
      EXPECT_EQ(c.index, rank % 2);
      EXPECT_EQ(c.name(), "cuda:" + std::to_string(rank % 2));
      EXPECT_TRUE(c.torch_kernels());  // CUDA runs the device path
      EXPECT_NE(c.why.find("local rank " + std::to_string(rank)), std::string::npos) << c.why;
    }
  }
  EXPECT_EQ(resolve_device("cuda:1", "bf16", "torch", 0, 2).name(), "cuda:1");
  EXPECT_EQ(resolve_device("cuda:1", "fp16", "auto", 0, 2).precision, Precision::kFp16);
}

TEST(DeviceTest, cpu_takes_kernels_and_only_fp32) {
  EXPECT_EQ(resolve_device("cpu", "fp32", "blas", 0, 4).name(), "cpu");
  EXPECT_FALSE(resolve_device("cpu", "fp32", "blas", 0, 4).torch_kernels());
  EXPECT_TRUE(resolve_device("cpu", "fp32", "torch", 0, 0).torch_kernels());  // the test switch
  for (const char* p : {"fp16", "bf16"}) {
    const std::string e = error_of("cpu", p, "auto", 0, 0);
    EXPECT_NE(e.find("--model_precision=" + std::string(p)), std::string::npos) << e;
    EXPECT_NE(e.find("fp32"), std::string::npos) << e;
    EXPECT_NE(error_of("auto", p, "auto", 0, 0).find("--model_precision"), std::string::npos);  // auto fell to cpu
  }
}

TEST(DeviceTest, impossible_or_bad_values_name_their_flag) {
  EXPECT_NE(error_of("cuda", "fp32", "auto", 0, 0).find("--device=cuda"), std::string::npos);
  EXPECT_NE(error_of("cuda:2", "fp32", "auto", 0, 2).find("--device=cuda:2"), std::string::npos);
  EXPECT_NE(error_of("cuda:0", "fp32", "auto", 0, 0).find("--device=cuda:0"), std::string::npos);
  for (const char* d : {"gpu", "cuda:", "cuda:x", "CPU", ""})
    EXPECT_NE(error_of(d, "fp32", "auto", 0, 1).find("--device="), std::string::npos) << d;
  EXPECT_NE(error_of("cpu", "fp64", "auto", 0, 0).find("--model_precision=fp64"), std::string::npos);
  EXPECT_NE(error_of("cpu", "fp32", "cublas", 0, 0).find("--model_kernels=cublas"), std::string::npos);
  EXPECT_NE(error_of("cuda:0", "fp32", "blas", 0, 1).find("--model_kernels=blas"), std::string::npos);
}
