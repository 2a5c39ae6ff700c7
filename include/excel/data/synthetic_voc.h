// A synthetic data set in PASCAL VOC layout, made without downloads: each image holds 1-3
// (SyntheticStyle) objects of the 20 VOC classes, each class a distinct shape, colour and texture, on varied
// backgrounds, with exact masks. Deterministic for a seed (image i depends on (seed, i) only).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace excel::data {

// How objects sit in an image. "small" (the default): 1-3 objects of radius 1/8-1/4 of the shorter
// side that may overlap. "large" (VOC-like, the demo's): 1-2 objects of radius 0.2-0.35 of it (an
// object's visible part covers 14 % of the image on average, twice as much as in "small");
// backgrounds at half the colour spread of "small" (greyer), so they less often look like a class.
struct SyntheticStyle {
  double min_radius = 0.125, max_radius = 0.25;  // object radius, fraction of the shorter side
  int max_objects = 3;
  double background_spread = 1.0;  // background colours pulled toward their grey by this factor
};
SyntheticStyle synthetic_style(const std::string& name);  // "small" or "large"; ConfigError otherwise

struct SyntheticVocOptions {
  std::string root;  // output folder (VOC layout)
  int num_images = 40;
  int min_side = 200;  // image sides drawn uniformly in [min_side, max_side]
  int max_side = 400;
  double val_fraction = 0.25;  // last images go to val.txt
  uint64_t seed = 0;
  SyntheticStyle style = {};
};

struct SyntheticVocSummary {
  std::vector<std::string> train_ids, val_ids;
  std::vector<std::vector<int>> labels;  // per image (train then val), present class indices 0..19
};

// One image of the world in memory: image `index` of the data set made with `seed` (the same
// drawing make_synthetic_voc writes, before JPEG), sides drawn in [min_side, max_side]; with
// out_side > 0 resized to out_side x out_side (area for the image, nearest for the mask).
struct SyntheticImage {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;   // [height, width, 3]
  std::vector<uint8_t> mask;  // [height, width], 0 = background, c+1 = class c
  std::vector<int> classes;   // present class indices, ascending
};
SyntheticImage draw_synthetic_image(uint64_t seed, int index, int min_side, int max_side, int out_side = 0,
                                    const SyntheticStyle& style = {});

// Writes JPEGImages/*.jpg, SegmentationClassAug/*.png (0 = background, c+1 = class c),
// ImageSets/Segmentation/{train,train_aug,val}.txt and cls_labels.txt ("ID l0 ... l19").
SyntheticVocSummary make_synthetic_voc(const SyntheticVocOptions& opt);

// The world describes itself: per class (in class order), sentences about the shape, colour and
// texture it is drawn with, each starting like the reference's descriptions ("a clean origami
// <name>. ..."). class_names: the 20 VOC names as the prompts spell them. What the demo's
// attribute bank and text pre-training are built from.
std::vector<std::vector<std::string>> synthetic_class_descriptions(const std::vector<std::string>& class_names);

// Reads an image-level labels file, one line per image: "ID l0 ... l(C-1)" with 0/1 entries in
// class order (the format of cls_labels.txt above and of the reference data's VOC labels).
std::vector<std::pair<std::string, std::vector<int>>> read_cls_labels(const std::string& path, int num_classes);

}  // namespace excel::data
