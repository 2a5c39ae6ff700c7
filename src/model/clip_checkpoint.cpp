#include "excel/model/clip_checkpoint.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include <torch/script.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "excel/common/atomic_file.h"
#include "excel/common/errors.h"
#include "excel/common/shape.h"
#include "excel/common/zip_check.h"

namespace excel::model {
namespace {

const std::set<std::string> kScalarKeys = {"input_resolution", "context_length", "vocab_size"};

std::string first_line(const std::string& s) {
  return s.substr(0, s.find('\n'));
}

int64_t count_blocks(const std::map<std::string, at::Tensor>& t, const std::string& prefix) {
  int64_t n = 0;
  while (t.count(prefix + std::to_string(n) + ".ln_1.weight")) ++n;
  return n;
}

const at::Tensor& require(const std::map<std::string, at::Tensor>& t, const std::string& name,
                          const std::string& source) {
  auto it = t.find(name);
  if (it == t.end()) throw FormatError(source + ": missing tensor '" + name + "'");
  return it->second;
}

void check_shape(const std::map<std::string, at::Tensor>& t, const std::string& name, std::vector<int64_t> want,
                 const std::string& source) {
  const at::Tensor& x = require(t, name, source);
  if (x.sizes() != at::IntArrayRef(want))
    throw FormatError(source + ": tensor '" + name + "' has shape " + shape_str(x.sizes()) + ", expected " +
                      shape_str(want));
  if (!x.is_floating_point()) throw FormatError(source + ": tensor '" + name + "' is not floating point");
}

void check_blocks(const std::map<std::string, at::Tensor>& t, const std::string& prefix, int64_t n, int64_t w,
                  const std::string& source) {
  for (int64_t i = 0; i < n; ++i) {
    std::string p = prefix + std::to_string(i) + ".";
    check_shape(t, p + "ln_1.weight", {w}, source);
    check_shape(t, p + "ln_1.bias", {w}, source);
    check_shape(t, p + "attn.in_proj_weight", {3 * w, w}, source);
    check_shape(t, p + "attn.in_proj_bias", {3 * w}, source);
    check_shape(t, p + "attn.out_proj.weight", {w, w}, source);
    check_shape(t, p + "attn.out_proj.bias", {w}, source);
    check_shape(t, p + "ln_2.weight", {w}, source);
    check_shape(t, p + "ln_2.bias", {w}, source);
    check_shape(t, p + "mlp.c_fc.weight", {4 * w, w}, source);
    check_shape(t, p + "mlp.c_fc.bias", {4 * w}, source);
    check_shape(t, p + "mlp.c_proj.weight", {w, 4 * w}, source);
    check_shape(t, p + "mlp.c_proj.bias", {w}, source);
  }
}

std::map<std::string, at::Tensor> read_torchscript(const std::string& path) {
  torch::jit::Module m;
  try {
    m = torch::jit::load(path, torch::kCPU);
  } catch (const c10::Error& e) {
    throw FormatError(
        path + ": cannot load TorchScript archive (truncated or corrupt?): " + first_line(e.what_without_backtrace()));
  } catch (const std::exception& e) {  // the TorchScript compiler's ErrorReport on damaged code
    throw FormatError(path + ": cannot load TorchScript archive (corrupt code?): " + first_line(e.what()));
  }
  std::map<std::string, at::Tensor> out;
  for (const auto& p : m.named_parameters(/*recurse=*/true)) out[p.name] = p.value;
  for (const auto& b : m.named_buffers(/*recurse=*/true)) out[b.name] = b.value;
  return out;
}

// The one unpickler of torch.save files: LibTorch's errors become FormatError naming the file.
c10::IValue unpickle(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  try {
    return torch::pickle_load(bytes);
  } catch (const c10::Error& e) {
    throw FormatError(
        path + ": cannot read torch.save file (truncated or corrupt?): " + first_line(e.what_without_backtrace()));
  } catch (const std::exception& e) {
    throw FormatError(path + ": cannot read torch.save file (corrupt?): " + first_line(e.what()));
  }
}

// Zip files only (torch.save since PyTorch 1.6, TorchScript): names the legacy format, then checks
// every entry's CRC, which LibTorch does not. `kind` and `expected` say what the file should be.
void check_torch_zip(const std::string& path, const std::string& kind, const std::string& expected) {
  char magic[4] = {0, 0, 0, 0};
  {
    std::ifstream in(path, std::ios::binary);
    in.read(magic, 4);
    if (in.gcount() < 4) throw FormatError(path + ": file too short to be a " + kind + " (truncated?)");
  }
  if (!(magic[0] == 'P' && magic[1] == 'K')) {
    if (static_cast<unsigned char>(magic[0]) == 0x80)
      throw FormatError(path +
                        ": legacy (pre-1.6, non-zip) torch.save format is not supported; "
                        "re-save it with torch.save(obj, path) from PyTorch >= 1.6");
    throw FormatError(path + ": unknown " + kind + " format (expected " + expected + ")");
  }
  check_zip_archive(path);
}

std::map<std::string, at::Tensor> read_state_dict(const std::string& path, bool skip_non_tensors = false) {
  c10::IValue v = unpickle(path);
  // Accept {"state_dict": {...}} / {"model": {...}} wrappers as written by training scripts.
  for (int depth = 0; depth < 2 && v.isGenericDict(); ++depth) {
    auto d = v.toGenericDict();
    bool descended = false;
    for (const char* key : {"state_dict", "model"}) {
      if (d.contains(key) && d.at(key).isGenericDict()) {
        v = d.at(key);
        descended = true;
        break;
      }
    }
    if (!descended) break;
  }
  if (!v.isGenericDict()) throw FormatError(path + ": expected a dict of tensors, found " + v.tagKind());
  std::map<std::string, at::Tensor> out;
  for (const auto& kv : v.toGenericDict()) {
    if (!kv.key().isString()) throw FormatError(path + ": state dict has a non-string key");
    std::string name = kv.key().toStringRef();
    if (name.rfind("module.", 0) == 0) name = name.substr(7);
    if (!kv.value().isTensor()) {
      if (kScalarKeys.count(name) || skip_non_tensors) continue;
      throw FormatError(path + ": entry '" + name + "' is not a tensor");
    }
    out[name] = kv.value().toTensor();
  }
  return out;
}

}  // namespace

std::map<std::string, at::Tensor> read_torch_state_dict(const std::string& path) {
  if (!std::filesystem::is_regular_file(path)) throw InputError(path + ": file not found");
  check_torch_zip(path, "state dict", "a torch.save zip file");
  return read_state_dict(path, /*skip_non_tensors=*/true);
}

c10::IValue read_torch_save(const std::string& path) {
  if (!std::filesystem::is_regular_file(path)) throw InputError(path + ": file not found");
  check_torch_zip(path, "torch.save file", "a torch.save zip file");
  return unpickle(path);
}

std::string ClipConfig::describe() const {
  std::ostringstream o;
  o << "vision " << vision_layers << "x" << vision_width << " (heads " << vision_heads << ", patch " << patch
    << ", grid " << pos_grid << "), text " << text_layers << "x" << text_width << " (heads " << text_heads
    << ", context " << context_length << ", vocab " << vocab_size << "), embed " << embed_dim;
  return o.str();
}

const at::Tensor& ClipWeights::get(const std::string& name) const {
  return require(tensors, name, source);
}

ClipConfig infer_and_validate(const std::map<std::string, at::Tensor>& t, const std::string& source) {
  ClipConfig c;
  const at::Tensor& conv = require(t, "visual.conv1.weight", source);
  if (conv.dim() != 4 || conv.size(1) != 3 || conv.size(2) != conv.size(3))
    throw FormatError(source + ": tensor 'visual.conv1.weight' has shape " + shape_str(conv.sizes()) +
                      ", expected [width,3,patch,patch] (only ViT CLIP models are supported)");
  c.vision_width = conv.size(0);
  c.patch = conv.size(2);
  if (c.vision_width % 64 != 0)
    throw FormatError(source + ": vision width " + std::to_string(c.vision_width) + " is not a multiple of 64");
  c.vision_heads = c.vision_width / 64;
  c.vision_layers = count_blocks(t, "visual.transformer.resblocks.");
  if (c.vision_layers < 6)
    throw FormatError(source + ": found " + std::to_string(c.vision_layers) +
                      " vision blocks; surgery needs at least 6 (missing 'visual.transformer.resblocks.N.*'?)");
  const at::Tensor& pos = require(t, "visual.positional_embedding", source);
  int64_t cells = pos.dim() == 2 ? pos.size(0) - 1 : -1;
  c.pos_grid = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(std::max<int64_t>(cells, 0)))));
  if (cells <= 0 || c.pos_grid * c.pos_grid != cells)
    throw FormatError(source + ": tensor 'visual.positional_embedding' has shape " + shape_str(pos.sizes()) +
                      ", expected [1+g*g, width]");
  const at::Tensor& proj = require(t, "visual.proj", source);
  if (proj.dim() != 2) throw FormatError(source + ": tensor 'visual.proj' must be 2-D");
  c.embed_dim = proj.size(1);
  const at::Tensor& lnf = require(t, "ln_final.weight", source);
  c.text_width = lnf.size(0);
  if (c.text_width % 64 != 0)
    throw FormatError(source + ": text width " + std::to_string(c.text_width) + " is not a multiple of 64");
  c.text_heads = c.text_width / 64;
  c.text_layers = count_blocks(t, "transformer.resblocks.");
  if (c.text_layers < 1) throw FormatError(source + ": missing tensor 'transformer.resblocks.0.ln_1.weight'");
  const at::Tensor& tpos = require(t, "positional_embedding", source);
  c.context_length = tpos.size(0);
  c.vocab_size = require(t, "token_embedding.weight", source).size(0);

  const int64_t w = c.vision_width, tw = c.text_width;
  check_shape(t, "visual.conv1.weight", {w, 3, c.patch, c.patch}, source);
  check_shape(t, "visual.class_embedding", {w}, source);
  check_shape(t, "visual.positional_embedding", {1 + c.pos_grid * c.pos_grid, w}, source);
  check_shape(t, "visual.ln_pre.weight", {w}, source);
  check_shape(t, "visual.ln_pre.bias", {w}, source);
  check_blocks(t, "visual.transformer.resblocks.", c.vision_layers, w, source);
  check_shape(t, "visual.ln_post.weight", {w}, source);
  check_shape(t, "visual.ln_post.bias", {w}, source);
  check_shape(t, "visual.proj", {w, c.embed_dim}, source);
  check_shape(t, "token_embedding.weight", {c.vocab_size, tw}, source);
  check_shape(t, "positional_embedding", {c.context_length, tw}, source);
  check_blocks(t, "transformer.resblocks.", c.text_layers, tw, source);
  check_shape(t, "ln_final.weight", {tw}, source);
  check_shape(t, "ln_final.bias", {tw}, source);
  check_shape(t, "text_projection", {tw, c.embed_dim}, source);
  for (const auto& kv : t) {
    if (!kv.second.isfinite().all().item<bool>())
      throw FormatError(source + ": tensor '" + kv.first + "' contains NaN or Inf");
  }
  return c;
}

ClipWeights load_clip_checkpoint(const std::string& path) {
  if (!std::filesystem::is_regular_file(path)) throw InputError(path + ": checkpoint file not found");
  check_torch_zip(path, "checkpoint", "a TorchScript archive or a torch.save state dict, both zip files");
  bool is_jit = false;
  try {
    caffe2::serialize::PyTorchStreamReader reader(path);
    is_jit = reader.hasRecord("constants.pkl");
  } catch (const c10::Error& e) {
    throw FormatError(path + ": corrupt or truncated zip archive: " + first_line(e.what_without_backtrace()));
  }
  ClipWeights w;
  w.source = path;
  auto raw = is_jit ? read_torchscript(path) : read_state_dict(path);
  for (auto& kv : raw) {
    if (kScalarKeys.count(kv.first)) continue;
    std::string name = kv.first.rfind("module.", 0) == 0 ? kv.first.substr(7) : kv.first;
    w.tensors[name] = kv.second.detach().to(at::kFloat).contiguous();
  }
  w.config = infer_and_validate(w.tensors, path);
  return w;
}

void save_clip_checkpoint(const std::map<std::string, at::Tensor>& tensors, const ClipConfig& cfg,
                          const std::string& path, CheckpointFormat format) {
  atomic_replace(path, [&](const std::string& tmp) {
    if (format == CheckpointFormat::kStateDict) {
      c10::Dict<std::string, at::Tensor> d;
      for (const auto& kv : tensors) d.insert(kv.first, kv.second);
      std::vector<char> bytes = torch::pickle_save(d);
      std::ofstream out(tmp, std::ios::binary);
      out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
      if (!out) throw InputError(tmp + ": write failed");
    } else {
      auto cu = std::make_shared<torch::jit::CompilationUnit>();
      torch::jit::Module root(c10::QualifiedName("__torch__.multimodal.model.CLIP"), cu, true);
      std::map<std::string, torch::jit::Module> made;
      auto module_for = [&](const std::string& dotted) -> torch::jit::Module {
        torch::jit::Module cur = root;
        std::string path_so_far;
        size_t start = 0, dot;
        while ((dot = dotted.find('.', start)) != std::string::npos) {
          std::string part = dotted.substr(start, dot - start);
          path_so_far += (path_so_far.empty() ? "" : ".") + part;
          auto it = made.find(path_so_far);
          if (it == made.end()) {
            torch::jit::Module child(c10::QualifiedName("__torch__.multimodal.model.Module"), cu, true);
            cur.register_module(part, child);
            it = made.emplace(path_so_far, child).first;
          }
          cur = it->second;
          start = dot + 1;
        }
        return cur;
      };
      for (const auto& kv : tensors) {
        size_t dot = kv.first.rfind('.');
        std::string leaf = dot == std::string::npos ? kv.first : kv.first.substr(dot + 1);
        torch::jit::Module m = dot == std::string::npos ? root : module_for(kv.first.substr(0, dot + 1));
        m.register_parameter(leaf, kv.second, /*is_buffer=*/false);
      }
      root.register_attribute("input_resolution", c10::IntType::get(), cfg.input_resolution());
      root.register_attribute("context_length", c10::IntType::get(), cfg.context_length);
      root.register_attribute("vocab_size", c10::IntType::get(), cfg.vocab_size);
      root.save(tmp);
    }
  });
}

}  // namespace excel::model
