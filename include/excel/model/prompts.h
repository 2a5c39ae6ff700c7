// Class names, background categories and the prompt template of the reference (§2.3).
#pragma once
#include <string>
#include <vector>

namespace excel::model {

struct DatasetText {
  std::string name;                      // "voc" or "coco"
  std::vector<std::string> class_names;  // foreground names as used in prompts (CAM classes)
  std::vector<std::string> background;   // background categories (redundancy removal only)
  std::vector<std::string> table_names;  // K = 1 + C names for metric tables, [0] = background
  double train_box_threshold;            // caa_thre in training (§4.9)
};

// "voc" / "pascal_voc" or "coco" / "ms_coco"; throws ConfigError otherwise.
const DatasetText& dataset_text(const std::string& dataset);

inline constexpr const char* kPromptTemplate = "a clean origami {}.";

// The prompt for one name: "a clean origami <name>."
std::string make_prompt(const std::string& name);

// Names in text order: foreground then background (n_t = C + n_bg).
std::vector<std::string> all_text_names(const DatasetText& d);

}  // namespace excel::model
