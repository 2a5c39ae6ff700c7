// Training checkpoints: heads parameters, AdamW moments, iteration; HDF5, written to a
// temporary name and renamed, so a crash never leaves a half-written checkpoint.
#pragma once
#include <cstdint>
#include <string>

#include "excel/model/heads.h"

namespace excel::train {

class PolyWarmupAdamW;

struct CheckpointMeta {
  int64_t next_iteration = 0;
  uint64_t seed = 0;
  int64_t batch = 0;
};

void save_checkpoint(const std::string& path, const model::Heads& heads, PolyWarmupAdamW& opt,
                     const CheckpointMeta& meta);
// Restores into heads/opt; throws FormatError naming the file and the problem.
CheckpointMeta load_checkpoint(const std::string& path, model::Heads& heads, PolyWarmupAdamW& opt);
// (Reading the weights alone, for evaluation: model/heads_file.h.)

}  // namespace excel::train
