// Text Semantic Enrichment (§2.5) with an attribute bank, and the bank builder (§2.6).
#pragma once
#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

namespace excel::model {

struct AttributeBank {
  at::Tensor centroids;    // [E, A] float32 (k-means centres, not re-normalised)
  at::Tensor class_flags;  // [C, A] float32 0/1
};

// Reads `centroids` and `class_flags` from an HDF5 bank file (or group prefix inside one).
AttributeBank load_attribute_bank(const std::string& path, const std::string& group = "");
void save_attribute_bank(const AttributeBank& bank, const std::string& path);

// The authors' published bank (their attributes_text/*_embedding_bank.pth): torch.save of a list
// [centroids [E, A], class_flags [C, A]]. A list or tuple of those two tensors in any float dtype is
// read (as float32, contiguous); anything else, non-finite centroids, flags other than 0/1 or a
// class without an attribute is a FormatError naming the file and what it holds.
AttributeBank load_attribute_bank_pth(const std::string& path);

// A descriptions JSON, the knowledge base a bank is built from (§2.6): an object mapping each class
// name to its sentences, classes in file order. Errors name the file and the class.
struct ClassDescriptions {
  std::string name;
  std::vector<std::string> sentences;
};
std::vector<ClassDescriptions> read_class_descriptions(const std::string& path);
void write_class_descriptions(const std::string& path, const std::vector<ClassDescriptions>& classes);

// T0 [C + n_bg, E] unit rows -> T_all [C + n_bg, E]: foreground rows enriched, all rows normalised.
// keep_fraction 0.9 drops the int((1 - 0.9) * A) lowest logits per class, as the reference does.
at::Tensor text_semantic_enrichment(const at::Tensor& text_features, int64_t num_classes, const AttributeBank& bank,
                                    double keep_fraction = 0.9);

// Seeded k-means (k-means++ seeding, Lloyd iterations) on unit rows X [n, E]; returns [k, E].
at::Tensor kmeans(const at::Tensor& x, int64_t k, uint64_t seed, int64_t max_iter = 300,
                  std::vector<int64_t>* assignment = nullptr);

}  // namespace excel::model
