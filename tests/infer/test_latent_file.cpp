// Latent files: round trip, what the metadata holds, refusals; SHA-256 against FIPS vectors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "c3/infer/latent_file.h"
#include "c3/io/safetensors.h"
#include "c3/model/c3_io.h"
#include "c3/util/error.h"
#include "c3/util/sha256.h"
#include "test_support.h"

namespace c3 {
namespace {

using testing::HasSubstr;

TEST(Sha256, MatchesTheStandardVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  Sha256 pieces;  // the same bytes fed in uneven pieces across block boundaries
  const std::string million(1000000, 'a');
  for (size_t at = 0; at < million.size(); at += 777)
    pieces.update(million.data() + at, std::min<size_t>(777, million.size() - at));
  EXPECT_EQ(pieces.hex(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

LatentFile example() {
  LatentFile f;
  f.latents = torch::randn({2, 4, 96}).to(at::kBFloat16);
  f.model_fingerprint = "abc123";
  f.source_path = "docs/a.txt";
  f.source_sha256 = sha256_hex("hello");
  f.span_tokens = {700, 312};
  f.span_bytes = {{0, 3000}, {3000, 4410}};
  f.span_joiners = {"\n\n", ""};
  f.prompt_template = "T {latents} {instruction}";
  f.c3_version = "0.test";
  return f;
}

TEST(LatentFile, RoundTripsAndIsPlainSafetensors) {
  test::TempDir dir;
  const LatentFile f = example();
  write_latent_file(dir / "a.txt.c3", f);
  const LatentFile g = read_latent_file(dir / "a.txt.c3");
  EXPECT_TRUE(g.latents.equal(f.latents));
  EXPECT_EQ(g.latents.scalar_type(), at::kBFloat16);
  EXPECT_EQ(g.model_fingerprint, "abc123");
  EXPECT_EQ(g.span_tokens, f.span_tokens);
  EXPECT_EQ(g.span_bytes, f.span_bytes);
  EXPECT_EQ(g.span_joiners, f.span_joiners);
  EXPECT_EQ(g.source_sha256, f.source_sha256);
  EXPECT_EQ(g.prompt_template, f.prompt_template);
  EXPECT_EQ(g.latent_tokens(), 4);
  io::SafetensorsReader reader(dir / "a.txt.c3");  // any safetensors reader sees one tensor
  ASSERT_EQ(reader.tensors().size(), 1u);
  EXPECT_EQ(reader.tensors()[0].name, "latents");
  EXPECT_EQ(reader.metadata().at("format"), "c3-latents");
}

TEST(LatentFile, RefusesWhatItCannotTrust) {
  test::TempDir dir;
  io::write_safetensors(dir / "plain.safetensors", {}, {{"format", "pt"}});
  try {
    read_latent_file(dir / "plain.safetensors");
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("plain.safetensors: not a c3 latent file"));
  }
  LatentFile f = example();
  f.span_tokens.pop_back();
  EXPECT_THROW(write_latent_file(dir / "bad.c3", f), Error);
  EXPECT_FALSE(std::filesystem::exists(dir / "bad.c3"));
}

TEST(LatentFile, FingerprintsTellModelsApart) {
  C3Model a(test::tiny_c3_config(3)), b(test::tiny_c3_config(3)), c(test::tiny_c3_config(4));
  a->init_weights(1), b->init_weights(1), c->init_weights(1);
  EXPECT_EQ(a->fingerprint(), b->fingerprint());
  EXPECT_EQ(a->fingerprint().size(), 64u);
  EXPECT_NE(a->fingerprint(), c->fingerprint()) << "another N";
  {
    torch::NoGradGuard no_grad;
    b->projector->bias[0] += 1e-3;
  }
  EXPECT_NE(a->fingerprint(), b->fingerprint()) << "another projector";
}

// A checkpoint keeps its fingerprint in whatever dtype it is loaded; training it changes it.
TEST(LatentFile, TheFingerprintIsTheCheckpointsInAnyDtype) {
  C3Model a(test::tiny_c3_config(3));
  a->init_weights(1);
  test::TempDir dir;
  save_c3(a, dir / "m", {}, "");  // in the dtype it has: float32
  C3LoadOptions bf16, f32;
  bf16.dtype = at::kBFloat16, f32.dtype = at::kFloat;
  C3Model loaded_bf16 = load_c3(dir / "m", bf16), loaded_f32 = load_c3(dir / "m", f32);
  EXPECT_EQ(loaded_f32->fingerprint(), a->fingerprint());
  EXPECT_EQ(loaded_bf16->fingerprint(), a->fingerprint());
  EXPECT_NE(c3_fingerprint(loaded_bf16->config(), loaded_bf16->query, loaded_bf16->projector->weight,
                           loaded_bf16->projector->bias),
            a->fingerprint())
      << "the bf16 weights themselves hash differently: the test can tell";
  {
    torch::NoGradGuard no_grad;
    loaded_bf16->query[0][0] += 1;  // as an optimizer step does, in place
  }
  EXPECT_NE(loaded_bf16->fingerprint(), a->fingerprint()) << "a changed Q is another model";
}

}  // namespace
}  // namespace c3
