// Writes a random CLIP checkpoint of chosen sizes in OpenAI's layout, in both file forms
// (TorchScript archive like ViT-B-16.pt, and a torch.save state dict), fp16 like the release.
#include <gflags/gflags.h>
#include <glog/logging.h>
#include <torch/torch.h>

#include <filesystem>
#include <iostream>

#include "excel/common/logging.h"
#include "excel/common/tool_flags.h"
#include "excel/model/checkpoint.h"
#include "excel/model/random_clip.h"

DEFINE_string(output_dir, "demo_out/clip", "folder for clip.jit.pt and clip.state_dict.pt");
DEFINE_bool(vit_b16, false, "use the ViT-B/16 sizes (overrides the size flags)");
DEFINE_int32(vision_width, 128, "vision width (multiple of 64; heads = width/64)");
DEFINE_int32(vision_layers, 12, "vision blocks (>= 6; surgery on the last 5)");
DEFINE_int32(patch, 16, "patch size");
DEFINE_int32(pos_grid, 14, "side of the stored positional table");
DEFINE_int32(embed_dim, 32, "joint embedding size");
DEFINE_int32(text_width, 64, "text width (multiple of 64)");
DEFINE_int32(text_layers, 2, "text blocks");
DEFINE_int32(seed, 0, "random seed");
DEFINE_bool(fp32, false, "store fp32 instead of fp16");

int main(int argc, char** argv) {
  excel::parse_tool_flags(&argc, &argv, "Writes a random CLIP checkpoint of chosen sizes in OpenAI's layout, in both file forms (TorchScript archive like ViT-B-16.pt, and a torch.save state dict), fp16 like the release.");
  excel::init_logging(argv[0]);
  try {
    excel::model::ClipConfig c = excel::model::vit_b16_config();
    if (!FLAGS_vit_b16) {
      c.vision_width = FLAGS_vision_width;
      c.vision_heads = FLAGS_vision_width / 64;
      c.vision_layers = FLAGS_vision_layers;
      c.patch = FLAGS_patch;
      c.pos_grid = FLAGS_pos_grid;
      c.embed_dim = FLAGS_embed_dim;
      c.text_width = FLAGS_text_width;
      c.text_heads = FLAGS_text_width / 64;
      c.text_layers = FLAGS_text_layers;
    }
    auto tensors = excel::model::random_clip_tensors(c, static_cast<uint64_t>(FLAGS_seed),
                                                     FLAGS_fp32 ? torch::kFloat : torch::kHalf);
    excel::model::infer_and_validate(tensors, "generated");
    std::filesystem::create_directories(FLAGS_output_dir);
    const std::string jit = FLAGS_output_dir + "/clip.jit.pt", sd = FLAGS_output_dir + "/clip.state_dict.pt";
    excel::model::save_clip_checkpoint(tensors, c, jit, excel::model::CheckpointFormat::kTorchScript);
    excel::model::save_clip_checkpoint(tensors, c, sd, excel::model::CheckpointFormat::kStateDict);
    LOG(INFO) << "wrote " << jit << " and " << sd << ": " << c.describe();
  } catch (const std::exception& e) {
    std::cerr << "make_random_clip: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
