// Cross-cutting: a seeded mutation loop over every reader of outside data (docs/robustness.md).
// Each reader starts from a valid file made by the project's own writer; a fixed number of
// deterministic mutations of it (bit flips, interesting values, truncation, duplicated, deleted or
// inserted bytes) are written over the file and the real reader is called. Pass: it returns, or it
// throws an excel error whose message contains the file's path. The loop runs in a forked child
// with an alarm per input and an address-space limit, so a crash, a hang or a huge allocation is
// a failure naming the reader and the mutation rather than the end of this binary.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>
#include <hdf5.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>
#include <zlib.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <sstream>

#include "authors_bank_pth.h"
#include "excel/build_config.h"
#include "excel/cache/feature_store.h"
#include "excel/cache/precompute.h"
#include "excel/common/errors.h"
#include "excel/data/image_io.h"
#include "excel/data/palette_png.h"
#include "excel/data/synthetic_voc.h"
#include "excel/data/voc_layout_dataset.h"
#include "excel/model/clip_checkpoint.h"
#include "excel/model/heads_file.h"
#include "excel/model/tokenizer.h"
#include "excel/model/tse.h"
#include "excel/train/checkpoint.h"
#include "excel/train/optimizer.h"
#include "test_util.h"
#include "tiny_setup.h"

namespace fs = std::filesystem;

namespace excel::test {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void spill(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Mutation `key` of `seed`: one of eight kinds at a position drawn over the whole file, its first
// 4 KiB or its last 4 KiB (where headers and directories live). `what` describes it.
std::string mutate_once(const std::string& seed, uint64_t key, std::string& what) {
  std::mt19937_64 rng(key * 0x9E3779B97F4A7C15ULL + 1);
  std::string m = seed;
  const size_t n = m.size();
  auto pos = [&]() -> size_t {
    if (n == 0) return 0;
    const uint64_t r = rng() % 4, span = std::min<size_t>(n, 4096);
    if (r == 0) return rng() % span;
    if (r == 1) return n - 1 - rng() % span;
    return rng() % n;
  };
  auto put = [&](size_t at, uint64_t v, int bytes) {
    for (int b = 0; b < bytes && at + b < m.size(); ++b) m[at + b] = static_cast<char>(v >> (8 * b));
  };
  const size_t at = pos();
  switch (rng() % 8) {
    case 0: {
      const int flips = 1 + static_cast<int>(rng() % 4);
      for (int i = 0; i < flips && n > 0; ++i) m[pos()] ^= static_cast<char>(1u << (rng() % 8));
      what = std::to_string(flips) + " bit flip(s)";
      break;
    }
    case 1: {
      const uint8_t v[] = {0x00, 0xff, 0x7f, 0x80, 0x01};
      put(at, v[rng() % 5], 1);
      what = "byte at " + std::to_string(at);
      break;
    }
    case 2: {
      const uint64_t v[] = {0x80000000u, 0x7fffffffu, 0xffffffffu, 0, 0x40000000u};
      put(at, v[rng() % 5], 4);
      what = "u32 at " + std::to_string(at);
      break;
    }
    case 3: {
      const uint64_t v[] = {~0ULL, 0x7fffffffffffffffULL, 0x8000000000000000ULL, 0x100000000ULL};
      put(at, v[rng() % 4], 8);
      what = "u64 at " + std::to_string(at);
      break;
    }
    case 4:
      m.resize(at);
      what = "truncated to " + std::to_string(at);
      break;
    case 5: {
      const size_t len = std::min<size_t>(1 + rng() % 256, n - at);
      m.insert(at, seed.substr(at, len));
      what = "duplicated " + std::to_string(len) + " at " + std::to_string(at);
      break;
    }
    case 6: {
      const size_t len = std::min<size_t>(1 + rng() % 256, n - at);
      m.erase(at, len);
      what = "deleted " + std::to_string(len) + " at " + std::to_string(at);
      break;
    }
    default: {
      const size_t len = 1 + rng() % 16;
      std::string ins(len, '\0');
      for (char& c : ins) c = static_cast<char>(rng());
      m.insert(std::min(at, m.size()), ins);
      what = "inserted " + std::to_string(len) + " at " + std::to_string(at);
    }
  }
  return m;
}

// A mutation that changes the file (writing a zero over a zero does not): the first that does
// among keys derived from `key`.
std::string mutate(const std::string& seed, uint64_t key, std::string& what) {
  for (uint64_t k = key;; k += 0x100000000ULL) {
    std::string m = mutate_once(seed, k, what);
    if (m != seed) return m;
  }
}

std::string g_root;  // the test's folder, blanked in messages

// A rejection message with the file, the test's folder and every word holding a digit blanked
// (numbers, hex checksums): what the closing table counts.
std::string message_kind(std::string msg, const std::string& path) {
  for (const std::string& name : {path, g_root})
    for (size_t p; !name.empty() && (p = msg.find(name)) != std::string::npos;)
      msg.replace(p, name.size(), name == path ? "<file>" : "<dir>");
  std::string out, word;
  auto flush = [&] {
    const bool number = word.find_first_of("0123456789") != std::string::npos ||
                        (word.size() == 8 && word.find_first_not_of("0123456789abcdef") == std::string::npos);
    out += number ? "#" : word;
    word.clear();
  };
  for (char c : msg.substr(0, msg.find('\n'))) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '_') {
      word += c;
    } else {
      flush();
      out += std::isprint(static_cast<unsigned char>(c)) ? c : '?';
    }
  }
  flush();
  return out.substr(0, 100);
}

// "A" (accepted), "R <message kind>" (refused as it should be) or "F <why>" (a failure) for one call.
std::string verdict_of(const std::function<void()>& reader, const std::string& path) {
  std::string v;
  try {
    reader();
    v = "A";
  } catch (const std::exception& e) {
    const std::string what = e.what();
    const bool ours = dynamic_cast<const InputError*>(&e) || dynamic_cast<const FormatError*>(&e) ||
                      dynamic_cast<const ConfigError*>(&e);
    if (!ours)
      v = "F other exception: " + what;
    else if (what.find(path) == std::string::npos)
      v = "F excel error without the path: " + what;
    else
      v = "R " + message_kind(what, path);
  } catch (...) {
    v = "F unknown exception";
  }
  for (char& c : v)
    if (c == '\n') c = ' ';  // one line through the pipe
  return v;
}

struct Tally {
  int run = 0, accepted = 0, rejected = 0;
  std::map<std::string, int> kinds;
  std::vector<std::string> failures, accepted_examples;
};

// Writes `count` mutations of `path` over it, one at a time, and calls reader() on each in a forked
// child (alarm of `alarm_s` per input, address space limited to what it has plus 3 GiB). The file is
// restored afterwards. Lines through a pipe tell the parent what happened to each input.
Tally fuzz(const std::string& name, const std::string& path, int count, const std::function<void()>& reader,
           int alarm_s = 20) {
  const std::string seed = slurp(path);
  EXPECT_FALSE(seed.empty()) << path;
  reader();  // the seed itself must read
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    FILE* out = ::fdopen(fds[1], "w");
    long pages = 0;
    std::ifstream("/proc/self/statm") >> pages;
    const rlim_t limit = static_cast<rlim_t>(pages) * ::sysconf(_SC_PAGESIZE) + (3ULL << 30);
    rlimit rl{limit, limit}, no_core{0, 0};
    ::setrlimit(RLIMIT_AS, &rl);
    ::setrlimit(RLIMIT_CORE, &no_core);  // a crash is reported, not dumped
    for (int i = 0; i < count; ++i) {
      std::string what;
      spill(path, mutate(seed, std::hash<std::string>()(name) ^ static_cast<uint64_t>(i), what));
      std::fprintf(out, "S %d %s\n", i, what.c_str());
      std::fflush(out);
      ::alarm(static_cast<unsigned>(alarm_s));
      const std::string verdict = verdict_of(reader, path);
      ::alarm(0);
      std::fprintf(out, "%s\n", verdict.substr(0, 400).c_str());
      std::fflush(out);
    }
    std::fclose(out);
    ::_exit(0);
  }
  ::close(fds[1]);
  Tally t;
  std::string last_start;
  {
    FILE* in = ::fdopen(fds[0], "r");
    char* line = nullptr;
    size_t cap = 0;
    ssize_t len;
    while ((len = ::getline(&line, &cap, in)) > 0) {
      std::string s(line, static_cast<size_t>(len - 1));
      if (s[0] == 'S') {
        last_start = s.substr(2);
        ++t.run;
      } else if (s[0] == 'A') {
        ++t.accepted;
        if (t.accepted_examples.size() < 4) t.accepted_examples.push_back(last_start);
      } else if (s[0] == 'R') {
        ++t.rejected;
        ++t.kinds[s.substr(2)];
      } else {
        t.failures.push_back(name + ": mutation " + last_start + ": " + s.substr(2));
      }
    }
    std::free(line);
    std::fclose(in);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFSIGNALED(status))
    t.failures.push_back(name + ": mutation " + last_start + ": " +
                         (WTERMSIG(status) == SIGALRM ? "hang (no answer in " + std::to_string(alarm_s) + " s)"
                                                      : "killed by signal " + std::to_string(WTERMSIG(status))));
  spill(path, seed);
  std::printf("[fuzz] %s: %d mutations, %d accepted, %d rejected\n", name.c_str(), t.run, t.accepted, t.rejected);
  for (const auto& [kind, n] : t.kinds) std::printf("[fuzz]   %4d x %s\n", n, kind.c_str());
  for (const auto& a : t.accepted_examples) std::printf("[fuzz]   accepted, e.g. mutation %s\n", a.c_str());
  for (const auto& f : t.failures) ADD_FAILURE() << f;
  EXPECT_EQ(t.run, count) << name;
  return t;
}

class FuzzReaders : public ::testing::Test {
 protected:
  void SetUp() override {
    at::set_num_threads(1);  // the children fork from this process: no thread pool behind them
    dir_ = temp_dir("fuzz_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    g_root = dir_;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
};

// The harness itself: a crash, a hang and an exception of another type in a reader each come back
// as one failure naming the reader, the mutation and what happened.
TEST_F(FuzzReaders, HarnessReportsCrashesHangsAndForeignErrors) {
  const std::string p = dir_ + "/seed.txt";
  spill(p, "a seed file of some length");
  auto mutated = [&] { return slurp(p) != "a seed file of some length"; };
  auto failures_of = [&](const std::string& name, const std::function<void()>& reader) {
    ::testing::TestPartResultArray results;
    {
      ::testing::ScopedFakeTestPartResultReporter intercept(
          ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &results);
      fuzz(name, p, 1, reader, /*alarm_s=*/1);
    }
    std::vector<std::string> out;
    for (int i = 0; i < results.size(); ++i) out.push_back(results.GetTestPartResult(i).message());
    return out;
  };
  auto expect_one = [](const std::vector<std::string>& failures, const std::string& words) {
    ASSERT_EQ(failures.size(), 1u);
    EXPECT_NE(failures[0].find(words), std::string::npos) << failures[0];
  };
  const std::vector<std::string> crashed = failures_of("crashing", [&] {
    if (mutated()) std::raise(SIGSEGV);
  });
  expect_one(crashed, "crashing: mutation 0 ");
  expect_one(crashed, "killed by signal " + std::to_string(SIGSEGV));
  const auto hang = [&] {
    if (mutated()) ::pause();
  };
  expect_one(failures_of("hanging", hang), "hang (no answer in 1 s)");
  const auto foreign = [&] {
    if (mutated()) throw std::out_of_range("index");
  };
  expect_one(failures_of("foreign", foreign), "other exception: index");
  const auto nameless = [&] {
    if (mutated()) throw FormatError("something is wrong");
  };
  expect_one(failures_of("nameless", nameless), "excel error without the path");
  const auto named = [&] {
    if (mutated()) throw FormatError(p + ": refused");
  };
  EXPECT_TRUE(failures_of("named", named).empty());
}

// A small image with structure (so JPEG has non-trivial blocks).
at::Tensor test_image() {
  at::Tensor x = torch::arange(0, 40 * 24 * 3, torch::kLong).reshape({40, 24, 3});
  return ((x * 37) % 251).to(torch::kByte);
}

TEST_F(FuzzReaders, JpegImage) {
  const std::string p = dir_ + "/image.jpg";
  data::write_rgb(p, test_image());
  fuzz("jpeg image", p, 1000, [&] { EXPECT_EQ(data::read_rgb(p).dim(), 3); });
}

TEST_F(FuzzReaders, PngImage) {
  const std::string p = dir_ + "/image.png";
  data::write_rgb(p, test_image());
  fuzz("png image", p, 1000, [&] { EXPECT_EQ(data::read_rgb(p).dim(), 3); });
}

TEST_F(FuzzReaders, PaletteMask) {
  const std::string p = dir_ + "/mask.png";
  at::Tensor m = (torch::arange(0, 30 * 20, torch::kLong).reshape({30, 20}) % 22).to(torch::kByte);
  m.index_put_({0}, 255);
  data::write_palette_png(p, m.data_ptr<uint8_t>(), 30, 20);
  fuzz("palette mask", p, 1000, [&] { EXPECT_EQ(data::read_label_png(p).dim(), 2); });
}

TEST_F(FuzzReaders, ListAndLabelFiles) {
  data::make_synthetic_voc({dir_ + "/voc", 6, 64, 72, 0.3, 1});
  const std::string list = dir_ + "/voc/ImageSets/Segmentation/train.txt", labels = dir_ + "/voc/cls_labels.txt";
  auto open = [&] {
    data::VocLayoutDataset ds({dir_ + "/voc", "train", labels, "voc", 20});
    for (size_t i = 0; i < ds.size(); ++i) EXPECT_EQ(ds.class_labels(i).size(0), 20);
  };
  fuzz("list file", list, 300, open);
  fuzz("cls_labels file", labels, 300, open);
}

TEST_F(FuzzReaders, BpeMerges) {
  const std::string p = tiny_vocabulary(dir_ + "/bpe.txt.gz");
  auto tokenize = [](const std::string& path) {
    model::Tokenizer tok(path);
    EXPECT_GT(tok.tokenize({"a photo of a dotted orange triangle."}).size(1), 0);
  };
  fuzz("bpe merges (gz)", p, 150, [&] { tokenize(p); });
  // Mutations of the gzip stream all fail its CRC; the merge lines themselves are fuzzed in plain
  // text, which the reader takes as well (zlib reads a file without the gzip header as is).
  const std::string plain = dir_ + "/bpe.txt";
  {
    gzFile gz = gzopen(p.c_str(), "rb");
    std::string text;
    char buf[1 << 16];
    for (int n; (n = gzread(gz, buf, sizeof buf)) > 0;) text.append(buf, static_cast<size_t>(n));
    gzclose(gz);
    spill(plain, text);
  }
  fuzz("bpe merges (plain text)", plain, 500, [&] { tokenize(plain); });
}

TEST_F(FuzzReaders, TrainCheckpointAndHeads) {
  model::HeadsConfig hc;
  hc.in_width = 64;
  hc.dim = 16;
  hc.decoder_layers = 1;
  hc.decoder_heads = 1;
  model::Heads heads(hc, 1);
  train::PolyWarmupAdamW opt(heads.parameters(), {});
  const std::string p = dir_ + "/checkpoint.h5";
  train::save_checkpoint(p, heads, opt, {3, 7, 2});
  fuzz("train checkpoint", p, 300, [&] {
    model::Heads h(hc, 2);
    train::PolyWarmupAdamW o(h.parameters(), {});
    EXPECT_EQ(train::load_checkpoint(p, h, o).next_iteration, 3);
  });
  fuzz("heads (eval)", p, 150, [&] {
    model::Heads h(model::heads_config_from_checkpoint(p, hc), 2);
    model::load_heads(p, h);
  });
}

TEST_F(FuzzReaders, AttributeBank) {
  const std::string p = dir_ + "/bank.h5";
  model::save_attribute_bank({torch::randn({16, 8}), torch::ones({20, 8})}, p);
  fuzz("attribute bank", p, 300, [&] { EXPECT_EQ(model::load_attribute_bank(p).centroids.dim(), 2); });
}

// A bank as h5py writes it (no checksum block, like the authors' banks): HDF5 parses the mutated
// metadata itself, bounded by h5::File's size checks.
TEST_F(FuzzReaders, ForeignAttributeBank) {
  const std::string p = dir_ + "/foreign_bank.h5";
  {
    const hid_t f = H5Fcreate(p.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    for (const auto& [name, rows] : {std::pair<const char*, hsize_t>{"centroids", 16}, {"class_flags", 20}}) {
      const hsize_t dims[2] = {rows, 8};
      const std::vector<float> values(rows * 8, 0.5f);
      const hid_t space = H5Screate_simple(2, dims, nullptr);
      const hid_t ds = H5Dcreate2(f, name, H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
      H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data());
      H5Dclose(ds);
      H5Sclose(space);
    }
    H5Fclose(f);
  }
  fuzz("attribute bank (foreign, no checksum)", p, 1000,
       [&] { EXPECT_EQ(model::load_attribute_bank(p).centroids.dim(), 2); });
}

// The authors' bank as their code saves it (torch.save of a list; tests/authors_bank_pth.h).
TEST_F(FuzzReaders, AuthorsAttributeBankPth) {
  const std::string p = dir_ + "/bank.pth";
  torch::manual_seed(2);
  at::Tensor flags = torch::zeros({20, 24});
  for (int64_t a = 0; a < 24; ++a) flags[a % 20][a] = 1;
  test::write_authors_bank_pth(p, torch::randn({16, 24}), flags);
  fuzz("attribute bank (authors' .pth)", p, 300,
       [&] { EXPECT_EQ(model::load_attribute_bank_pth(p).centroids.size(0), 16); });
  // Most of those fail the zip CRC; here the pickle stream itself is mutated and zipped again with
  // valid CRCs, so LibTorch's unpickler and the layout checks see it (<pkl>.pth names <pkl>).
  const std::string pkl = dir_ + "/bank.pkl", zipped = pkl + ".pth";
  const std::string stream = test::pickle_record(p);
  spill(pkl, stream);
  std::vector<std::pair<std::string, std::string>> storages;
  {
    caffe2::serialize::PyTorchStreamReader reader(p);
    for (const std::string name : {"data/0", "data/1"}) {
      auto [data, size] = reader.getRecord(name);
      storages.emplace_back(name, std::string(static_cast<const char*>(data.get()), size));
    }
  }
  fuzz("attribute bank (authors' .pth, pickle stream)", pkl, 500, [&] {
    {
      const std::string s = slurp(pkl);
      caffe2::serialize::PyTorchStreamWriter writer(zipped);
      writer.writeRecord("data.pkl", s.data(), s.size());
      for (const auto& [name, bytes] : storages) writer.writeRecord(name, bytes.data(), bytes.size());
      writer.writeEndOfFile();
    }
    EXPECT_EQ(model::load_attribute_bank_pth(zipped).centroids.size(0), 16);
  });
}

TEST_F(FuzzReaders, ClipCheckpoints) {
  model::ClipConfig c = tiny_clip_config();
  c.vision_layers = 6;
  c.vocab_size = 600;
  const auto tensors = model::random_clip_tensors(c, 2, torch::kHalf);
  const std::string jit = dir_ + "/clip.jit.pt", sd = dir_ + "/clip.state_dict.pt";
  model::save_clip_checkpoint(tensors, c, jit, model::CheckpointFormat::kTorchScript);
  model::save_clip_checkpoint(tensors, c, sd, model::CheckpointFormat::kStateDict);
  fuzz("clip (OpenAI TorchScript)", jit, 200, [&] { EXPECT_EQ(model::load_clip_checkpoint(jit).config.patch, 16); });
  fuzz("clip (state dict)", sd, 200, [&] { EXPECT_EQ(model::load_clip_checkpoint(sd).config.patch, 16); });
}

TEST_F(FuzzReaders, FeatureCache) {
  const train::TrainConfig t = tiny_setup(dir_);
  cache::CacheConfig cc;
  cc.data_root = t.data_root;
  cc.split = t.train_split;
  cc.clip_checkpoint = t.clip_checkpoint;
  cc.bank = t.bank;
  cc.bpe_path = t.bpe_path;
  cc.cache_dir = dir_ + "/cache";
  cc.crop = 32;
  cc.views = 2;
  cache::write_manifest(cc, {cache::precompute_shard(cc, 0, 1)});
  auto open_and_read = [&] {
    cache::FeatureStore store(cc.cache_dir);
    for (int64_t s = 0; s < store.manifest().num_samples; ++s)
      for (int64_t v = 0; v < cc.views; ++v) EXPECT_EQ(store.read(s, v).sample, s);
  };
  fuzz("cache manifest", cc.cache_dir + "/manifest.json", 300, open_and_read);
  fuzz("cache shard", cc.cache_dir + "/" + cache::shard_name(0, 1), 200, open_and_read);
  fuzz("cache constants", cc.cache_dir + "/constants.h5", 100, open_and_read);
}

TEST_F(FuzzReaders, ClassDescriptions) {
  const std::string p = dir_ + "/descriptions.json";
  const auto& names = model::dataset_text("voc").class_names;
  std::vector<model::ClassDescriptions> classes;
  const auto sentences = data::synthetic_class_descriptions(names);
  for (size_t i = 0; i < 3; ++i) classes.push_back({names[i], sentences[i]});
  model::write_class_descriptions(p, classes);
  fuzz("class descriptions (json)", p, 300, [&] { EXPECT_FALSE(model::read_class_descriptions(p).empty()); });
}

// Flagfiles go to a real tool: mutations of a configuration whose data root does not exist, so the
// tool stops at validation. Expected: exit 1 (error) or 2 (usage), a message, never a signal or the
// timeout. Few inputs: each starts a process.
TEST_F(FuzzReaders, Flagfiles) {
  const std::string tool = std::string(EXCEL_BUILD_DIR) + "/src/excel_train";
  if (!fs::exists(tool)) {
    if (ci_mode()) FAIL() << tool << " is not built";
    GTEST_SKIP() << "SKIP: " << tool << " is not built";
  }
  const std::string flags = dir_ + "/run.flags", log = dir_ + "/run.log";
  const std::string seed = slurp(std::string(EXCEL_SOURCE_DIR) + "/configs/tiny_demo.flags");
  std::map<std::string, int> kinds;
  constexpr int kRuns = 16;
  for (int i = 0; i < kRuns; ++i) {
    std::string what;
    std::string text = mutate(seed, 0xF1A6 + static_cast<uint64_t>(i), what);
    for (const char* d : {"demo_out/"}) {
      for (size_t at; (at = text.find(d)) != std::string::npos;) text.replace(at, std::strlen(d), dir_ + "/absent/");
    }
    spill(flags, text + "\n--output_dir=" + dir_ + "/out\n");
    const std::string cmd = "timeout 60 " + tool + " --flagfile=" + flags + " > " + log + " 2>&1";
    const int status = std::system(cmd.c_str());
    const int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    std::string out = slurp(log), first;
    for (std::istringstream lines(out); std::getline(lines, first);)
      if (first.find("rror") != std::string::npos || first.find("ERROR") != std::string::npos ||
          first.find("invalid") != std::string::npos)
        break;
    if (first.find("] ") != std::string::npos) first = first.substr(first.find("] ") + 2);  // glog's prefix
    const std::string kind = "exit " + std::to_string(rc) + ": " + message_kind(first, flags);
    ++kinds[kind];
    EXPECT_TRUE(rc == 1 || rc == 2) << "mutation " << i << " (" << what << "): exit " << rc << "\n" << out;
    EXPECT_TRUE(out.find("--") != std::string::npos || out.find("flag '") != std::string::npos ||
                out.find(dir_) != std::string::npos)
        << "mutation " << i << " (" << what << "): the message names no flag and no file:\n"
        << out;
  }
  std::printf("[fuzz] flagfile (excel_train): %d mutations\n", kRuns);
  for (const auto& [kind, n] : kinds) std::printf("[fuzz]   %4d x %s\n", n, kind.c_str());
}

}  // namespace
}  // namespace excel::test
