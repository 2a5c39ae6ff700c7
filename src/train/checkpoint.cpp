#include "excel/train/checkpoint.h"

#include <torch/torch.h>

#include <filesystem>
#include <map>

#include "excel/common/errors.h"
#include "excel/common/h5.h"
#include "excel/model/heads.h"
#include "excel/train/optimizer.h"

namespace excel::train {

void save_checkpoint(const std::string& path, const model::Heads& heads, PolyWarmupAdamW& opt,
                     const CheckpointMeta& meta) {
  const std::string tmp = path + ".tmp";
  {
    h5::File f = h5::File::create(tmp);
    const auto& names = heads.names();
    for (size_t i = 0; i < names.size(); ++i) {
      f.write("params/" + names[i], heads.param(names[i]).detach());
      f.write("adam/exp_avg/" + names[i], opt.exp_avg()[i]);
      f.write("adam/exp_avg_sq/" + names[i], opt.exp_avg_sq()[i]);
    }
    f.set_attr("format", std::string("excel-train-checkpoint-v1"));
    f.set_attr("next_iteration", meta.next_iteration);
    f.set_attr("optimizer_steps", opt.steps_taken());
    f.set_attr("seed", static_cast<int64_t>(meta.seed));
    f.set_attr("batch", meta.batch);
  }
  std::filesystem::rename(tmp, path);
}

namespace {
h5::File open_checkpoint(const std::string& path) {
  if (!std::filesystem::is_regular_file(path)) throw InputError(path + ": checkpoint not found");
  h5::File f = h5::File::open(path);
  if (!f.has_attr("format") || f.attr_string("format") != "excel-train-checkpoint-v1")
    throw FormatError(path + ": not an ExCEL training checkpoint (format attribute missing or different)");
  return f;
}

void read_params(const h5::File& f, const std::string& path, model::Heads& heads) {
  std::map<std::string, at::Tensor> params;
  for (const auto& n : heads.names()) {
    if (!f.exists("params/" + n)) throw FormatError(path + ": missing tensor 'params/" + n + "'");
    params[n] = f.read("params/" + n);
  }
  heads.load(params, path);
}
}  // namespace

model::HeadsConfig heads_config_from_checkpoint(const std::string& path, model::HeadsConfig base) {
  h5::File f = open_checkpoint(path);
  const std::string pred = "params/decoder.linear_pred.weight";
  if (!f.exists(pred)) throw FormatError(path + ": missing tensor '" + pred + "'");
  const std::vector<int64_t> s = f.shape(pred);  // [K, dim, 1, 1]
  if (s.size() != 4) throw FormatError(path + ": '" + pred + "' is not 4-D");
  base.num_classes = s[0];
  base.dim = s[1];
  int64_t layers = 0;
  while (f.exists("params/decoder.transformer.resblocks." + std::to_string(layers) + ".ln_1.weight")) ++layers;
  if (layers > 0) base.decoder_layers = layers;
  return base;
}

void load_heads(const std::string& path, model::Heads& heads) {
  h5::File f = open_checkpoint(path);
  read_params(f, path, heads);
}

CheckpointMeta load_checkpoint(const std::string& path, model::Heads& heads, PolyWarmupAdamW& opt) {
  h5::File f = open_checkpoint(path);
  read_params(f, path, heads);
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
