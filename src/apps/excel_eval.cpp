// mpirun -np N excel_eval --eval_mode=training_free|checkpoint --data_root=... --model_clip=...
//   --model_bank=... [--eval_checkpoint=run/checkpoint.h5] [--eval_crf] --output_dir=DIR
// Scores pseudo-labels (and, with a checkpoint, multi-scale segmentation) against the ground
// truth on every rank's share of the split; prints the §10.4 table and writes table.csv/json,
// palette masks, CAM overlays and picture strips under DIR.
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <iostream>
#include <sstream>

#include "app_common.h"
#include "excel/comm/communicator.h"
#include "excel/common/errors.h"
#include "excel/eval/evaluator.h"
#include "excel/model/prompts.h"

DEFINE_string(data_split, "val", "list to evaluate (train for ExCEL's training-free table, val, test)");
EXCEL_FLAG_RULE(data_split, "a list name or path (not empty)", !FLAGS_data_split.empty());
DEFINE_string(eval_mode, "training_free", "training_free (static CAMs) or checkpoint (trained adapter)");
EXCEL_FLAG_RULE(eval_mode, "training_free or checkpoint",
                excel::flag_one_of(FLAGS_eval_mode, {"training_free", "checkpoint"}));
DEFINE_string(eval_checkpoint, "", "excel_train checkpoint.h5 (checkpoint mode)");
EXCEL_FLAG_RULE(eval_checkpoint, "a checkpoint.h5 (required with --eval_mode=checkpoint)",
                FLAGS_eval_mode != "checkpoint" || !FLAGS_eval_checkpoint.empty());
DEFINE_string(output_dir, "eval", "output folder: table.csv, table.json, masks, overlays");
EXCEL_FLAG_RULE(output_dir, "a folder (not empty)", !FLAGS_output_dir.empty());
DEFINE_double(eval_tau, 0.79, "box threshold of the pseudo-labels");
EXCEL_FLAG_RULE(eval_tau, "in (0, 1)", FLAGS_eval_tau > 0 && FLAGS_eval_tau < 1);
DEFINE_string(eval_scales, "320,224,384,480", "segmentation input sides, the first is the base scale (§10.2)");
EXCEL_FLAG_RULE(eval_scales,
                "comma-separated integers >= 1, each a multiple of the checkpoint's patch (checked when it is loaded)",
                excel::flag_int_list(FLAGS_eval_scales, 1));
DEFINE_bool(eval_flip_base, false, "average flipped logits at the base scale too (COCO)");
DEFINE_bool(eval_crf, false, "dense CRF post-processing (§10.3)");
DEFINE_int32(eval_crf_iterations, 10, "CRF mean-field iterations");
EXCEL_FLAG_RULE(eval_crf_iterations, ">= 0", FLAGS_eval_crf_iterations >= 0);
DEFINE_int32(eval_save_masks, -1, "mask PNGs for the first N images of each rank (-1: all, 0: none)");
EXCEL_FLAG_RULE(eval_save_masks, ">= -1", FLAGS_eval_save_masks >= -1);
DEFINE_int32(eval_save_overlays, 8, "CAM overlays for the first N images of each rank (-1: all)");
EXCEL_FLAG_RULE(eval_save_overlays, ">= -1", FLAGS_eval_save_overlays >= -1);
DEFINE_int32(eval_strips, 0,
             "picture strips (image | CAM | pseudo-label | segmentation | ground truth) of the first N images of the "
             "split, under <output_dir>/strips/ (0: none)");
EXCEL_FLAG_RULE(eval_strips, ">= 0", FLAGS_eval_strips >= 0);
DEFINE_bool(eval_test_layout, false, "also write masks as results/VOC2012/Segmentation/comp6_test_cls/<id>.png");
DEFINE_int32(eval_limit, 0, "first N images of the split only (0: all)");
EXCEL_FLAG_RULE(eval_limit, ">= 0", FLAGS_eval_limit >= 0);
DEFINE_int32(model_decoder_heads, 8, "decoder attention heads of the checkpoint");
EXCEL_FLAG_RULE(model_decoder_heads, ">= 1", FLAGS_model_decoder_heads >= 1);
EXCEL_FLAG_RULE(model_clip, "a CLIP checkpoint (required)", !FLAGS_model_clip.empty());
EXCEL_FLAG_RULE(model_bank, "an attribute bank .h5 (required)", !FLAGS_model_bank.empty());

namespace {

std::vector<int64_t> parse_sides(const std::string& s) {
  std::vector<int64_t> out;
  std::stringstream in(s);
  std::string tok;
  while (std::getline(in, tok, ',')) {
    try {
      out.push_back(std::stoll(tok));
    } catch (const std::exception&) {
      throw excel::ConfigError("--eval_scales: '" + tok + "' is not an integer");
    }
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  return excel::apps::run_mpi_main(
      argc, argv, "excel_eval",
      "usage: mpirun -np N excel_eval --eval_mode=training_free|checkpoint --data_root=DIR --model_clip=CKPT\n"
      "         --model_bank=BANK.h5 [--eval_checkpoint=run/checkpoint.h5] [--eval_crf] --output_dir=DIR\n"
      "Scores pseudo-labels and segmentation against the ground truth; writes tables, masks and overlays.",
      [](int rank, int world) {
        excel::eval::EvalConfig c;
        excel::apps::apply_common_flags(c);
        c.split = FLAGS_data_split;
        c.mode = FLAGS_eval_mode;
        c.checkpoint = FLAGS_eval_checkpoint;
        c.decoder_heads = FLAGS_model_decoder_heads;
        c.tau = FLAGS_eval_tau;
        c.scales = parse_sides(FLAGS_eval_scales);
        c.flip_average_at_base = FLAGS_eval_flip_base;
        c.crf = FLAGS_eval_crf;
        c.crf_params.iterations = FLAGS_eval_crf_iterations;
        c.output_dir = FLAGS_output_dir;
        c.save_masks = FLAGS_eval_save_masks;
        c.save_overlays = FLAGS_eval_save_overlays;
        c.test_layout = FLAGS_eval_test_layout;
        c.limit = FLAGS_eval_limit;
        c.strips = FLAGS_eval_strips;
        excel::comm::MpiCommunicator comm;  // confusion matrices are tiny: MPI on every build
        excel::metrics::Metrics mx(excel::apps::metrics_options("eval", rank, world));
        excel::eval::EvalReport r = excel::eval::run_evaluation(c, &mx, &comm);
        LOG(INFO) << "evaluated " << r.images << " images (" << r.scored_images << " with ground truth) on " << world
                  << " rank(s); this rank took " << r.seconds << " s";
        if (rank == 0) {
          const auto& names = excel::model::dataset_text(c.dataset).table_names;
          for (const auto& t : r.tables) std::cout << excel::eval::format_table(t, names) << "\n";
          std::cout << "wrote " << c.output_dir << "/table.csv and table.json" << std::endl;
          if (c.strips > 0) std::cout << "picture strips in " << c.output_dir << "/strips/" << std::endl;
        }
        mx.finish();
      });
}
