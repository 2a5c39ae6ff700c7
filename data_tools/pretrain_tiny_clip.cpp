// Contrastive (CLIP-style) pre-training of a small CLIP on the synthetic world, written in OpenAI's
// layout (clip.jit.pt, clip.state_dict.pt) for every tool that loads a CLIP (docs/tiny_clip.md).
#include <gflags/gflags.h>
#include <glog/logging.h>

#include "excel/common/logging.h"
#include "excel/common/process.h"
#include "excel/common/tool_flags.h"
#include "excel/data/synthetic_voc.h"
#include "excel/model/random_clip.h"
#include "excel/train/clip_pretrain.h"

DEFINE_string(output_dir, "demo_out/clip", "folder for clip.jit.pt, clip.state_dict.pt and pretrain_state.pt");
EXCEL_FLAG_RULE(output_dir, "a folder (not empty)", !FLAGS_output_dir.empty());
DEFINE_string(bank_descriptions, "", "the world's descriptions JSON (class name -> sentences; make_synthetic_voc)");
EXCEL_FLAG_RULE(bank_descriptions, "a JSON file (required)", !FLAGS_bank_descriptions.empty());
DEFINE_string(model_bpe, "", "merge list whose vocabulary the text tower gets (build_bpe_vocab)");
EXCEL_FLAG_RULE(model_bpe, "a merge list (required)", !FLAGS_model_bpe.empty());
DEFINE_int32(model_vision_width, 64, "vision width (heads = width/64)");
EXCEL_FLAG_RULE(model_vision_width, "a positive multiple of 64",
                FLAGS_model_vision_width >= 64 && FLAGS_model_vision_width % 64 == 0);
DEFINE_int32(model_vision_layers, 6, "vision blocks (surgery on the last 5)");
EXCEL_FLAG_RULE(model_vision_layers, ">= 6", FLAGS_model_vision_layers >= 6);
DEFINE_int32(model_patch, 16, "patch size");
EXCEL_FLAG_RULE(model_patch, ">= 1", FLAGS_model_patch >= 1);
DEFINE_int32(model_crop, 128, "side of the training images (the stored positional grid is crop / patch)");
EXCEL_FLAG_RULE(model_crop, ">= 32", FLAGS_model_crop >= 32);
DEFINE_int32(model_embed_dim, 64, "joint embedding size");
EXCEL_FLAG_RULE(model_embed_dim, ">= 1", FLAGS_model_embed_dim >= 1);
DEFINE_int32(model_text_width, 64, "text width (heads = width/64)");
EXCEL_FLAG_RULE(model_text_width, "a positive multiple of 64",
                FLAGS_model_text_width >= 64 && FLAGS_model_text_width % 64 == 0);
DEFINE_int32(model_text_layers, 2, "text blocks");
EXCEL_FLAG_RULE(model_text_layers, ">= 1", FLAGS_model_text_layers >= 1);
DEFINE_int32(model_seed, 0, "seed of the initial weights and of every draw");
EXCEL_FLAG_RULE(model_seed, ">= 0", FLAGS_model_seed >= 0);
DEFINE_bool(model_fp32, false, "store fp32 instead of fp16");
DEFINE_int32(data_seed, 1000, "generator seed of the training images (not the world's own seed: val stays unseen)");
EXCEL_FLAG_RULE(data_seed, ">= 0", FLAGS_data_seed >= 0);
DEFINE_int32(data_num_images, 2048, "training images drawn once (each step samples its batch from them)");
EXCEL_FLAG_RULE(data_num_images, ">= 2", FLAGS_data_num_images >= 2);
DEFINE_string(data_style, "small", "object layout of the training images, as make_synthetic_voc --data_style");
EXCEL_FLAG_RULE(data_style, "small or large", excel::flag_one_of(FLAGS_data_style, {"small", "large"}));
DEFINE_int32(train_max_iters, 300, "optimizer steps");
EXCEL_FLAG_RULE(train_max_iters, ">= 1", FLAGS_train_max_iters >= 1);
DEFINE_int32(train_batch, 32, "images (and captions) per step");
EXCEL_FLAG_RULE(train_batch, ">= 2", FLAGS_train_batch >= 2);
DEFINE_double(train_lr, 2e-3, "AdamW peak learning rate (cosine decay to 5 % after warm-up)");
EXCEL_FLAG_RULE(train_lr, "> 0", FLAGS_train_lr > 0);
DEFINE_int32(train_warmup_iters, 20, "linear warm-up steps");
EXCEL_FLAG_RULE(train_warmup_iters, ">= 1", FLAGS_train_warmup_iters >= 1);
DEFINE_double(train_weight_decay, 0.1, "AdamW weight decay of the weight matrices");
EXCEL_FLAG_RULE(train_weight_decay, ">= 0", FLAGS_train_weight_decay >= 0);
DEFINE_double(train_dense_weight, 1.0, "weight of the pooled-patch InfoNCE term (0: class token only)");
EXCEL_FLAG_RULE(train_dense_weight, ">= 0", FLAGS_train_dense_weight >= 0);
DEFINE_string(train_dense_pool, "max", "patch pooling of that term: mean, max, or lse (soft maximum over patches)");
EXCEL_FLAG_RULE(train_dense_pool, "mean, max or lse",
                excel::flag_one_of(FLAGS_train_dense_pool, {"mean", "max", "lse"}));
DEFINE_string(train_dense_captions, "class",
              "captions of that term: image (each image's own) or class (one per class of the world, multi-label)");
EXCEL_FLAG_RULE(train_dense_captions, "image or class",
                excel::flag_one_of(FLAGS_train_dense_captions, {"image", "class"}));
DEFINE_int32(train_log_every, 20, "log loss, accuracy and ETA every N steps");
EXCEL_FLAG_RULE(train_log_every, ">= 1", FLAGS_train_log_every >= 1);
DEFINE_int32(ckpt_every, 100, "write the resumable state every N steps");
EXCEL_FLAG_RULE(ckpt_every, ">= 1", FLAGS_ckpt_every >= 1);
DEFINE_bool(ckpt_resume, true, "continue from <output_dir>/pretrain_state.pt when it exists");
DEFINE_int32(threads, 1, "intra-op threads (0: the cores available; the tiny model's ops are too small to split well)");
EXCEL_FLAG_RULE(threads, ">= 0", FLAGS_threads >= 0);

int main(int argc, char** argv) {
  excel::parse_tool_flags(&argc, &argv,
                          "usage: pretrain_tiny_clip --bank_descriptions=voc/descriptions.json --model_bpe=bpe.txt.gz "
                          "--output_dir=DIR\nContrastive (CLIP-style) pre-training of a small CLIP on the synthetic "
                          "world, written in OpenAI's layout (docs/tiny_clip.md).");
  excel::init_logging(argv[0]);
  try {
    const int threads = excel::configure_process(FLAGS_threads);
    excel::train::ClipPretrainOptions o;
    o.config = excel::model::vit_b16_config();
    o.config.vision_width = FLAGS_model_vision_width;
    o.config.vision_heads = FLAGS_model_vision_width / 64;
    o.config.vision_layers = FLAGS_model_vision_layers;
    o.config.patch = FLAGS_model_patch;
    o.config.pos_grid = FLAGS_model_crop / FLAGS_model_patch;
    o.config.embed_dim = FLAGS_model_embed_dim;
    o.config.text_width = FLAGS_model_text_width;
    o.config.text_heads = FLAGS_model_text_width / 64;
    o.config.text_layers = FLAGS_model_text_layers;
    o.bpe_path = FLAGS_model_bpe;
    o.descriptions_path = FLAGS_bank_descriptions;
    o.output_dir = FLAGS_output_dir;
    o.steps = FLAGS_train_max_iters;
    o.batch = FLAGS_train_batch;
    o.warmup = FLAGS_train_warmup_iters;
    o.log_every = FLAGS_train_log_every;
    o.ckpt_every = FLAGS_ckpt_every;
    o.lr = FLAGS_train_lr;
    o.weight_decay = FLAGS_train_weight_decay;
    o.dense_weight = FLAGS_train_dense_weight;
    o.dense_pool = FLAGS_train_dense_pool;
    o.dense_captions = FLAGS_train_dense_captions;
    o.crop = FLAGS_model_crop;
    o.pool = FLAGS_data_num_images;
    o.style = excel::data::synthetic_style(FLAGS_data_style);
    o.seed = static_cast<uint64_t>(FLAGS_model_seed);
    o.image_seed = static_cast<uint64_t>(FLAGS_data_seed);
    o.resume = FLAGS_ckpt_resume;
    o.fp32 = FLAGS_model_fp32;
    LOG(INFO) << "pre-training " << o.steps << " steps of " << o.batch << " images on " << threads << " threads";
    const auto r = excel::train::pretrain_clip(o);
    LOG(INFO) << "wrote " << o.output_dir << "/clip.jit.pt and clip.state_dict.pt: " << r.steps_run
              << " steps in this run, final loss " << r.final_loss << ", " << static_cast<int>(r.seconds) << " s";
  } catch (const std::exception& e) {
    excel::log_error_and_flush(std::string("pretrain_tiny_clip: error: ") + e.what());
    return 1;
  }
  return 0;
}
