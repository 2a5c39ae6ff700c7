// data_tools/make_cls_labels (the tool, run as a process): labels from a VOC-layout folder's masks
// equal the ones the synthetic world wrote; labels from COCO instance annotations follow the
// category order; annotations of an unlisted category are refused.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "excel/build_config.h"
#include "excel/data/synthetic_voc.h"
#include "test_util.h"

using namespace excel;

namespace {
const std::string kTool = std::string(EXCEL_BUILD_DIR) + "/data_tools/make_cls_labels";

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
}  // namespace

TEST(MakeClsLabelsTest, labels_from_masks_equal_the_synthetic_worlds_own) {
  const std::string dir = test::temp_dir("cls_labels_voc");
  data::make_synthetic_voc({dir + "/voc", 12, 96, 128, 0.25, 4});
  const std::string cmd =
      kTool + " --data_root=" + dir + "/voc --data_split=train,val --data_labels=" + dir + "/labels.txt 2>/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  EXPECT_EQ(slurp(dir + "/labels.txt"), slurp(dir + "/voc/cls_labels.txt"));
}

TEST(MakeClsLabelsTest, coco_annotations_give_labels_in_category_order) {
  const std::string dir = test::temp_dir("cls_labels_coco");
  // 80 categories with COCO's gaps in the ids (1..90); two images, one without instances.
  std::ostringstream cats;
  int written = 0;
  for (int id = 1; written < 80; ++id) {
    if (id == 12 || id == 26 || id == 29 || id == 30 || id == 45 || id == 66 || id == 68 || id == 69 || id == 71 ||
        id == 83)
      continue;
    cats << (written++ ? "," : "") << "{\"id\":" << id << ",\"name\":\"c" << id << "\"}";
  }
  std::ofstream(dir + "/instances.json")
      << "{\"categories\":[" << cats.str()
      << "],\"images\":[{\"id\":9,\"file_name\":\"COCO_train2014_000000000009.jpg\"},"
      << "{\"id\":25,\"file_name\":\"COCO_train2014_000000000025.jpg\"}],"
      << "\"annotations\":[{\"image_id\":9,\"category_id\":1},{\"image_id\":9,\"category_id\":90},"
      << "{\"image_id\":9,\"category_id\":1}]}";
  const std::string cmd = kTool + " --data_dataset=coco --coco_annotations=" + dir +
                          "/instances.json --data_labels=" + dir + "/labels.txt 2>/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  std::string first = "COCO_train2014_000000000009 1", second = "COCO_train2014_000000000025";
  for (int c = 1; c < 80; ++c) first += c == 79 ? " 1" : " 0";  // id 90 is the last category
  for (int c = 0; c < 80; ++c) second += " 0";
  EXPECT_EQ(slurp(dir + "/labels.txt"), first + "\n" + second + "\n");
  // An annotation whose category is not listed is refused, and nothing is written.
  std::ofstream(dir + "/bad.json") << "{\"categories\":[" << cats.str()
                                   << "],\"images\":[{\"id\":9,\"file_name\":\"a.jpg\"}],"
                                   << "\"annotations\":[{\"image_id\":9,\"category_id\":12}]}";
  const std::string bad = kTool + " --data_dataset=coco --coco_annotations=" + dir + "/bad.json --data_labels=" + dir +
                          "/bad.txt 2>/dev/null";
  EXPECT_NE(std::system(bad.c_str()), 0);
  EXPECT_FALSE(std::ifstream(dir + "/bad.txt").good());
}
