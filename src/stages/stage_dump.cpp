#include "excel/stages/stage_dump.h"

#include <glog/logging.h>
#include <torch/torch.h>

#include <filesystem>

#include "excel/build_config.h"
#include "excel/common/atomic_file.h"
#include "excel/common/errors.h"
#include "excel/common/h5.h"
#include "excel/data/pixel_norm.h"
#include "excel/model/cam.h"
#include "excel/model/clip_checkpoint.h"
#include "excel/model/clip_text.h"
#include "excel/model/clip_vision.h"
#include "excel/model/placement.h"
#include "excel/model/prompts.h"
#include "excel/model/tokenizer.h"
#include "excel/model/tse.h"
#include "stage_internal.h"

namespace fs = std::filesystem;

namespace excel::stages {

std::string default_shared_dir() {
  if (const char* env = std::getenv("EXCEL_SHARED_DIR")) return env;
  for (const fs::path& p : {fs::path(EXCEL_SOURCE_DIR) / ".." / "shared", fs::current_path() / ".." / "shared",
                            fs::current_path() / "shared"}) {
    if (fs::is_directory(p / "data")) return fs::weakly_canonical(p).string();
  }
  return "";
}

namespace {

// The merge list when none is given: the standard places (model::default_bpe_path), else the
// fixture's own vocabulary, data/text/ in a folder above the fixture file (its data folder).
std::string fixture_bpe_path(const std::string& fixture) {
  const std::string standard = model::default_bpe_path();
  if (fs::is_regular_file(standard)) return standard;
  for (fs::path dir = fs::absolute(fixture).parent_path(); !dir.empty() && dir != dir.parent_path();
       dir = dir.parent_path()) {
    const fs::path p = dir / "data" / "text" / "bpe_simple_vocab_16e6.txt.gz";
    if (fs::is_regular_file(p)) return p.string();
  }
  return standard;
}

// The fixture's reference value of an earlier stage when present, else our own; on the model's device.
at::Tensor reference_or(const h5::File& in, const std::string& name, const at::Tensor& own) {
  return (in.exists(name) ? in.read(name) : own).to(model::device());
}

}  // namespace

std::vector<std::string> dump_stages(const DumpOptions& opt) {
  h5::File in = h5::File::open(opt.input);
  std::string ckpt = opt.checkpoint;
  if (ckpt.empty()) ckpt = (fs::path(opt.input).parent_path() / in.attr_string("checkpoint_jit")).string();
  model::ClipWeights weights = model::load_clip_checkpoint(ckpt);
  model::place_clip_weights(weights);  // the vision tower to the device (text stays on the CPU)
  LOG(INFO) << "checkpoint " << ckpt << ": " << weights.config.describe() << " on " << model::placement().name();

  const std::string dataset = in.has_attr("dataset") ? in.attr_string("dataset") : "voc";
  const model::DatasetText& dt = model::dataset_text(dataset);
  const int64_t C = static_cast<int64_t>(dt.class_names.size());
  const double keep = in.has_attr("tse_topk_fraction") ? in.attr_double("tse_topk_fraction") : 0.9;

  std::vector<std::string> groups;
  atomic_replace(opt.output, [&](const std::string& tmp) {
    {
      h5::File out = h5::File::create(tmp);
      // ---- text (§2) ----
      model::Tokenizer tok(opt.bpe_path.empty() ? fixture_bpe_path(opt.input) : opt.bpe_path);
      model::ClipText text(weights);
      const std::vector<std::string> names = model::all_text_names(dt);
      std::vector<std::string> prompts;
      for (const auto& n : names) prompts.push_back(model::make_prompt(n));
      out.write_strings("text/prompts", names);
      out.write("text/token_ids", tok.tokenize(prompts, weights.config.context_length));
      if (in.exists("text/extra_strings")) {
        auto extra = in.read_strings("text/extra_strings");
        out.write_strings("text/extra_strings", extra);
        out.write("text/extra_token_ids", tok.tokenize(extra, weights.config.context_length, /*truncate=*/true));
      }
      at::Tensor class_features = text.encode_prompts(names, tok);
      out.write("text/class_features", class_features);
      model::AttributeBank bank = model::load_attribute_bank(opt.input, "inputs/bank");
      at::Tensor tse = model::text_semantic_enrichment(  // CPU code (k-means), once
          reference_or(in, "text/class_features", class_features).cpu(), C, bank, keep);
      out.write("text/tse_features", tse);
      groups.push_back("text");

      // ---- vision (§1) ----
      at::Tensor rgb = in.read("inputs/images_rgb");
      at::Tensor normalized = data::normalize_rgb(rgb);
      out.write("vision/normalized", normalized);
      const int64_t crop = in.has_attr("crop") ? in.attr_int("crop") : rgb.size(1);
      model::ClipVision vision(weights, crop / weights.config.patch);  // "train" mode table (§1.3)
      model::VisionOutputs vo = vision.forward(reference_or(in, "vision/normalized", normalized));
      out.write("vision/features", vo.features);
      out.write("vision/attn_all", vo.attn_all);
      out.write("vision/feats_all", vo.feats_all);
      groups.push_back("vision");

      // ---- static CAM (§3) ----
      at::Tensor cam = model::surgery_cam(reference_or(in, "vision/features", vo.features),
                                          reference_or(in, "text/tse_features", tse), C);
      out.write("cam/static", cam);
      groups.push_back("cam");

      // ---- training stages (§4-§8) ----
      if (in.exists("train") && in.exists("inputs/heads")) {
        model::ClipVision inference_vision(weights);
        dump_train_stages(in, out, {&vision, &inference_vision, &dt, C});
        groups.push_back("train");
      }
    }
  });
  return groups;
}

}  // namespace excel::stages
