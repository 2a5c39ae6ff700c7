#include "excel/model/tse.h"

#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "excel/common/atomic_file.h"
#include "excel/common/errors.h"
#include "excel/common/h5.h"
#include "excel/common/shape.h"
#include "excel/model/clip_checkpoint.h"

namespace excel::model {

std::vector<ClassDescriptions> read_class_descriptions(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InputError(path + ": cannot open the descriptions");
  nlohmann::ordered_json j;
  try {
    j = nlohmann::ordered_json::parse(in);
  } catch (const std::exception& e) {
    throw FormatError(path + ": invalid JSON: " + e.what());
  }
  if (!j.is_object()) throw FormatError(path + ": expected an object of class name -> list of sentences");
  std::vector<ClassDescriptions> out;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!it.value().is_array() || it.value().empty())
      throw FormatError(path + ": class '" + it.key() + "' has no sentence list");
    ClassDescriptions c{it.key(), {}};
    for (const auto& s : it.value()) {
      if (!s.is_string()) throw FormatError(path + ": class '" + it.key() + "': a sentence is not a string");
      c.sentences.push_back(s.get<std::string>());
    }
    out.push_back(std::move(c));
  }
  return out;
}

void write_class_descriptions(const std::string& path, const std::vector<ClassDescriptions>& classes) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (const ClassDescriptions& c : classes) j[c.name] = c.sentences;
  atomic_write(path, j.dump(2) + "\n");
}

AttributeBank load_attribute_bank(const std::string& path, const std::string& group) {
  h5::File f = h5::File::open(path);
  const std::string p = group.empty() ? "" : group + "/";
  AttributeBank b;
  b.centroids = f.read(p + "centroids").to(torch::kFloat);
  b.class_flags = f.read(p + "class_flags").to(torch::kFloat);
  if (b.centroids.dim() != 2 || b.class_flags.dim() != 2 || b.class_flags.size(1) != b.centroids.size(1))
    throw FormatError(path + ": attribute bank must hold centroids [E,A] and class_flags [C,A] with the same A");
  return b;
}

void save_attribute_bank(const AttributeBank& bank, const std::string& path) {
  atomic_replace(path, [&](const std::string& tmp) {
    {
      h5::File f = h5::File::create(tmp);
      f.write("centroids", bank.centroids.to(torch::kFloat));
      f.write("class_flags", bank.class_flags.to(torch::kFloat));
      f.set_attr("num_clusters", static_cast<int64_t>(bank.centroids.size(1)));
      f.close();  // writes the checksum block
    }
  });
}

namespace {

std::string describe(const c10::IValue& v) {
  if (v.isTensor()) return "a tensor of shape " + shape_str(v.toTensor().sizes());
  if (v.isGenericDict()) {
    std::string keys;
    for (const auto& kv : v.toGenericDict())
      keys += (keys.empty() ? "" : ", ") + (kv.key().isString() ? "'" + kv.key().toStringRef() + "'" : "?");
    return "a dict with keys " + (keys.empty() ? "(none)" : keys);
  }
  if (v.isList()) return "a list of " + std::to_string(v.toList().size()) + " entries";
  if (v.isTuple()) return "a tuple of " + std::to_string(v.toTupleRef().elements().size()) + " entries";
  return std::string("a ") + v.tagKind();
}

}  // namespace

AttributeBank load_attribute_bank_pth(const std::string& path) {
  const c10::IValue v = read_torch_save(path);
  const std::string want = "; expected the authors' bank, a list [centroids [E, A], class_flags [C, A]]";
  std::vector<c10::IValue> items;
  if (v.isList()) {
    const c10::List<c10::IValue> l = v.toList();
    for (size_t i = 0; i < l.size(); ++i) items.push_back(l.get(i));
  } else if (v.isTuple()) {
    for (const c10::IValue& x : v.toTupleRef().elements()) items.push_back(x);
  }
  if (items.size() != 2) throw FormatError(path + ": holds " + describe(v) + want);
  const char* names[2] = {"centroids", "class_flags"};
  for (int i = 0; i < 2; ++i) {
    const at::Tensor t = items[i].isTensor() ? items[i].toTensor() : at::Tensor();
    const bool numeric = t.defined() && (t.is_floating_point() || (i == 1 && !t.is_complex() && !t.is_quantized()));
    if (!numeric || t.layout() != at::kStrided || t.dim() != 2)
      throw FormatError(path + ": entry " + std::to_string(i) + " (" + names[i] + ") is " + describe(items[i]) +
                        (t.defined() ? " of dtype " + std::string(c10::toString(t.scalar_type())) : "") + want +
                        " of floats");
  }
  AttributeBank b{items[0].toTensor().to(torch::kFloat).contiguous(),
                  items[1].toTensor().to(torch::kFloat).contiguous()};
  const int64_t E = b.centroids.size(0), A = b.centroids.size(1), C = b.class_flags.size(0);
  if (E == 0 || A == 0 || C == 0 || b.class_flags.size(1) != A)
    throw FormatError(path + ": centroids " + shape_str(b.centroids.sizes()) + " and class_flags " +
                      shape_str(b.class_flags.sizes()) + " do not form a bank" + want);
  if (!b.centroids.isfinite().all().item<bool>())
    throw FormatError(path + ": centroids contain NaN or Inf (or values beyond float32)");
  if (!((b.class_flags == 0) | (b.class_flags == 1)).all().item<bool>())
    throw FormatError(path + ": class_flags hold values other than 0 and 1");
  const at::Tensor empty = (b.class_flags.sum(1) == 0).nonzero();
  if (empty.size(0) > 0)
    throw FormatError(path + ": class " + std::to_string(empty[0][0].item<int64_t>()) +
                      " has no attribute (its row of class_flags is all zero)");
  return b;
}

at::Tensor text_semantic_enrichment(const at::Tensor& t0, int64_t C, const AttributeBank& bank, double keep_fraction) {
  torch::NoGradGuard ng;
  const at::Tensor& phi = bank.centroids;  // [E, A]
  if (phi.size(0) != t0.size(1))
    throw InputError("attribute bank has embedding size " + std::to_string(phi.size(0)) +
                     " but the text encoder gives " + std::to_string(t0.size(1)) +
                     " (a bank only fits the CLIP it was built with)");
  if (bank.class_flags.size(0) != C)
    throw InputError("attribute bank has " + std::to_string(bank.class_flags.size(0)) + " classes, expected " +
                     std::to_string(C));
  const int64_t A = phi.size(1);
  const int64_t drop = static_cast<int64_t>((1.0 - keep_fraction) * static_cast<double>(A));  // 11 for A=112
  at::Tensor fg = t0.slice(0, 0, C), bg = t0.slice(0, C);
  at::Tensor z = torch::matmul(fg, phi);  // [C, A]
  if (drop > 0) {
    at::Tensor order = std::get<1>(z.sort(-1, /*descending=*/true));
    at::Tensor low = order.slice(1, A - drop);
    z = z.scatter(1, low, -std::numeric_limits<float>::infinity());
  }
  at::Tensor w = torch::softmax(z, -1);
  at::Tensor all = torch::cat({torch::matmul(w, phi.t()) + fg, bg}, 0);
  return all / all.norm(2, {-1}, true);
}

at::Tensor kmeans(const at::Tensor& x_in, int64_t k, uint64_t seed, int64_t max_iter,
                  std::vector<int64_t>* assignment) {
  torch::NoGradGuard ng;
  at::Tensor x = x_in.to(torch::kDouble).contiguous();
  const int64_t n = x.size(0);
  if (k <= 0 || k > n)
    throw ConfigError("k-means needs 1 <= k <= n (k=" + std::to_string(k) + ", n=" + std::to_string(n) + ")");
  std::mt19937_64 rng(seed);
  auto uniform = [&]() { return static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0); };
  // k-means++ seeding.
  std::vector<int64_t> chosen = {static_cast<int64_t>(rng() % static_cast<uint64_t>(n))};
  at::Tensor d2 = (x - x[chosen[0]]).pow(2).sum(-1);
  while (static_cast<int64_t>(chosen.size()) < k) {
    double total = d2.sum().item<double>(), r = uniform() * total, acc = 0;
    auto d = d2.accessor<double, 1>();
    int64_t pick = n - 1;
    for (int64_t i = 0; i < n; ++i) {
      acc += d[i];
      if (acc >= r && d[i] > 0) {
        pick = i;
        break;
      }
    }
    chosen.push_back(pick);
    d2 = torch::minimum(d2, (x - x[pick]).pow(2).sum(-1));
  }
  at::Tensor centres = x.index_select(0, torch::tensor(chosen));
  at::Tensor labels;
  for (int64_t it = 0; it < max_iter; ++it) {
    at::Tensor dist = torch::cdist(x, centres);
    at::Tensor new_labels = dist.argmin(1);
    if (labels.defined() && torch::equal(labels, new_labels)) break;
    labels = new_labels;
    at::Tensor sums = torch::zeros_like(centres).index_add_(0, labels, x);
    at::Tensor counts = torch::bincount(labels, {}, k).to(torch::kDouble).unsqueeze(1);
    at::Tensor empty = counts.squeeze(1) == 0;
    centres = torch::where(empty.unsqueeze(1), centres, sums / counts.clamp_min(1));
  }
  if (assignment) {
    assignment->resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) (*assignment)[static_cast<size_t>(i)] = labels[i].item<int64_t>();
  }
  return centres.to(torch::kFloat);
}

}  // namespace excel::model
