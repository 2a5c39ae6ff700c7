// common/h5 (src/common/h5.cpp): every dtype, string lists and attributes round-trip; element
// types other writers produce are read; chunked writes and row blocks; missing and corrupt files,
// datasets and attributes are named with the file.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "excel/common/errors.h"
#include "excel/common/h5.h"
#include "test_util.h"

using namespace excel;

TEST(H5Test, tensors_strings_and_attributes_round_trip) {
  const std::string dir = test::temp_dir("h5"), path = dir + "/a.h5";
  torch::manual_seed(2);
  const at::Tensor f = torch::randn({3, 4}), l = torch::arange(5, torch::kLong),
                   b = torch::randint(0, 256, {2, 2}).to(torch::kByte);
  {
    h5::File out = h5::File::create(path);
    out.write("g/f", f);
    out.write("g/l", l);
    out.write("b", b);
    out.write_strings("s", {"one", "two words", ""});
    out.set_attr("i", int64_t{-7});
    out.set_attr("d", 0.25);
    out.set_attr("t", std::string("text"));
  }
  h5::File in = h5::File::open(path);
  EXPECT_TRUE(torch::equal(in.read("g/f"), f));
  EXPECT_TRUE(torch::equal(in.read("g/l"), l));
  EXPECT_TRUE(torch::equal(in.read("b"), b));
  EXPECT_EQ(in.read_strings("s"), (std::vector<std::string>{"one", "two words", ""}));
  EXPECT_EQ(in.attr_int("i"), -7);
  EXPECT_EQ(in.attr_double("d"), 0.25);
  EXPECT_EQ(in.attr_string("t"), "text");
  EXPECT_TRUE(in.exists("g/f"));
  EXPECT_FALSE(in.exists("g/missing"));
  EXPECT_TRUE(in.is_group("g"));
  EXPECT_EQ(in.list("g"), (std::vector<std::string>{"f", "l"}));
  std::filesystem::remove_all(dir);
}

TEST(H5Test, missing_and_corrupt_files_are_named) {
  const std::string dir = test::temp_dir("h5_bad");
  auto expect_named = [](const std::string& path) {
    try {
      h5::File::open(path);
      ADD_FAILURE() << path << " opened";
    } catch (const std::exception& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
  };
  expect_named(dir + "/absent.h5");
  std::ofstream(dir + "/text.h5") << "not an HDF5 file";
  expect_named(dir + "/text.h5");
  {
    h5::File out = h5::File::create(dir + "/full.h5");
    out.write("x", torch::randn({256, 256}));
  }
  std::filesystem::resize_file(dir + "/full.h5", std::filesystem::file_size(dir + "/full.h5") / 2);
  try {
    h5::File f = h5::File::open(dir + "/full.h5");
    f.read("x");
    ADD_FAILURE() << "truncated file read";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("full.h5"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

namespace {

// Expects `f` to throw an excel error (FormatError or InputError) whose message holds every needle.
template <class F>
void expect_error_naming(F&& f, const std::vector<std::string>& needles) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one naming " << needles.front();
  } catch (const FormatError& e) {
    for (const auto& n : needles) EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what();
  } catch (const InputError& e) {
    for (const auto& n : needles) EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what();
  }
}

// Bitwise equality (NaN, -0.0 and infinities included) of same-dtype tensors.
bool same_bits(const at::Tensor& a, const at::Tensor& b) {
  if (a.scalar_type() != b.scalar_type() || a.sizes() != b.sizes()) return false;
  switch (a.element_size()) {
    case 2:
      return torch::equal(a.view(torch::kShort), b.view(torch::kShort));
    case 4:
      return torch::equal(a.view(torch::kInt), b.view(torch::kInt));
    case 8:
      return torch::equal(a.view(torch::kLong), b.view(torch::kLong));
    default:
      return torch::equal(a, b);
  }
}

// Layout and chunk shape of a dataset, read with the HDF5 API.
std::pair<H5D_layout_t, std::vector<hsize_t>> layout_of(const h5::File& f, const std::string& name) {
  const hid_t ds = H5Dopen2(f.id(), name.c_str(), H5P_DEFAULT);
  const hid_t dcpl = H5Dget_create_plist(ds);
  const H5D_layout_t layout = H5Pget_layout(dcpl);
  std::vector<hsize_t> chunk;
  if (layout == H5D_CHUNKED) {
    chunk.resize(8);
    chunk.resize(static_cast<size_t>(H5Pget_chunk(dcpl, 8, chunk.data())));
  }
  H5Pclose(dcpl);
  H5Dclose(ds);
  return {layout, chunk};
}

}  // namespace

TEST(H5Test, every_dtype_round_trips_bit_exactly_with_its_dtype) {
  const std::string dir = test::temp_dir("h5_dtypes"), path = dir + "/d.h5";
  const float finf = std::numeric_limits<float>::infinity(), fnan = std::numeric_limits<float>::quiet_NaN();
  const double dinf = std::numeric_limits<double>::infinity(), dnan = std::numeric_limits<double>::quiet_NaN();
  std::map<std::string, at::Tensor> t = {
      {"f32", torch::tensor({0.f, -0.f, 1.5f, 1e-45f, std::numeric_limits<float>::max(),
                             std::numeric_limits<float>::lowest(), finf, -finf, fnan})},
      {"f64",
       torch::tensor({0.0, -0.0, 0.1, 5e-324, std::numeric_limits<double>::max(), dinf, -dinf, dnan}, torch::kDouble)},
      // fp16: 65504 is the largest finite half, 6e-8 its smallest subnormal.
      {"f16", torch::tensor({0.f, -0.f, 1.f / 3, 65504.f, -65504.f, 6e-8f, finf, fnan}).to(torch::kHalf)},
      {"u8", torch::tensor({0, 1, 128, 255}).to(torch::kByte)},
      {"i8", torch::tensor({-128, -1, 0, 127}).to(torch::kChar)},
      {"i16", torch::tensor({-32768, -1, 0, 32767}).to(torch::kShort)},
      {"i32",
       torch::tensor({std::numeric_limits<int32_t>::min(), -1, 0, std::numeric_limits<int32_t>::max()}, torch::kInt)},
      {"i64", torch::tensor({std::numeric_limits<int64_t>::min(), int64_t{-1}, (int64_t{1} << 53) + 1,
                             std::numeric_limits<int64_t>::max()},
                            torch::kLong)},
      {"f32_3d", torch::arange(24, torch::kFloat).view({2, 3, 4}) / 7},
      {"f32_scalar", torch::tensor(2.75f)},                                  // 0-dim: an HDF5 scalar dataspace
      {"f32_empty", torch::zeros({0, 3})},                                   // no elements, shape kept
      {"f32_transposed", torch::arange(6, torch::kFloat).view({2, 3}).t()},  // not contiguous
  };
  {
    h5::File out = h5::File::create(path);
    for (const auto& kv : t) out.write("typed/" + kv.first, kv.second);
    out.write("bool", torch::tensor({true, false, true}));
  }
  {
    h5::File in = h5::File::open(path);
    for (const auto& kv : t) {
      const at::Tensor back = in.read("typed/" + kv.first);
      EXPECT_EQ(back.scalar_type(), kv.second.scalar_type()) << kv.first;
      EXPECT_EQ(back.sizes(), kv.second.sizes()) << kv.first;
      EXPECT_TRUE(same_bits(back, kv.second.contiguous())) << kv.first << ": " << back << " vs " << kv.second;
      EXPECT_EQ(in.shape("typed/" + kv.first), kv.second.sizes().vec()) << kv.first;
    }
    // bool is stored as uint8 (HDF5 has no bool) and comes back as uint8 0/1.
    const at::Tensor b = in.read("bool");
    EXPECT_EQ(b.scalar_type(), torch::kByte);
    EXPECT_TRUE(torch::equal(b, torch::tensor({1, 0, 1}).to(torch::kByte)));
  }
  // dtypes HDF5 cannot hold are refused, naming the file and the dataset.
  h5::File rw = h5::File::open(path, /*writable=*/true);
  expect_error_naming([&] { rw.write("bf16", torch::ones({2}, torch::kBFloat16)); },
                      {path, "bf16", "cannot store dtype"});
  expect_error_naming([&] { rw.create_rows("c64", torch::kComplexFloat, {2}); }, {path, "c64", "cannot store dtype"});
  std::filesystem::remove_all(dir);
}

// Element types other writers (h5py, the reference) produce and this code never writes.
TEST(H5Test, reads_unsigned_wide_integers_enum_bools_and_variable_length_strings) {
  const std::string dir = test::temp_dir("h5_foreign"), path = dir + "/f.h5";
  {
    h5::File out = h5::File::create(path);
    const hid_t file = out.id();
    auto write_raw = [file](const char* name, hid_t ftype, hid_t mtype, hsize_t n, const void* data) {
      const hid_t space = H5Screate_simple(1, &n, nullptr);
      const hid_t ds = H5Dcreate2(file, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
      ASSERT_GE(ds, 0) << name;
      ASSERT_GE(H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), 0) << name;
      H5Dclose(ds);
      H5Sclose(space);
    };
    const uint16_t u16[3] = {0, 1, 65535};
    write_raw("u16", H5T_STD_U16LE, H5T_NATIVE_UINT16, 3, u16);
    const uint32_t u32[3] = {0, 1, 4294967295u};
    write_raw("u32", H5T_STD_U32LE, H5T_NATIVE_UINT32, 3, u32);
    // h5py's bool: an 8-bit enum FALSE = 0, TRUE = 1.
    const hid_t en = H5Tenum_create(H5T_NATIVE_INT8);
    const int8_t f0 = 0, t1 = 1;
    H5Tenum_insert(en, "FALSE", &f0);
    H5Tenum_insert(en, "TRUE", &t1);
    const int8_t flags[4] = {1, 0, 0, 1};
    write_raw("flags", en, en, 4, flags);
    H5Tclose(en);
    // Variable-length strings (h5py's default for str), as a dataset and as an attribute.
    const hid_t vs = H5Tcopy(H5T_C_S1);
    H5Tset_size(vs, H5T_VARIABLE);
    const char* words[3] = {"alpha", "", "two words"};
    write_raw("vlen", vs, vs, 3, words);
    const hid_t scalar = H5Screate(H5S_SCALAR);
    const hid_t attr = H5Acreate2(file, "vlen_attr", vs, scalar, H5P_DEFAULT, H5P_DEFAULT);
    const char* value = "variable";
    H5Awrite(attr, vs, &value);
    H5Aclose(attr);
    // An array attribute of int64.
    const hsize_t three = 3;
    const hid_t space3 = H5Screate_simple(1, &three, nullptr);
    const hid_t arr = H5Acreate2(file, "sizes", H5T_STD_I64LE, space3, H5P_DEFAULT, H5P_DEFAULT);
    const int64_t sizes[3] = {4, -5, 6};
    H5Awrite(arr, H5T_NATIVE_INT64, sizes);
    H5Aclose(arr);
    H5Sclose(space3);
    H5Sclose(scalar);
    H5Tclose(vs);
  }
  h5::File in = h5::File::open(path);
  const at::Tensor u16 = in.read("u16"), u32 = in.read("u32");
  EXPECT_EQ(u16.scalar_type(), torch::kInt);  // widened: no unsigned 16/32-bit tensors
  EXPECT_TRUE(torch::equal(u16, torch::tensor({0, 1, 65535}, torch::kInt)));
  EXPECT_EQ(u32.scalar_type(), torch::kLong);
  EXPECT_TRUE(torch::equal(u32, torch::tensor({int64_t{0}, int64_t{1}, int64_t{4294967295}}, torch::kLong)));
  const at::Tensor flags = in.read("flags");
  EXPECT_EQ(flags.scalar_type(), torch::kBool);
  EXPECT_TRUE(torch::equal(flags, torch::tensor({true, false, false, true})));
  EXPECT_EQ(in.read_strings("vlen"), (std::vector<std::string>{"alpha", "", "two words"}));
  EXPECT_EQ(in.attr_string("vlen_attr"), "variable");
  EXPECT_EQ(in.attr_ints("sizes"), (std::vector<int64_t>{4, -5, 6}));
  expect_error_naming([&] { in.attr_int("sizes"); }, {path, "@sizes", "expected a scalar"});
  std::filesystem::remove_all(dir);
}

TEST(H5Test, string_lists_round_trip_and_are_replaced_whole) {
  const std::string dir = test::temp_dir("h5_strings"), path = dir + "/s.h5";
  const std::vector<std::string> many = [] {
    std::vector<std::string> v;
    for (int i = 0; i < 300; ++i)
      v.push_back("class " + std::to_string(i) + std::string(static_cast<size_t>(i % 7), '*'));
    return v;
  }();
  const std::vector<std::string> mixed = {"", "a", std::string(500, 'x'), "caf\xC3\xA9 \xE2\x82\xAC", "tab\there", ""};
  {
    h5::File out = h5::File::create(path);
    out.write_strings("deep/er/many", many);
    out.write_strings("mixed", mixed);
    out.write_strings("one", {"only"});
    out.write_strings("none", {});
    out.write_strings("replaced", {"a much longer first version", "second", "third"});
    out.write_strings("replaced", {"new"});  // a shorter list replaces the dataset
  }
  {
    h5::File in = h5::File::open(path);
    EXPECT_EQ(in.read_strings("deep/er/many"), many);
    EXPECT_EQ(in.read_strings("mixed"), mixed);
    EXPECT_EQ(in.read_strings("one"), std::vector<std::string>{"only"});
    EXPECT_EQ(in.read_strings("none"), std::vector<std::string>{});
    EXPECT_EQ(in.read_strings("replaced"), std::vector<std::string>{"new"});
    EXPECT_EQ(in.shape("deep/er/many"), std::vector<int64_t>{300});
    // A string list is not a tensor, and a tensor is not a string list: both named.
    expect_error_naming([&] { in.read("mixed"); }, {path, "mixed", "unsupported HDF5 element type"});
  }
  h5::File rw = h5::File::open(path, true);
  rw.write("numbers", torch::ones({2}));
  expect_error_naming([&] { rw.read_strings("numbers"); }, {path, "numbers", "not a string dataset"});
  std::filesystem::remove_all(dir);
}

TEST(H5Test, attributes_round_trip_and_are_replaced) {
  const std::string dir = test::temp_dir("h5_attrs"), path = dir + "/a.h5";
  const int64_t two53 = int64_t{1} << 53;  // the largest range where every integer is a double
  {
    h5::File out = h5::File::create(path);
    out.set_attr("zero", int64_t{0});
    out.set_attr("big", two53);
    out.set_attr("neg_big", -two53);
    out.set_attr("tenth", 0.1);
    out.set_attr("neg_zero", -0.0);
    out.set_attr("denormal", 5e-324);
    out.set_attr("inf", std::numeric_limits<double>::infinity());
    out.set_attr("nan", std::numeric_limits<double>::quiet_NaN());
    out.set_attr("empty", std::string());
    out.set_attr("long", std::string(1000, 'y'));
    out.set_attr("utf8", std::string("\xCE\xBB = 0.5"));
    out.set_attr("changes", int64_t{5});
    out.set_attr("changes", std::string("now a string"));  // same name, other type: replaced
    out.set_attr("again", 1.0);
    out.set_attr("again", 2.0);
  }
  h5::File in = h5::File::open(path);
  EXPECT_EQ(in.attr_int("zero"), 0);
  EXPECT_EQ(in.attr_int("big"), two53);
  EXPECT_EQ(in.attr_int("neg_big"), -two53);
  EXPECT_EQ(in.attr_double("big"), 9007199254740992.0);
  EXPECT_EQ(in.attr_double("tenth"), 0.1);
  EXPECT_EQ(in.attr_double("neg_zero"), 0.0);
  EXPECT_TRUE(std::signbit(in.attr_double("neg_zero")));
  EXPECT_EQ(in.attr_double("denormal"), 5e-324);
  EXPECT_EQ(in.attr_double("inf"), std::numeric_limits<double>::infinity());
  EXPECT_TRUE(std::isnan(in.attr_double("nan")));
  EXPECT_EQ(in.attr_string("empty"), "");
  EXPECT_EQ(in.attr_string("long"), std::string(1000, 'y'));
  EXPECT_EQ(in.attr_string("utf8"), "\xCE\xBB = 0.5");
  EXPECT_EQ(in.attr_string("changes"), "now a string");
  EXPECT_EQ(in.attr_double("again"), 2.0);
  EXPECT_TRUE(in.has_attr("zero"));
  EXPECT_FALSE(in.has_attr("absent"));
  // Missing and mistyped attributes are named with the file.
  expect_error_naming([&] { in.attr_int("absent"); }, {path, "@absent", "attribute missing"});
  expect_error_naming([&] { in.attr_string("absent"); }, {path, "@absent", "attribute missing"});
  expect_error_naming([&] { in.attr_string("zero"); }, {path, "@zero", "not a string"});
  expect_error_naming([&] { in.attr_double("changes"); }, {path, "@changes", "not numeric"});
  std::filesystem::remove_all(dir);
}

// Integer attributes are read as int64, not through a double: above 2^53 a double rounds
// (2^53 + 1 would read as 2^53) and INT64_MAX would overflow on the way back.
TEST(H5Test, int64_attributes_above_2_pow_53_round_trip_exactly) {
  const std::string dir = test::temp_dir("h5_int64_attrs"), path = dir + "/i.h5";
  const std::vector<int64_t> values = {(int64_t{1} << 53) + 1, -((int64_t{1} << 53) + 1), int64_t{1234567890123456789},
                                       std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min()};
  {
    h5::File out = h5::File::create(path);
    for (size_t i = 0; i < values.size(); ++i) out.set_attr("v" + std::to_string(i), values[i]);
    const hsize_t n = values.size();
    const hid_t space = H5Screate_simple(1, &n, nullptr);
    const hid_t a = H5Acreate2(out.id(), "all", H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT64, values.data());
    H5Aclose(a);
    H5Sclose(space);
  }
  h5::File in = h5::File::open(path);
  for (size_t i = 0; i < values.size(); ++i) EXPECT_EQ(in.attr_int("v" + std::to_string(i)), values[i]) << i;
  EXPECT_EQ(in.attr_ints("all"), values);
  std::filesystem::remove_all(dir);
}

// A real-valued attribute reads as an integer only when it is one; an unsigned value above
// INT64_MAX is refused rather than wrapped. Both errors name the file and the attribute.
TEST(H5Test, integer_reads_refuse_fractions_and_values_int64_cannot_hold) {
  const std::string dir = test::temp_dir("h5_int_checks"), path = dir + "/c.h5";
  {
    h5::File out = h5::File::create(path);
    out.set_attr("whole", 42.0);
    out.set_attr("half", 2.5);
    const uint64_t big = (uint64_t{1} << 63) + 5;
    const hid_t space = H5Screate(H5S_SCALAR);
    const hid_t a = H5Acreate2(out.id(), "big", H5T_STD_U64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_UINT64, &big);
    H5Aclose(a);
    H5Sclose(space);
  }
  h5::File in = h5::File::open(path);
  EXPECT_EQ(in.attr_int("whole"), 42);
  expect_error_naming([&] { in.attr_int("half"); }, {path, "@half", "not an integer"});
  expect_error_naming([&] { in.attr_int("big"); }, {path, "@big", "does not fit in int64"});
  std::filesystem::remove_all(dir);
}

TEST(H5Test, chunked_writes_and_row_blocks) {
  const std::string dir = test::temp_dir("h5_rows"), path = dir + "/r.h5";
  torch::manual_seed(5);
  const at::Tensor x = torch::randn({6, 2, 3});
  h5::File f = h5::File::create(path);
  // chunk_first_dim: one chunk per row, same values; an empty tensor stays contiguous.
  f.write("chunked", x, /*chunk_first_dim=*/true);
  f.write("plain", x);
  f.write("chunked_empty", torch::zeros({0, 3}), true);
  EXPECT_TRUE(torch::equal(f.read("chunked"), x));
  EXPECT_EQ(layout_of(f, "chunked").first, H5D_CHUNKED);
  EXPECT_EQ(layout_of(f, "chunked").second, (std::vector<hsize_t>{1, 2, 3}));
  EXPECT_EQ(layout_of(f, "plain").first, H5D_CONTIGUOUS);
  EXPECT_NE(layout_of(f, "chunked_empty").first, H5D_CHUNKED);
  EXPECT_EQ(f.read("chunked_empty").sizes(), at::IntArrayRef({0, 3}));

  // Row blocks: written out of order, read back in any block; unwritten rows read as 0.
  f.create_rows("shard/feats", torch::kHalf, {5, 2, 3});
  f.create_rows("shard/ids", torch::kLong, {5});
  EXPECT_EQ(layout_of(f, "shard/feats").second, (std::vector<hsize_t>{1, 2, 3}));
  const at::Tensor h = x.to(torch::kHalf);
  f.write_rows("shard/feats", 3, h.slice(0, 3, 5));
  f.write_rows("shard/feats", 0, h.slice(0, 0, 2));
  f.write_rows("shard/ids", 1, torch::tensor({int64_t{11}, int64_t{12}, int64_t{13}}));
  EXPECT_EQ(f.shape("shard/feats"), (std::vector<int64_t>{5, 2, 3}));
  const at::Tensor mid = f.read_rows("shard/feats", 1, 3);
  EXPECT_EQ(mid.scalar_type(), torch::kHalf);
  EXPECT_TRUE(torch::equal(mid[0], h[1]));
  EXPECT_TRUE(torch::equal(mid[1], torch::zeros({2, 3}, torch::kHalf)));  // row 2 never written
  EXPECT_TRUE(torch::equal(mid[2], h[3]));
  EXPECT_TRUE(torch::equal(f.read("shard/ids"), torch::tensor({0, 11, 12, 13, 0}, torch::kLong)));
  // Rows outside the dataset, and datasets that are not there, are named with the file.
  expect_error_naming([&] { f.read_rows("shard/ids", 4, 2); }, {path, "shard/ids", "rows [4, 6) outside 5 rows"});
  expect_error_naming([&] { f.write_rows("shard/ids", -1, torch::zeros({1}, torch::kLong)); },
                      {path, "shard/ids", "outside"});
  expect_error_naming([&] { f.write_rows("shard/absent", 0, torch::zeros({1})); }, {path, "shard/absent", "missing"});
  expect_error_naming([&] { f.read_rows("shard/absent", 0, 1); }, {path, "shard/absent", "missing"});
  // HDF5 compression is not part of this API (the shards are chunked, uncompressed).
  std::filesystem::remove_all(dir);
}

TEST(H5Test, missing_datasets_groups_and_unwritable_files_are_named) {
  const std::string dir = test::temp_dir("h5_missing"), path = dir + "/m.h5";
  {
    h5::File out = h5::File::create(path);
    out.write("g/x", torch::ones({2}));
    out.write("g/x", torch::arange(3, torch::kLong).view({1, 3}));  // rewritten: new shape and dtype
  }
  {
    h5::File in = h5::File::open(path);
    EXPECT_TRUE(torch::equal(in.read("g/x"), torch::arange(3, torch::kLong).view({1, 3})));
    expect_error_naming([&] { in.read("g/absent"); }, {path, "g/absent", "dataset missing"});
    expect_error_naming([&] { in.read("no/such/group/x"); }, {path, "no/such/group/x", "dataset missing"});
    expect_error_naming([&] { in.read_strings("g/absent"); }, {path, "g/absent", "dataset missing"});
    expect_error_naming([&] { in.shape("g/absent"); }, {path, "g/absent", "dataset missing"});
    expect_error_naming([&] { in.list("g/x"); }, {path, "g/x", "not a group"});
    EXPECT_FALSE(in.exists("no/such/group/x"));  // a missing intermediate group is not an error
    EXPECT_FALSE(in.is_group("no/such"));
    EXPECT_FALSE(in.is_group("g/x"));
    EXPECT_TRUE(in.list("no/such").empty());
    // A file opened read-only refuses writes, naming the file; opened writable it takes them.
    expect_error_naming([&] { in.write("y", torch::ones({1})); }, {path, "y"});
  }
  {
    h5::File rw = h5::File::open(path, /*writable=*/true);
    rw.write("y", torch::ones({1}));
  }
  EXPECT_TRUE(h5::File::open(path).exists("y"));
  // A file that cannot be created names its path.
  expect_error_naming([&] { h5::File::create(dir + "/no_such_dir/c.h5"); },
                      {dir + "/no_such_dir/c.h5", "cannot create"});
  std::filesystem::remove_all(dir);
}
