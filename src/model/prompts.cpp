#include "excel/model/prompts.h"

#include "excel/common/errors.h"

namespace excel::model {
namespace {

const std::vector<std::string> kVocBackground = {
    "ground", "land", "grass",   "tree",     "building", "wall",   "sky",   "lake",  "water",
    "river",  "sea",  "railway", "railroad", "keyboard", "helmet", "cloud", "house", "mountain",
    "ocean",  "road", "rock",    "street",   "valley",   "bridge", "sign"};

std::vector<std::string> coco_background() {
  std::vector<std::string> out;
  for (const auto& n : kVocBackground)
    if (n != "keyboard" && n != "sign") out.push_back(n);
  return out;
}

DatasetText make_voc() {
  DatasetText d;
  d.name = "voc";
  d.class_names = {"aeroplane",   "bicycle", "bird avian", "boat",       "bottle",
                   "bus",         "car",     "cat",        "chair seat", "cow",
                   "diningtable", "dog",     "horse",      "motorbike",  "person with clothes,people,human",
                   "pottedplant", "sheep",   "sofa",       "train",      "tvmonitor screen"};
  d.background = kVocBackground;
  d.table_names = {"_background_", "aeroplane", "bicycle",     "bird",  "boat",        "bottle", "bus",
                   "car",          "cat",       "chair",       "cow",   "diningtable", "dog",    "horse",
                   "motorbike",    "person",    "pottedplant", "sheep", "sofa",        "train",  "tvmonitor"};
  d.train_box_threshold = 0.79;
  return d;
}

DatasetText make_coco() {
  DatasetText d;
  d.name = "coco";
  d.class_names = {"person with clothes,people,human",
                   "bicycle",
                   "car",
                   "motorbike",
                   "aeroplane",
                   "bus",
                   "train",
                   "truck",
                   "boat",
                   "traffic light",
                   "fire hydrant",
                   "stop sign",
                   "parking meter",
                   "bench",
                   "bird avian",
                   "cat",
                   "dog",
                   "horse",
                   "sheep",
                   "cow",
                   "elephant",
                   "bear",
                   "zebra",
                   "giraffe",
                   "backpack,bag",
                   "umbrella,parasol",
                   "handbag,purse",
                   "necktie",
                   "suitcase",
                   "frisbee",
                   "skis",
                   "sknowboard",
                   "sports ball",
                   "kite",
                   "baseball bat",
                   "glove",
                   "skateboard",
                   "surfboard",
                   "tennis racket",
                   "bottle",
                   "wine glass",
                   "cup",
                   "fork",
                   "knife",
                   "dessertspoon",
                   "bowl",
                   "banana",
                   "apple",
                   "sandwich",
                   "orange",
                   "broccoli",
                   "carrot",
                   "hot dog",
                   "pizza",
                   "donut",
                   "cake",
                   "chair seat",
                   "sofa",
                   "pottedplant",
                   "bed",
                   "diningtable",
                   "toilet",
                   "tvmonitor screen",
                   "laptop",
                   "mouse",
                   "remote control",
                   "keyboard",
                   "cell phone",
                   "microwave",
                   "oven",
                   "toaster",
                   "sink",
                   "refrigerator",
                   "book",
                   "clock",
                   "vase",
                   "scissors",
                   "teddy bear",
                   "hairdrier,blowdrier",
                   "toothbrush"};
  d.background = coco_background();
  d.table_names = {
      "_background_", "person",         "bicycle",    "car",           "motorcycle",    "airplane",     "bus",
      "train",        "truck",          "boat",       "traffic light", "fire hydrant",  "stop sign",    "parking meter",
      "bench",        "bird",           "cat",        "dog",           "horse",         "sheep",        "cow",
      "elephant",     "bear",           "zebra",      "giraffe",       "backpack",      "umbrella",     "handbag",
      "tie",          "suitcase",       "frisbee",    "skis",          "snowboard",     "sports ball",  "kite",
      "baseball bat", "baseball glove", "skateboard", "surfboard",     "tennis racket", "bottle",       "wine glass",
      "cup",          "fork",           "knife",      "spoon",         "bowl",          "banana",       "apple",
      "sandwich",     "orange",         "broccoli",   "carrot",        "hot dog",       "pizza",        "donut",
      "cake",         "chair",          "couch",      "potted plant",  "bed",           "dining table", "toilet",
      "tv",           "laptop",         "mouse",      "remote",        "keyboard",      "cell phone",   "microwave",
      "oven",         "toaster",        "sink",       "refrigerator",  "book",          "clock",        "vase",
      "scissors",     "teddy bear",     "hair drier", "toothbrush"};
  d.train_box_threshold = 0.88;
  return d;
}

}  // namespace

const DatasetText& dataset_text(const std::string& dataset) {
  static const DatasetText voc = make_voc();
  static const DatasetText coco = make_coco();
  if (dataset == "voc" || dataset == "pascal_voc") return voc;
  if (dataset == "coco" || dataset == "ms_coco") return coco;
  throw ConfigError("unknown dataset '" + dataset + "' (expected voc or coco)");
}

std::string make_prompt(const std::string& name) {
  return "a clean origami " + name + ".";
}

std::vector<std::string> all_text_names(const DatasetText& d) {
  std::vector<std::string> out = d.class_names;
  out.insert(out.end(), d.background.begin(), d.background.end());
  return out;
}

}  // namespace excel::model
