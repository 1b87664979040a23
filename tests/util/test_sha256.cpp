#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

#include "c3/util/error.h"
#include "c3/util/sha256.h"
#include "test_support.h"

namespace c3 {
namespace {

TEST(Sha256, MatchesTheFipsVectors) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

// SHA-256 over the digests of 64 MiB chunks, whatever the number of threads.
TEST(Sha256, ChunkedFileDigestHashesTheChunkDigestsInOrder) {
  test::TempDir dir;
  const std::size_t chunk = std::size_t{64} << 20;
  std::string bytes(chunk + 12345, '\0');
  std::mt19937_64 rng(7);
  for (auto& b : bytes) b = static_cast<char>(rng());
  test::write_bytes(dir / "big.bin", bytes);
  const std::string expected = sha256_hex(sha256_hex(std::string_view(bytes).substr(0, chunk)) +
                                          sha256_hex(std::string_view(bytes).substr(chunk)));
  EXPECT_EQ(chunked_file_digest(dir / "big.bin", 1), expected);
  EXPECT_EQ(chunked_file_digest(dir / "big.bin", 3), expected);
  test::write_bytes(dir / "empty.bin", "");
  EXPECT_EQ(chunked_file_digest(dir / "empty.bin", 2), sha256_hex(""));
  EXPECT_THAT(test::error_of<Error>([&] { chunked_file_digest(dir / "missing.bin", 1); }),
              testing::HasSubstr("missing.bin: cannot open"));
}

}  // namespace
}  // namespace c3
