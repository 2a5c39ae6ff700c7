#include "excel/train/checkpoint.h"

#include <torch/torch.h>

#include <filesystem>

#include "excel/common/atomic_file.h"
#include "excel/common/errors.h"
#include "excel/common/h5.h"
#include "excel/model/heads.h"
#include "excel/model/heads_file.h"
#include "excel/train/optimizer.h"

namespace excel::train {

void save_checkpoint(const std::string& path, const model::Heads& heads, PolyWarmupAdamW& opt,
                     const CheckpointMeta& meta) {
  atomic_replace(path, [&](const std::string& tmp) {
    {
      h5::File f = h5::File::create(tmp);
      model::write_heads_params(f, heads);
      const auto& names = heads.names();
      for (size_t i = 0; i < names.size(); ++i) {
        f.write("adam/exp_avg/" + names[i], opt.exp_avg()[i]);
        f.write("adam/exp_avg_sq/" + names[i], opt.exp_avg_sq()[i]);
      }
      f.set_attr("format", std::string(model::kTrainCheckpointFormat));
      f.set_attr("next_iteration", meta.next_iteration);
      f.set_attr("optimizer_steps", opt.steps_taken());
      f.set_attr("seed", static_cast<int64_t>(meta.seed));
      f.set_attr("batch", meta.batch);
      f.close();  // writes the checksum block
    }
  });
}

CheckpointMeta load_checkpoint(const std::string& path, model::Heads& heads, PolyWarmupAdamW& opt) {
  h5::File f = model::open_train_checkpoint(path);
  model::read_heads_params(f, path, heads);
  torch::NoGradGuard ng;
  const auto& names = heads.names();
  for (size_t i = 0; i < names.size(); ++i) {
    for (auto* pair : {&opt.exp_avg(), &opt.exp_avg_sq()}) {
      const std::string key = std::string(pair == &opt.exp_avg() ? "adam/exp_avg/" : "adam/exp_avg_sq/") + names[i];
      at::Tensor t = f.read(key);
      if (t.sizes() != (*pair)[i].sizes()) throw FormatError(path + ": tensor '" + key + "' has the wrong shape");
      (*pair)[i].copy_(t);
    }
  }
  opt.set_steps_taken(f.attr_int("optimizer_steps"));
  CheckpointMeta m;
  m.next_iteration = f.attr_int("next_iteration");
  m.seed = static_cast<uint64_t>(f.attr_int("seed"));
  m.batch = f.attr_int("batch");
  return m;
}

}  // namespace excel::train
