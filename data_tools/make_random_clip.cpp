// Writes a random CLIP checkpoint of chosen sizes in OpenAI's layout, in both file forms
// (TorchScript archive like ViT-B-16.pt, and a torch.save state dict), fp16 like the release.
#include <gflags/gflags.h>
#include <glog/logging.h>
#include <torch/torch.h>

#include <filesystem>

#include "excel/common/logging.h"
#include "excel/common/tool_flags.h"
#include "excel/model/clip_checkpoint.h"
#include "excel/model/random_clip.h"
#include "excel/model/tokenizer.h"

DEFINE_string(output_dir, "demo_out/clip", "folder for clip.jit.pt and clip.state_dict.pt");
EXCEL_FLAG_RULE(output_dir, "a folder (not empty)", !FLAGS_output_dir.empty());
DEFINE_bool(model_vit_b16, false, "use the ViT-B/16 sizes (overrides the size flags)");
DEFINE_int32(model_vision_width, 128, "vision width (heads = width/64)");
EXCEL_FLAG_RULE(model_vision_width, "a positive multiple of 64",
                FLAGS_model_vision_width >= 64 && FLAGS_model_vision_width % 64 == 0);
DEFINE_int32(model_vision_layers, 12, "vision blocks (surgery on the last 5)");
EXCEL_FLAG_RULE(model_vision_layers, ">= 6", FLAGS_model_vision_layers >= 6);
DEFINE_int32(model_patch, 16, "patch size");
EXCEL_FLAG_RULE(model_patch, ">= 1", FLAGS_model_patch >= 1);
DEFINE_int32(model_pos_grid, 14, "side of the stored positional table");
EXCEL_FLAG_RULE(model_pos_grid, ">= 1", FLAGS_model_pos_grid >= 1);
DEFINE_int32(model_embed_dim, 32, "joint embedding size");
EXCEL_FLAG_RULE(model_embed_dim, ">= 1", FLAGS_model_embed_dim >= 1);
DEFINE_int32(model_text_width, 64, "text width (heads = width/64)");
EXCEL_FLAG_RULE(model_text_width, "a positive multiple of 64",
                FLAGS_model_text_width >= 64 && FLAGS_model_text_width % 64 == 0);
DEFINE_int32(model_text_layers, 2, "text blocks");
EXCEL_FLAG_RULE(model_text_layers, ">= 1", FLAGS_model_text_layers >= 1);
DEFINE_int32(model_seed, 0, "seed of the random weights");
EXCEL_FLAG_RULE(model_seed, ">= 0", FLAGS_model_seed >= 0);
DEFINE_bool(model_fp32, false, "store fp32 instead of fp16");
DEFINE_string(model_bpe, "", "merge list whose vocabulary the text tower gets (empty: CLIP's 49,408 tokens)");

int main(int argc, char** argv) {
  excel::parse_tool_flags(
      &argc, &argv,
      "Writes a random CLIP checkpoint of chosen sizes in OpenAI's layout, in both file forms (TorchScript archive "
      "like ViT-B-16.pt, and a torch.save state dict), fp16 like the release.");
  excel::init_logging(argv[0]);
  try {
    excel::model::ClipConfig c = excel::model::vit_b16_config();
    if (!FLAGS_model_vit_b16) {
      c.vision_width = FLAGS_model_vision_width;
      c.vision_heads = FLAGS_model_vision_width / 64;
      c.vision_layers = FLAGS_model_vision_layers;
      c.patch = FLAGS_model_patch;
      c.pos_grid = FLAGS_model_pos_grid;
      c.embed_dim = FLAGS_model_embed_dim;
      c.text_width = FLAGS_model_text_width;
      c.text_heads = FLAGS_model_text_width / 64;
      c.text_layers = FLAGS_model_text_layers;
    }
    if (!FLAGS_model_bpe.empty()) c.vocab_size = excel::model::Tokenizer(FLAGS_model_bpe).vocab_size();
    auto tensors = excel::model::random_clip_tensors(c, static_cast<uint64_t>(FLAGS_model_seed),
                                                     FLAGS_model_fp32 ? torch::kFloat : torch::kHalf);
    excel::model::infer_and_validate(tensors, "generated");
    std::filesystem::create_directories(FLAGS_output_dir);
    const std::string jit = FLAGS_output_dir + "/clip.jit.pt", sd = FLAGS_output_dir + "/clip.state_dict.pt";
    excel::model::save_clip_checkpoint(tensors, c, jit, excel::model::CheckpointFormat::kTorchScript);
    excel::model::save_clip_checkpoint(tensors, c, sd, excel::model::CheckpointFormat::kStateDict);
    LOG(INFO) << "wrote " << jit << " and " << sd << ": " << c.describe();
  } catch (const std::exception& e) {
    excel::log_error_and_flush(std::string("make_random_clip: error: ") + e.what());
    return 1;
  }
  return 0;
}
