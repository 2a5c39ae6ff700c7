#include "excel/data/voc_layout_dataset.h"

#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "excel/common/errors.h"
#include "excel/common/random.h"
#include "excel/data/image_io.h"
#include "excel/data/pillow_resize.h"
#include "excel/data/pixel_norm.h"
#include "excel/data/synthetic_voc.h"

namespace fs = std::filesystem;

namespace excel::data {
namespace {

// The augmentation stream of one (seed, sample, view).
SplitMix64 augmentation_rng(uint64_t seed, uint64_t sample, uint64_t view) {
  return SplitMix64(seed * 0x9E3779B97F4A7C15ULL ^ (sample + 1) * 0xC2B2AE3D27D4EB4FULL ^
                    (view + 7) * 0x165667B19E3779F9ULL);
}

}  // namespace

VocLayoutDataset::VocLayoutDataset(const DatasetOptions& opt) : opt_(opt) {
  std::string list = opt.split;
  if (!fs::is_regular_file(list)) list = opt.root + "/ImageSets/Segmentation/" + opt.split + ".txt";
  std::ifstream in(list);
  if (!in) throw InputError(list + ": list file not found (data root " + opt.root + ")");
  std::string id;
  while (in >> id) {
    for (unsigned char c : id)
      if (c < 0x20 || c == 0x7f)
        throw InputError(list + ": entry " + std::to_string(ids_.size() + 1) +
                         " holds a control character (not a list of image ids?)");
    ids_.push_back(id);
  }
  if (ids_.empty()) throw InputError(list + ": list is empty");
  mask_dir_ = opt.root + "/SegmentationClassAug";
  if (!fs::is_directory(mask_dir_)) mask_dir_ = opt.root + "/SegmentationClass";
  if (!opt.labels_file.empty()) {
    std::map<std::string, std::vector<float>> by_id;
    for (auto& kv : read_cls_labels(opt.labels_file, static_cast<int>(opt.num_classes)))
      by_id[kv.first] = std::vector<float>(kv.second.begin(), kv.second.end());
    for (const auto& i : ids_) {
      auto it = by_id.find(i);
      if (it == by_id.end())
        throw InputError(opt.labels_file + ": no labels for image '" + i + "' (listed in " + list + ")");
      labels_.push_back(it->second);
    }
  }
}

std::string VocLayoutDataset::image_path(size_t i) const {
  if (opt_.dataset == "coco") {
    const std::string sub = opt_.split.find("val") != std::string::npos ? "val" : "train";
    return opt_.root + "/JPEGImages/" + sub + "/" + ids_[i] + ".jpg";
  }
  return opt_.root + "/JPEGImages/" + ids_[i] + ".jpg";
}

std::string VocLayoutDataset::mask_path(size_t i) const {
  if (opt_.dataset == "coco") {
    const bool val = opt_.split.find("val") != std::string::npos;
    const std::string& id = ids_[i];
    const size_t prefix = val ? 13 : 15;  // COCO_val2014_ / COCO_train2014_
    return opt_.root + "/SegmentationClass/" + (val ? "val/" : "train/") +
           (id.size() > prefix ? id.substr(prefix) : id) + ".png";
  }
  return mask_dir_ + "/" + ids_[i] + ".png";
}

at::Tensor VocLayoutDataset::class_labels(size_t i) const {
  if (!labels_.empty()) return torch::tensor(labels_[i]);
  at::Tensor gt = read_label_png(mask_path(i)).to(torch::kLong).flatten();
  at::Tensor present = torch::zeros({opt_.num_classes});
  at::Tensor vals = std::get<0>(at::_unique(gt));
  for (int64_t k = 0; k < vals.size(0); ++k) {
    int64_t v = vals[k].item<int64_t>();
    if (v >= 1 && v <= opt_.num_classes) present[v - 1] = 1;
  }
  return present;
}

TrainSample VocLayoutDataset::train_sample(size_t i, uint64_t seed, uint64_t view, const AugmentOptions& aug) const {
  TrainSample s;
  s.id = ids_[i];
  at::Tensor img = read_rgb(image_path(i));
  at::Tensor gt = fs::is_regular_file(mask_path(i)) ? read_label_png(mask_path(i)) : at::Tensor();
  s.cls = class_labels(i);
  SplitMix64 rng = augmentation_rng(seed, i, view);
  // 1. random rescale (Pillow bilinear image, nearest label)
  const double ratio = aug.scale_min + (aug.scale_max - aug.scale_min) * rng.uniform();
  const int64_t w = static_cast<int64_t>(ratio * img.size(1)), h = static_cast<int64_t>(ratio * img.size(0));
  img = pillow_resize_bilinear(img, h, w);
  if (gt.defined()) gt = pillow_resize_nearest(gt, h, w);
  // 2. horizontal flip
  if (rng.uniform() > 0.5) {
    img = img.flip({1}).contiguous();
    if (gt.defined()) gt = gt.flip({1}).contiguous();
  }
  // 3. random crop with zero padding
  const int64_t S = aug.crop, Hp = std::max(S, h), Wp = std::max(S, w);
  const int64_t hpad = rng.below(Hp - h + 1), wpad = rng.below(Wp - w + 1);
  at::Tensor canvas = torch::zeros({Hp, Wp, 3}, torch::kByte);
  canvas.slice(0, hpad, hpad + h).slice(1, wpad, wpad + w).copy_(img);
  at::Tensor lab_canvas = torch::full({Hp, Wp}, 255, torch::kByte);
  if (gt.defined()) lab_canvas.slice(0, hpad, hpad + h).slice(1, wpad, wpad + w).copy_(gt);
  int64_t y = 0, x = 0;
  for (int tries = 0; tries < 10; ++tries) {
    y = rng.below(Hp - S + 1);
    x = rng.below(Wp - S + 1);
    if (!aug.gt_guided_crop || !gt.defined()) break;
    at::Tensor patch = gt.slice(0, y, std::min(y + S, h)).slice(1, x, std::min(x + S, w)).flatten().to(torch::kLong);
    patch = patch.masked_select(patch != 255);
    if (patch.numel() == 0) continue;
    at::Tensor counts = torch::bincount(patch);
    if (counts.max().item<int64_t>() < 0.75 * static_cast<double>(patch.numel())) break;
  }
  at::Tensor crop = canvas.slice(0, y, y + S).slice(1, x, x + S);
  s.label = lab_canvas.slice(0, y, y + S).slice(1, x, x + S).contiguous();
  s.image = data::normalize_rgb(crop.unsqueeze(0)).squeeze(0);
  return s;
}

ValSample VocLayoutDataset::val_sample(size_t i) const {
  ValSample s;
  s.id = ids_[i];
  s.rgb = read_rgb(image_path(i));
  s.image = data::normalize_rgb(s.rgb.unsqueeze(0)).squeeze(0);
  s.gt = read_label_png(mask_path(i));
  if (s.gt.size(0) != s.rgb.size(0) || s.gt.size(1) != s.rgb.size(1))
    throw InputError(mask_path(i) + ": mask size differs from its image " + image_path(i));
  s.cls = class_labels(i);
  return s;
}

}  // namespace excel::data
