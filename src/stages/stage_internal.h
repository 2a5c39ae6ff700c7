// Shared state of the stage dumps (private to src/stages).
#pragma once
#include <cstdint>

namespace excel {
namespace h5 {
class File;
}
namespace model {
class ClipVision;
struct DatasetText;
}  // namespace model

namespace stages {

struct StageContext {
  const model::ClipVision* vision;            // train-mode positional table (training stages)
  const model::ClipVision* inference_vision;  // stored table interpolated per scale (inference)
  const model::DatasetText* dataset;
  int64_t num_classes;
};

void dump_train_stages(const h5::File& in, h5::File& out, const StageContext& ctx);

}  // namespace stages
}  // namespace excel
