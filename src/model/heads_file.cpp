#include "excel/model/heads_file.h"

#include <torch/torch.h>

#include <filesystem>
#include <map>

#include "excel/common/errors.h"
#include "excel/common/h5.h"

namespace excel::model {

const char* const kTrainCheckpointFormat = "excel-train-checkpoint-v1";

void write_heads_params(h5::File& f, const Heads& heads) {
  for (const auto& n : heads.names()) f.write("params/" + n, heads.param(n).detach());
}

void read_heads_params(const h5::File& f, const std::string& path, Heads& heads) {
  std::map<std::string, at::Tensor> params;
  for (const auto& n : heads.names()) {
    if (!f.exists("params/" + n)) throw FormatError(path + ": missing tensor 'params/" + n + "'");
    params[n] = f.read("params/" + n);
  }
  heads.load(params, path);
}

h5::File open_train_checkpoint(const std::string& path) {
  if (!std::filesystem::is_regular_file(path)) throw InputError(path + ": checkpoint not found");
  h5::File f = h5::File::open(path, false, h5::Checksum::kRequired);
  if (!f.has_attr("format") || f.attr_string("format") != kTrainCheckpointFormat)
    throw FormatError(path + ": not an ExCEL training checkpoint (format attribute missing or different)");
  return f;
}

HeadsConfig heads_config_from_checkpoint(const std::string& path, HeadsConfig base) {
  h5::File f = open_train_checkpoint(path);
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

void load_heads(const std::string& path, Heads& heads) {
  h5::File f = open_train_checkpoint(path);
  read_heads_params(f, path, heads);
}

}  // namespace excel::model
