// Test helper: .pth files as torch.save writes them, made with LibTorch's own pickler (pickle_save:
// the same zip layout, tensors by _rebuild_tensor_v2 with their strides), among them the authors'
// attribute-bank layout.
#pragma once
#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace excel::test {

// Any value, as LibTorch saves it (a list of element type Any is tagged with its type).
inline void write_torch_save(const std::string& path, const c10::IValue& v) {
  const std::vector<char> bytes = torch::pickle_save(v);
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A list [centroids [E, A], class_flags [C, A]], the centroids a transposed view (strides 1, E) of
// centres stored [A, E], as the authors' code builds it.
inline c10::IValue authors_bank_layout(const at::Tensor& centroids, const at::Tensor& class_flags) {
  c10::impl::GenericList l(c10::AnyType::get());
  l.push_back(centroids.t().contiguous().t());
  l.push_back(class_flags.contiguous());
  return l;
}

// The pickle stream of a torch.save file (its data.pkl record).
inline std::string pickle_record(const std::string& path) {
  caffe2::serialize::PyTorchStreamReader reader(path);
  auto [data, size] = reader.getRecord("data.pkl");
  return std::string(static_cast<const char*>(data.get()), size);
}

// The authors' bank file as Python's torch.save writes it: LibTorch's pickle of
// authors_bank_layout() without the type tag LibTorch wraps a list in
// (torch.jit._pickle.restore_type_tag(list, 'List[Any]')), so the stream is Python's bare list,
// data.pkl first in an archive named after the file.
inline void write_authors_bank_pth(const std::string& path, const at::Tensor& centroids,
                                   const at::Tensor& class_flags) {
  const std::string tmp = path + ".libtorch";
  write_torch_save(tmp, authors_bank_layout(centroids, class_flags));
  std::string pkl = pickle_record(tmp);
  const std::string head = std::string("\x80\x02") + "ctorch.jit._pickle\nrestore_type_tag\nq";
  const std::string tag = std::string("X\x09\x00\x00\x00", 5) + "List[Any]q";
  const size_t at_tag = pkl.rfind(tag);
  const bool bare = pkl.rfind(std::string("\x80\x02") + "]", 0) == 0;  // a LibTorch that writes no tag
  if (!bare && (pkl.rfind(head, 0) != 0 || at_tag == std::string::npos || pkl.size() != at_tag + tag.size() + 4 ||
                pkl.compare(at_tag + tag.size() + 1, 3, "\x86R.") != 0))
    throw std::runtime_error("LibTorch's pickle of a list is not laid out as expected");
  if (!bare) {
    pkl.erase(at_tag, tag.size() + 3);  // the tag's string, its memo entry, TUPLE2, REDUCE
    pkl.erase(2, head.size() - 2 + 1);  // the GLOBAL and its memo entry
  }
  {
    caffe2::serialize::PyTorchStreamReader reader(tmp);
    caffe2::serialize::PyTorchStreamWriter writer(path);
    writer.writeRecord("data.pkl", pkl.data(), pkl.size());
    for (const std::string name : {"data/0", "data/1"}) {
      auto [data, size] = reader.getRecord(name);
      writer.writeRecord(name, data.get(), size);
    }
    writer.writeEndOfFile();
  }
  std::filesystem::remove(tmp);
}

}  // namespace excel::test
