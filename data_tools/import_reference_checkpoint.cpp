// Imports the adapter and decoder weights of a checkpoint saved by the authors' Python code
// (torch.save of the model state dict, keys with or without "module.") into this project's
// training-checkpoint format (HDF5), for evaluation or fine-tuning. The head sizes are read
// from the tensors; CLIP keys in the file are ignored. AdamW moments start at zero.
#include <gflags/gflags.h>
#include <glog/logging.h>
#include <torch/torch.h>

#include "excel/common/errors.h"
#include "excel/common/logging.h"
#include "excel/common/tool_flags.h"
#include "excel/model/clip_checkpoint.h"
#include "excel/model/heads.h"
#include "excel/train/checkpoint.h"
#include "excel/train/optimizer.h"

DEFINE_string(input, "", "the reference's checkpoint (.pth, torch.save zip format)");
EXCEL_FLAG_RULE(input, "a .pth file (required)", !FLAGS_input.empty());
DEFINE_string(output, "", "output training checkpoint (.h5)");
EXCEL_FLAG_RULE(output, "an .h5 path (required)", !FLAGS_output.empty());
DEFINE_int32(model_decoder_heads, 8, "decoder attention heads (not recoverable from shapes)");
EXCEL_FLAG_RULE(model_decoder_heads, ">= 1", FLAGS_model_decoder_heads >= 1);
DEFINE_int64(iteration, 0, "iteration to record as reached");
EXCEL_FLAG_RULE(iteration, ">= 0", FLAGS_iteration >= 0);

int main(int argc, char** argv) {
  excel::parse_tool_flags(&argc, &argv,
                          "Imports the adapter and decoder weights of a checkpoint saved by the authors' Python code "
                          "(torch.save of the model state dict, keys with or without \"module.\") into this project's "
                          "training-checkpoint format (HDF5), for evaluation or fine-tuning. The head sizes are read "
                          "from the tensors; CLIP keys in the file are ignored. AdamW moments start at zero.");
  excel::init_logging(argv[0]);
  try {
    auto t = excel::model::read_torch_state_dict(FLAGS_input);
    auto need = [&](const std::string& k) -> const at::Tensor& {
      auto it = t.find(k);
      if (it == t.end())
        throw excel::FormatError(FLAGS_input + ": missing tensor '" + k + "' (not an ExCEL checkpoint?)");
      return it->second;
    };
    excel::model::HeadsConfig c;
    c.dim = need("decoder_fts_fuse.linear_fuse.weight").size(0);
    c.in_width = need("decoder_fts_fuse.linears_modulelist.0.proj.weight").size(1);
    c.num_layers = 0;
    while (t.count("decoder_fts_fuse.linears_modulelist." + std::to_string(c.num_layers) + ".proj.weight"))
      ++c.num_layers;
    c.decoder_layers = 0;
    while (t.count("decoder.transformer.resblocks." + std::to_string(c.decoder_layers) + ".ln_1.weight"))
      ++c.decoder_layers;
    c.decoder_heads = FLAGS_model_decoder_heads;
    c.num_classes = need("decoder.linear_pred.weight").size(0);
    excel::model::Heads heads(c, 0);
    heads.load(t, FLAGS_input);
    excel::train::PolyWarmupAdamW opt(heads.parameters(), excel::train::OptimizerConfig());
    opt.set_steps_taken(FLAGS_iteration);
    excel::train::save_checkpoint(FLAGS_output, heads, opt, {FLAGS_iteration, 0, 0});
    LOG(INFO) << "imported " << heads.names().size() << " tensors (" << heads.num_parameters()
              << " parameters; adapter " << c.num_layers << "x" << c.in_width << "->" << c.dim << ", decoder "
              << c.decoder_layers << " layers, " << c.num_classes << " classes) into " << FLAGS_output;
  } catch (const std::exception& e) {
    excel::log_error_and_flush(std::string("import_reference_checkpoint: error: ") + e.what());
    return 1;
  }
  return 0;
}
