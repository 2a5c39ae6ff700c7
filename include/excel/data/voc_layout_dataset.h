// A segmentation data set in PASCAL VOC's folder layout (§9): VOC 2012 itself, MS COCO 2014
// converted to that layout, or the synthetic world. The reference's training augmentation (§9.3,
// resizes in data/pillow_resize.h) and validation preprocessing (§9.4). Augmentations are seeded per
// (seed, sample, view), so any rank can reproduce any sample's crop without coordination.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace excel::data {

struct DatasetOptions {
  std::string root;             // VOC: JPEGImages/, SegmentationClassAug/ (or SegmentationClass/)
  std::string split = "train";  // list file: <root>/ImageSets/Segmentation/<split>.txt, or a path
  std::string labels_file;      // "ID l0 .. l(C-1)" lines; empty: derived from the masks
  std::string dataset = "voc";  // voc | coco
  int64_t num_classes = 20;     // foreground classes
};

struct TrainSample {
  std::string id;
  at::Tensor image;  // [3,S,S] normalised float
  at::Tensor label;  // [S,S] uint8 GT crop (255 = ignore / padding); for inspection only
  at::Tensor cls;    // [C] float 0/1
};

struct ValSample {
  std::string id;
  at::Tensor rgb;    // [H,W,3] uint8
  at::Tensor image;  // [3,H,W] normalised float
  at::Tensor gt;     // [H,W] uint8
  at::Tensor cls;    // [C] float
};

struct AugmentOptions {
  int64_t crop = 320;
  double scale_min = 0.5, scale_max = 2.0;
  bool gt_guided_crop = true;  // VOC, quirk 22 (§12.22): accept crops whose dominant GT class < 75 %
};

class VocLayoutDataset {
 public:
  explicit VocLayoutDataset(const DatasetOptions& opt);
  size_t size() const { return ids_.size(); }
  const std::string& id(size_t i) const { return ids_[i]; }
  const std::vector<std::string>& ids() const { return ids_; }

  std::string image_path(size_t i) const;
  std::string mask_path(size_t i) const;
  at::Tensor class_labels(size_t i) const;  // [C] float

  // Training view `view` of sample i under `seed` (deterministic).
  TrainSample train_sample(size_t i, uint64_t seed, uint64_t view, const AugmentOptions& aug) const;
  ValSample val_sample(size_t i) const;
  int64_t skipped() const { return skipped_; }

 private:
  DatasetOptions opt_;
  std::vector<std::string> ids_;
  std::vector<std::vector<float>> labels_;
  std::string mask_dir_;
  mutable int64_t skipped_ = 0;
};

}  // namespace excel::data
