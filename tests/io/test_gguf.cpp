// The GGUF reader on files built byte by byte: metadata values, tensor shapes (ggml's dimensions
// reversed), dequantization of a known block, and every kind of damage refused with a c3::Error.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>

#include <c10/util/Half.h>

#include "c3/io/gguf.h"
#include "c3/util/error.h"
#include "test_support.h"

namespace c3 {
namespace {

using testing::HasSubstr;

// Little-endian bytes of a GGUF file.
struct Bytes {
  std::string data;
  template <typename T>
  Bytes& put(T v) {
    data.append(reinterpret_cast<const char*>(&v), sizeof v);
    return *this;
  }
  Bytes& str(const std::string& s) { return put<std::uint64_t>(s.size()), data += s, *this; }
};

// A file with metadata (a string, a u32, an array of strings) and two tensors: F32 [2, 3] and one
// Q8_0 block of 32 with d = 0.5 and values -3, -2, ..., 28.
std::string sample_file() {
  Bytes b;
  b.put<std::uint32_t>(0x46554747).put<std::uint32_t>(3).put<std::uint64_t>(2).put<std::uint64_t>(3);
  b.str("general.architecture").put<std::uint32_t>(8).str("llama");
  b.str("llama.block_count").put<std::uint32_t>(4).put<std::uint32_t>(7);
  b.str("tokenizer.ggml.tokens").put<std::uint32_t>(9).put<std::uint32_t>(8).put<std::uint64_t>(2).str("a").str("bc");
  b.str("w").put<std::uint32_t>(2).put<std::uint64_t>(3).put<std::uint64_t>(2).put<std::uint32_t>(0).put<std::uint64_t>(
      0);
  b.str("q").put<std::uint32_t>(1).put<std::uint64_t>(32).put<std::uint32_t>(8).put<std::uint64_t>(32);
  while (b.data.size() % 32) b.data += '\0';
  for (int i = 0; i < 6; ++i) b.put<float>(static_cast<float>(i));
  while (b.data.size() % 32) b.data += '\0';
  b.put<std::uint16_t>(c10::Half(0.5f).x);
  for (int i = 0; i < 32; ++i) b.put<std::int8_t>(static_cast<std::int8_t>(i - 3));
  return b.data;
}

io::ParsedGguf parse(const std::string& bytes) {
  return io::parse_gguf(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), "m.gguf");
}

TEST(Gguf, ReadsMetadataShapesAndDequantizesABlock) {
  const std::string file = sample_file();
  const auto parsed = parse(file);
  EXPECT_EQ(parsed.version, 3u);
  EXPECT_EQ(parsed.metadata["general.architecture"], "llama");
  EXPECT_EQ(parsed.metadata["llama.block_count"], 7);
  EXPECT_EQ(parsed.metadata["tokenizer.ggml.tokens"], nlohmann::json::array({"a", "bc"}));
  ASSERT_EQ(parsed.tensors.size(), 2u);
  EXPECT_EQ(parsed.tensors[0].shape, (std::vector<int64_t>{2, 3})) << "ggml's [3, 2] as PyTorch sees it";
  EXPECT_TRUE(io::dequantize(parsed.tensors[0], "m.gguf").equal(at::arange(6, at::kFloat).view({2, 3})));
  const at::Tensor q = io::dequantize(parsed.tensors[1], "m.gguf");
  EXPECT_TRUE(q.equal((at::arange(32, at::kFloat) - 3) * 0.5));
  test::TempDir dir;
  test::write_bytes(dir / "m.gguf", file);
  const io::GgufReader reader(dir / "m.gguf");
  ASSERT_NE(reader.find("q"), nullptr);
  EXPECT_EQ(reader.find("q")->nbytes, 34u);
}

TEST(Gguf, DamageIsRefusedNamingTheProblem) {
  const std::string file = sample_file();
  auto error = [](const std::string& bytes) { return test::error_of<Error>([&] { parse(bytes); }); };
  EXPECT_THAT(error(file.substr(0, file.size() - 1)), HasSubstr("tensor 'q' (34 bytes at 32) runs past the end"));
  for (size_t cut : {size_t{3}, size_t{20}, size_t{60}, size_t{130}})
    EXPECT_THAT(error(file.substr(0, cut)), HasSubstr("m.gguf:"));
  std::string magic = file;
  magic[0] = 'X';
  EXPECT_THAT(error(magic), HasSubstr("not a GGUF file"));
  std::string version = file;
  version[4] = 1;
  EXPECT_THAT(error(version), HasSubstr("GGUF version 1 is not supported"));
  std::string type = file;
  const size_t q_type = type.find("q\x01") + 1 + 4 + 8;  // the name, n_dims, one dimension, then the type
  type[q_type] = 99;
  EXPECT_THAT(error(type), HasSubstr("tensor 'q' has ggml type 99, which c3 does not know"));
  type[q_type] = 2;  // Q4_0: 18 bytes, fits
  EXPECT_NO_THROW(parse(type));
  type[q_type] = 10;  // Q2_K: blocks of 256, the row of 32 is not whole
  EXPECT_THAT(error(type), HasSubstr("are not whole Q2_K blocks of 256"));
  std::string count = file;
  count[8] = 0x7f, count[15] = 0x7f;  // a tensor count of about 2^63
  EXPECT_THAT(error(count), HasSubstr("claims"));
}

}  // namespace
}  // namespace c3
