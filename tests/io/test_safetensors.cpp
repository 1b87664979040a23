#include "c3/io/safetensors.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>

#include "c3/util/error.h"
#include "test_support.h"

using c3::io::DType;
using c3::io::SafetensorsReader;
using c3::test::TempDir;
using testing::HasSubstr;

namespace {

std::string le64(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return s;
}

// A file as the Python library writes it: length, JSON header padded with spaces to 8, data.
std::string file_bytes(std::string header, const std::string& data, bool pad = true) {
  if (pad) header.append((8 - header.size() % 8) % 8, ' ');
  return le64(header.size()) + header + data;
}

std::string floats(std::initializer_list<float> values) {
  std::string s;
  for (float v : values) s.append(reinterpret_cast<const char*>(&v), 4);
  return s;
}

// Expects reading `bytes` to fail with a message naming the file and containing `problem`.
void expect_rejected(const std::string& bytes, const std::string& problem) {
  TempDir dir;
  const auto path = dir / "bad.safetensors";
  c3::test::write_bytes(path, bytes);
  try {
    SafetensorsReader reader(path);
    ADD_FAILURE() << "accepted a corrupt file; expected: " << problem;
  } catch (const c3::Error& e) {
    EXPECT_THAT(e.what(), HasSubstr(path.string()));
    EXPECT_THAT(e.what(), HasSubstr(problem));
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << "error must be one line";
  }
}

TEST(Safetensors, ReadsBytesLaidOutAsThePythonLibraryWritesThem) {
  TempDir dir;
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
      R"("b":{"dtype":"BF16","shape":[3],"data_offsets":[16,22]}})";
  const std::string bf16 = std::string("\x80\x3f\x00\x40\x40\x40", 6);  // 1.0, 2.0, 3.0
  c3::test::write_bytes(dir / "x.safetensors", file_bytes(header, floats({1, 2, 3, 4}) + bf16));
  SafetensorsReader r(dir / "x.safetensors");
  ASSERT_EQ(r.tensors().size(), 2u);
  EXPECT_EQ(r.metadata().at("format"), "pt");
  const auto& w = r.at("w");
  EXPECT_EQ(w.dtype, DType::F32);
  EXPECT_EQ(w.shape, (std::vector<int64_t>{2, 2}));
  float values[4];
  std::memcpy(values, w.data, 16);
  EXPECT_EQ(values[3], 4.0f);
  const auto& b = r.at("b");
  EXPECT_EQ(b.dtype, DType::BF16);
  EXPECT_EQ(b.nbytes(), 6u);
  EXPECT_EQ(std::memcmp(b.data, bf16.data(), 6), 0);
  EXPECT_EQ(r.find("missing"), nullptr);
  EXPECT_THROW(r.at("missing"), c3::Error);
}

TEST(Safetensors, WriterProducesTheReferenceLayoutByteForByte) {
  TempDir dir;
  const int64_t i64 = 7;
  const float f32 = 1.5f;
  const uint16_t bf16[2] = {0x3f80, 0x4000};
  std::vector<c3::io::TensorBytes> tensors{
      {"b", DType::BF16, {2}, bf16, 4}, {"a", DType::F32, {1}, &f32, 4}, {"c", DType::I64, {}, &i64, 8}};
  c3::io::write_safetensors(dir / "out.safetensors", tensors, {{"format", "pt"}});
  // Reference writer order: widest dtype first (I64, F32, BF16), then by name; metadata first.
  const std::string header = R"({"__metadata__":{"format":"pt"},"c":{"dtype":"I64","shape":[],"data_offsets":[0,8]},)"
                             R"("a":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},)"
                             R"("b":{"dtype":"BF16","shape":[2],"data_offsets":[12,16]}})";
  const std::string data = std::string(reinterpret_cast<const char*>(&i64), 8) +
                           std::string(reinterpret_cast<const char*>(&f32), 4) +
                           std::string(reinterpret_cast<const char*>(bf16), 4);
  const std::string expected = file_bytes(header, data);
  EXPECT_EQ(expected.size() % 8, 0u);
  EXPECT_EQ(c3::test::read_bytes(dir / "out.safetensors"), expected);
}

TEST(Safetensors, RoundTripsEveryDtype) {
  TempDir dir;
  const DType all[] = {DType::BOOL, DType::U8,  DType::I8,  DType::I16, DType::U16, DType::F16, DType::BF16,
                       DType::I32,  DType::U32, DType::F32, DType::F64, DType::I64, DType::U64};
  std::vector<std::string> payloads;
  std::vector<c3::io::TensorBytes> tensors;
  for (DType d : all) {
    const size_t n = 3 * c3::io::dtype_size(d);
    std::string bytes(n, '\0');
    for (size_t i = 0; i < n; ++i)
      bytes[i] = static_cast<char>((i * 37 + static_cast<int>(d)) & (d == DType::BOOL ? 1 : 0xff));
    payloads.push_back(bytes);
  }
  for (size_t i = 0; i < std::size(all); ++i)
    tensors.push_back(
        {"t_" + std::string(c3::io::dtype_name(all[i])), all[i], {3}, payloads[i].data(), payloads[i].size()});
  c3::io::write_safetensors(dir / "all.safetensors", tensors, {{"k", "v"}});
  SafetensorsReader r(dir / "all.safetensors");
  ASSERT_EQ(r.tensors().size(), std::size(all));
  for (size_t i = 0; i < std::size(all); ++i) {
    const auto& t = r.at(tensors[i].name);
    EXPECT_EQ(t.dtype, all[i]);
    EXPECT_EQ(t.shape, std::vector<int64_t>{3});
    ASSERT_EQ(t.nbytes(), payloads[i].size());
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(t.data), t.nbytes()), payloads[i]) << tensors[i].name;
    EXPECT_EQ(c3::io::parse_dtype(c3::io::dtype_name(all[i])), all[i]);
  }
  EXPECT_EQ(r.metadata().at("k"), "v");
}

TEST(Safetensors, EvictedTensorsStayReadable) {
  TempDir dir;
  std::vector<float> big(1 << 16);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<float>(i);
  c3::io::write_safetensors(dir / "big.safetensors", {{"x", DType::F32, {1 << 16}, big.data(), big.size() * 4}});
  SafetensorsReader r(dir / "big.safetensors");
  r.evict(r.at("x"));
  EXPECT_EQ(std::memcmp(r.at("x").data, big.data(), big.size() * 4), 0);
}

TEST(Safetensors, EmptyAndZeroSizedTensors) {
  TempDir dir;
  std::vector<c3::io::TensorBytes> tensors{{"empty", DType::F32, {0, 4}, nullptr, 0}};
  c3::io::write_safetensors(dir / "e.safetensors", tensors);
  SafetensorsReader r(dir / "e.safetensors");
  EXPECT_EQ(r.at("empty").numel(), 0);
  c3::io::write_safetensors(dir / "none.safetensors", {});
  EXPECT_TRUE(SafetensorsReader(dir / "none.safetensors").tensors().empty());
}

TEST(Safetensors, WriterRejectsInconsistentInputAndLeavesNoFile) {
  TempDir dir;
  float v = 0;
  EXPECT_THROW(c3::io::write_safetensors(dir / "x.safetensors", {{"a", DType::F32, {2}, &v, 4}}), c3::Error);
  EXPECT_THROW(
      c3::io::write_safetensors(dir / "x.safetensors", {{"a", DType::F32, {1}, &v, 4}, {"a", DType::F32, {1}, &v, 4}}),
      c3::Error);
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

const std::string kGood = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";

TEST(SafetensorsCorrupt, ShorterThanTheLengthField) { expect_rejected("abc", "shorter than the 8-byte header length"); }
TEST(SafetensorsCorrupt, EmptyFile) { expect_rejected("", "shorter than the 8-byte header length"); }

TEST(SafetensorsCorrupt, AbsurdHeaderLength) { expect_rejected(le64(1ull << 60) + "{}", "exceeds the"); }

TEST(SafetensorsCorrupt, HeaderLongerThanTheFile) { expect_rejected(le64(4096) + kGood, "runs past the end"); }

TEST(SafetensorsCorrupt, TruncatedData) { expect_rejected(file_bytes(kGood, floats({1})), "past the"); }

TEST(SafetensorsCorrupt, NotJson) { expect_rejected(file_bytes("{not json", ""), "not valid JSON"); }

TEST(SafetensorsCorrupt, HeaderNotAnObject) { expect_rejected(file_bytes("[1,2]", ""), "not a JSON object"); }

TEST(SafetensorsCorrupt, UnknownDtype) {
  expect_rejected(file_bytes(R"({"a":{"dtype":"F7","shape":[2],"data_offsets":[0,8]}})", floats({1, 2})),
                  "unknown dtype 'F7'");
}

TEST(SafetensorsCorrupt, OffsetsOutOfBounds) {
  expect_rejected(file_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", floats({1, 2})),
                  "past the 8-byte data section");
}

TEST(SafetensorsCorrupt, OffsetsReversed) {
  expect_rejected(file_bytes(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", floats({1, 2})),
                  "begin 8 > end 0");
}

TEST(SafetensorsCorrupt, OverlappingTensors) {
  expect_rejected(file_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                             R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                             floats({1, 2})),
                  "overlaps");
}

TEST(SafetensorsCorrupt, GapBetweenTensors) {
  expect_rejected(file_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", floats({1, 2})),
                  "gap of 4 bytes");
}

TEST(SafetensorsCorrupt, TrailingBytesNotDescribed) {
  expect_rejected(file_bytes(kGood, floats({1, 2, 3})), "not described by the header");
}

TEST(SafetensorsCorrupt, ByteSizeDisagreesWithShape) {
  expect_rejected(file_bytes(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", floats({1, 2})), "needs 12");
}

TEST(SafetensorsCorrupt, DuplicateNames) {
  expect_rejected(file_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                             R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                             floats({1, 2})),
                  "appears twice");
}

TEST(SafetensorsCorrupt, NegativeOrFractionalShape) {
  expect_rejected(file_bytes(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", floats({1, 2})),
                  "non-negative integers");
  expect_rejected(file_bytes(R"({"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", floats({1, 2})),
                  "non-negative integers");
}

TEST(SafetensorsCorrupt, ShapeOverflow) {
  expect_rejected(
      file_bytes(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,8]}})", floats({1, 2})),
      "overflows");
}

TEST(SafetensorsCorrupt, MetadataMustBeStrings) {
  expect_rejected(
      file_bytes(R"({"__metadata__":{"n":1},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", floats({1, 2})),
      "__metadata__.n is not a string");
}

TEST(SafetensorsCorrupt, MissingFileIsNamed) {
  try {
    SafetensorsReader r("/nonexistent/x.safetensors");
    ADD_FAILURE();
  } catch (const c3::Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("/nonexistent/x.safetensors: cannot open"));
  }
}

}  // namespace
