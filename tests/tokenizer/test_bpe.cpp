// Qwen2 byte-level BPE against Hugging Face-generated vectors, across the three file layouts.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <tuple>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "c3/io/checkpoint_dir.h"
#include "c3/tokenizer/bpe.h"
#include "c3/tokenizer/unicode.h"
#include "c3/util/atomic_file.h"
#include "c3/util/error.h"
#include "test_support.h"

namespace c3 {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::HasSubstr;

const fs::path kData = fs::path(C3_TEST_DATA) / "qwen2-tokenizer";

std::string base64(const std::string& bytes) {
  static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8) | uint8_t(bytes[i + 2]);
    out += {a[v >> 18], a[(v >> 12) & 63], a[(v >> 6) & 63], a[v & 63]};
  }
  if (bytes.size() - i == 1) {
    const uint32_t v = uint8_t(bytes[i]) << 16;
    out += {a[v >> 18], a[(v >> 12) & 63], '=', '='};
  } else if (bytes.size() - i == 2) {
    const uint32_t v = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8);
    out += {a[v >> 18], a[(v >> 12) & 63], a[(v >> 6) & 63], '='};
  }
  return out;
}

std::string spelled(const std::string& bytes) {
  std::string s;
  for (unsigned char c : bytes) s += unicode::byte_to_unicode()[c];
  return s;
}

// The Qwen2.5 tokenizer in all three layouts, built once from the shipped vocab.json + merges.txt.
class Qwen2Tokenizers : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    const json added = io::read_json_file(kData / "added_tokens_qwen2.5.json");
    // vocab.json + merges.txt + tokenizer_config.json (added_tokens_decoder), as HF saves them.
    fs::create_directories(dir_->path() / "vm");
    fs::copy(kData / "vocab.json", dir_->path() / "vm" / "vocab.json");
    fs::copy(kData / "merges.txt", dir_->path() / "vm" / "merges.txt");
    json decoder = json::object();
    for (const auto& t : added) decoder[std::to_string(t["id"].get<int>())] = t;
    write_file_atomically(dir_->path() / "vm" / "tokenizer_config.json",
                          json{{"added_tokens_decoder", decoder}}.dump());
    vm_ = load_tokenizer(dir_->path() / "vm").release();
    auto& bpe = dynamic_cast<BpeTokenizer&>(*vm_);

    // tokenizer.json, the HF fast format, with the Qwen2 normalizer and pre-tokenizer.
    json vocab = json::object(), merges = json::array();
    for (size_t id = 0; id < 151643; ++id) vocab[spelled(bpe.token_bytes()[id])] = id;
    for (const auto& [l, r] : bpe.merges())
      merges.push_back(json::array({spelled(bpe.token_bytes()[l]), spelled(bpe.token_bytes()[r])}));
    json tj = {{"version", "1.0"},
               {"added_tokens", added},
               {"normalizer", {{"type", "NFC"}}},
               {"pre_tokenizer",
                {{"type", "Sequence"},
                 {"pretokenizers", json::array({{{"type", "Split"},
                                                 {"pattern", {{"Regex", kQwen2Pattern}}},
                                                 {"behavior", "Isolated"},
                                                 {"invert", false}},
                                                {{"type", "ByteLevel"},
                                                 {"add_prefix_space", false},
                                                 {"trim_offsets", false},
                                                 {"use_regex", false}}})}}},
               {"decoder", {{"type", "ByteLevel"}}},
               {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}}};
    write_file_atomically(dir_->path() / "tokenizer.json", tj.dump());
    json_ = load_tokenizer(dir_->path() / "tokenizer.json").release();

    // qwen.tiktoken: base64 of each token's bytes and its rank (= id).
    std::string tk;
    for (size_t id = 0; id < 151643; ++id) tk += base64(bpe.token_bytes()[id]) + " " + std::to_string(id) + "\n";
    write_file_atomically(dir_->path() / "qwen.tiktoken", tk);
    tiktoken_ = load_tokenizer(dir_->path() / "qwen.tiktoken").release();
  }
  static void TearDownTestSuite() {
    delete vm_;
    delete json_;
    delete tiktoken_;
    delete dir_;
  }
  static test::TempDir* dir_;
  static Tokenizer *vm_, *json_, *tiktoken_;
};
test::TempDir* Qwen2Tokenizers::dir_ = nullptr;
Tokenizer* Qwen2Tokenizers::vm_ = nullptr;
Tokenizer* Qwen2Tokenizers::json_ = nullptr;
Tokenizer* Qwen2Tokenizers::tiktoken_ = nullptr;

std::vector<int32_t> parse_ids(const std::string& line) {
  std::vector<int32_t> ids;
  std::istringstream in(line);
  int32_t id;
  while (in >> id) ids.push_back(id);
  return ids;
}

TEST_F(Qwen2Tokenizers, MatchesEveryHuggingFaceVectorInEveryLayout) {
  const std::string inp = test::read_bytes(kData / "llamacpp-ggml-vocab-qwen2.gguf.inp");
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  for (size_t pos = 0, next; (next = inp.find(sep, pos)) != std::string::npos; pos = next + sep.size())
    texts.push_back(inp.substr(pos, next - pos));
  std::istringstream out(test::read_bytes(kData / "llamacpp-ggml-vocab-qwen2.gguf.out"));
  std::vector<std::vector<int32_t>> expected;
  for (std::string line; std::getline(out, line);) expected.push_back(parse_ids(line));
  ASSERT_EQ(texts.size(), 46u);
  ASSERT_EQ(expected.size(), texts.size());
  int passed = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    for (const Tokenizer* t : {vm_, json_, tiktoken_})
      EXPECT_EQ(t->encode(texts[i]), expected[i]) << "vector " << i << " via " << t->source();
    passed += vm_->encode(texts[i]) == expected[i];
  }
  EXPECT_EQ(passed, 46);
}

TEST_F(Qwen2Tokenizers, SpecialTokenCases) {
  const json cases = io::read_json_file(kData / "special_token_cases.json");
  ASSERT_EQ(cases.size(), 4u);
  for (const auto& c : cases) {
    const auto want = c["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(vm_->encode(c["text"].get<std::string>()), want) << c["text"];
    EXPECT_EQ(json_->encode(c["text"].get<std::string>()), want) << c["text"];
  }
  // The spec's example of the \s+(?!\S) lookahead.
  EXPECT_EQ(vm_->encode("hello   world"), (std::vector<int32_t>{14990, 256, 1879}));
  EXPECT_EQ(vm_->token_id("<|im_end|>"), 151645);
  EXPECT_EQ(tiktoken_->token_id("<imgpad>"), 151859);  // the released C3/GOT table
  EXPECT_EQ(tiktoken_->token_id("<|extra_204|>"), 151850);
  // Documents read special-token strings as text (HF checks the ids, tests/hf); added tokens that
  // are not special (<tool_call> in Qwen2.5) are still matched.
  const std::string doc = "a<|im_end|>b<tool_call>";
  for (const Tokenizer* tok : {vm_, json_}) {
    const auto plain = tok->encode_text(doc);
    EXPECT_EQ(std::count(plain.begin(), plain.end(), 151645), 0);
    EXPECT_EQ(std::count(plain.begin(), plain.end(), 151657), 1) << "<tool_call> is an added token, not special";
    EXPECT_EQ(tok->decode(plain), doc);
    const auto special = tok->encode(doc);
    EXPECT_EQ(std::count(special.begin(), special.end(), 151645), 1);
  }
}

TEST_F(Qwen2Tokenizers, AdversarialTextRoundTripsAndAgreesAcrossLayouts) {
  const std::vector<std::string> cases = {"",
                                          " ",
                                          "\n",
                                          "   \n\n  \t\t x",
                                          "a\r\nb\r\n\r\n",
                                          "1234567890 3.14159 1,000,000",
                                          "DON'T You'LL we'Re it'S",
                                          "naïve café",
                                          "e\xCC\x81"
                                          "cole",  // e + combining acute: NFC composes it
                                          "中文分词测试，你好世界",
                                          "日本語のテキスト",
                                          "🙂👍🏽 emoji 🇫🇷",
                                          "<|im_start|>glued<|im_end|>text<|endoftext|>",
                                          "<|im_start|><|im_start|>",
                                          "<|im_start",
                                          "tabs\tand\vvertical\fforms",
                                          std::string(300, ' ') + "x",
                                          std::string(5000, 'a'),
                                          "    leading and trailing    "};
  for (const auto& text : cases) {
    const auto ids = vm_->encode(text);
    EXPECT_EQ(json_->encode(text), ids) << text;
    EXPECT_EQ(tiktoken_->encode(text), ids) << text;
    EXPECT_EQ(vm_->decode(ids), unicode::nfc(text)) << text;
  }
  EXPECT_TRUE(vm_->encode("").empty());
  EXPECT_EQ(vm_->encode("e\xCC\x81"), vm_->encode("\xC3\xA9")) << "NFC before BPE";
  EXPECT_EQ(vm_->encode("\n\n\n"), vm_->encode("\n\n\n"));
}

TEST_F(Qwen2Tokenizers, InvalidUtf8IsReplacedNotFatal) {
  const auto ids = vm_->encode("ok \xFF\xFE bytes \xE2\x82");
  EXPECT_EQ(vm_->decode(ids), "ok \xEF\xBF\xBD\xEF\xBF\xBD bytes \xEF\xBF\xBD");
  // Decoding the byte token 0xC3 alone (a lead byte without its continuation) gives U+FFFD, as
  // Python's errors="replace" does.
  auto& bpe = dynamic_cast<const BpeTokenizer&>(*vm_);
  int32_t byte_c3 = -1;
  for (size_t id = 0; id < 300; ++id)
    if (bpe.token_bytes()[id] == "\xC3") byte_c3 = static_cast<int32_t>(id);
  ASSERT_GE(byte_c3, 0);
  EXPECT_EQ(vm_->decode({byte_c3}), "\xEF\xBF\xBD");
}

TEST_F(Qwen2Tokenizers, DecodeSkipsSpecialTokensOnRequest) {
  const auto ids = vm_->encode("<|im_start|>user\nhi<|im_end|>");
  EXPECT_EQ(vm_->decode(ids), "<|im_start|>user\nhi<|im_end|>");
  EXPECT_EQ(vm_->decode(ids, /*skip_special=*/true), "user\nhi");
  EXPECT_THROW(vm_->decode({-1}), Error);
  EXPECT_THROW(vm_->decode({1 << 30}), Error);
}

TEST(Unicode, ReplacementFollowsMaximalSubparts) {
  EXPECT_EQ(unicode::replace_invalid_utf8("a\xF0\x9F\x99z"), "a\xEF\xBF\xBDz");  // truncated 4-byte: one U+FFFD
  EXPECT_EQ(unicode::replace_invalid_utf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_EQ(unicode::replace_invalid_utf8("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");                  // overlong
  EXPECT_EQ(unicode::replace_invalid_utf8("ok \xE2\x82\xAC"), "ok \xE2\x82\xAC");
  EXPECT_TRUE(unicode::is_valid_utf8("\xF0\x9F\x99\x82"));
  EXPECT_FALSE(unicode::is_valid_utf8("\xF4\x90\x80\x80"));  // above U+10FFFF
}

// ---- malformed files: one line naming the file and the problem
void expect_load_error(const fs::path& path, const std::vector<std::string>& parts) {
  try {
    load_tokenizer(path);
    ADD_FAILURE() << "loaded " << path;
  } catch (const Error& e) {
    for (const auto& p : parts) EXPECT_THAT(e.what(), HasSubstr(p));
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
  }
}

std::string tiny_vocab() {
  json v = json::object();
  for (int b = 0; b < 256; ++b) v[unicode::byte_to_unicode()[b]] = b;
  v[spelled("ab")] = 256;
  return v.dump();
}

// A vocabulary without a token for some bytes (SmolLM2's has none for most control bytes): HF's BPE
// drops such a byte when there is no unk_token, and its neighbours still merge; with one, the byte is
// that token (HF tokenizers gives [97, 300, 98] for this file). Options c3 does not implement are
// refused, not approximated.
TEST(TokenizerFiles, BytesWithoutATokenAreDroppedAndUnsupportedBpeOptionsRefused) {
  test::TempDir dir;
  json vocab = json::parse(tiny_vocab());
  vocab.erase(unicode::byte_to_unicode()[0x07]);
  json doc = {
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array({spelled("a") + " " + spelled("b")})}}},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}},
      {"decoder", {{"type", "ByteLevel"}}}};
  test::write_bytes(dir / "t.json", doc.dump());
  EXPECT_EQ(load_tokenizer(dir / "t.json")
                ->encode("a\x07"
                         "b"),
            (std::vector<int32_t>{256}))
      << "dropped, then a+b merge";
  json with_unk = doc;
  with_unk["model"]["vocab"]["<unk>"] = 300;
  with_unk["model"]["unk_token"] = "<unk>";
  test::write_bytes(dir / "unk.json", with_unk.dump());
  EXPECT_EQ(load_tokenizer(dir / "unk.json")
                ->encode("a\x07"
                         "b"),
            (std::vector<int32_t>{97, 300, 98}));
  for (const auto& [key, value, message] : std::vector<std::tuple<std::string, json, std::string>>{
           {"byte_fallback", true, "byte_fallback=true with a ByteLevel pre-tokenizer is not supported"},
           {"dropout", 0.1, "BPE dropout 0.1 is not supported"},
           {"unk_token", "<unk>", "unk_token '<unk>' is not in the vocabulary"}}) {
    json bad = doc;
    bad["model"][key] = value;
    test::write_bytes(dir / "bad.json", bad.dump());
    expect_load_error(dir / "bad.json", {"bad.json", message});
  }
}

TEST(TokenizerFiles, MalformedInputsAreNamed) {
  test::TempDir dir;
  fs::create_directories(dir / "a");
  test::write_bytes(dir / "a" / "vocab.json", "{not json");
  test::write_bytes(dir / "a" / "merges.txt", "a b\n");
  expect_load_error(dir / "a", {"vocab.json", "invalid JSON"});

  fs::create_directories(dir / "b");
  test::write_bytes(dir / "b" / "vocab.json", tiny_vocab());
  test::write_bytes(dir / "b" / "merges.txt", "#version: 0.2\na b\na zz\n");
  expect_load_error(dir / "b", {"merges.txt:3", "'zz'", "not in the vocabulary"});
  test::write_bytes(dir / "b" / "merges.txt", "a b c\n");
  expect_load_error(dir / "b", {"merges.txt:1", "left right"});
  test::write_bytes(dir / "b" / "merges.txt", "b a\n");
  expect_load_error(dir / "b", {"merges.txt:1", "missing from the vocabulary"});
  test::write_bytes(dir / "b" / "merges.txt", "a b\n");
  EXPECT_EQ(load_tokenizer(dir / "b")->encode("abab"), (std::vector<int32_t>{256, 256}));

  test::write_bytes(dir / "x.tiktoken", "YQ== 0\n!!!! 1\n");
  expect_load_error(dir / "x.tiktoken", {"x.tiktoken:2", "bad base64"});
  test::write_bytes(dir / "y.tiktoken", "YQ== 0\nYg== 0\n");
  expect_load_error(dir / "y.tiktoken", {"y.tiktoken:2", "rank 0 appears twice"});
  test::write_bytes(dir / "z.tiktoken", "YQ== 0\n");
  expect_load_error(dir / "z.tiktoken", {"z.tiktoken", "no token for byte"});

  test::write_bytes(dir / "tokenizer.json", R"({"model": {"type": "Unigram", "vocab": []}})");
  expect_load_error(dir / "tokenizer.json", {"tokenizer.json", "model type 'Unigram' is not supported"});
  test::write_bytes(
      dir / "t2.json",
      R"({"model": {"type": "BPE", "vocab": {}, "merges": []}, "pre_tokenizer": {"type": "Punctuation"}})");
  expect_load_error(dir / "t2.json", {"t2.json", "pre_tokenizer 'Punctuation' is not supported"});
  expect_load_error(dir / "missing-folder", {"missing-folder", "no such file"});
  fs::create_directories(dir / "empty");
  expect_load_error(dir / "empty", {"empty", "no tokenizer"});
  test::write_bytes(dir / "bad.model", "not a model");
  expect_load_error(dir / "bad.model", {"bad.model", "not a sentencepiece model"});
}

// Counts and sizes read from a file are capped before anything is allocated for them.
TEST(TokenizerFiles, AbsurdIdsAndSizesAreErrorsNotAllocations) {
  test::TempDir dir;
  fs::create_directories(dir / "ids");
  json vocab = json::parse(tiny_vocab());
  vocab[spelled("ab")] = 2000000000;  // honoured, a table of 2e9 tokens (64 GB)
  test::write_bytes(dir / "ids" / "vocab.json", vocab.dump());
  test::write_bytes(dir / "ids" / "merges.txt", "a b\n");
  expect_load_error(dir / "ids", {"vocab.json", "has id 2000000000, expected an integer from 0 to 16777215"});
  test::write_bytes(dir / "ids" / "vocab.json", tiny_vocab());
  test::write_bytes(dir / "ids" / "tokenizer_config.json",
                    R"({"added_tokens_decoder": {"99999999999": {"content": "<x>"}}})");
  expect_load_error(dir / "ids", {"tokenizer_config.json", "99999999999"});
  test::write_bytes(dir / "ids" / "tokenizer_config.json",
                    R"({"added_tokens_decoder": {"300": {"content": "<x>", "special": "yes"}}})");
  expect_load_error(dir / "ids", {"tokenizer_config.json", "unexpected JSON"});
  fs::remove(dir / "ids" / "tokenizer_config.json");
  test::write_bytes(dir / "ids" / "added_tokens.json", R"({"<x>": -1})");
  expect_load_error(dir / "ids", {"added_tokens.json", "'<x>' has id -1"});
  test::write_bytes(dir / "big.tiktoken", "YQ== 4294967296\n");
  expect_load_error(dir / "big.tiktoken", {"big.tiktoken:1", "bad rank"});
  // A file larger than any tokenizer (sparse: nothing is written) is refused before it is read.
  test::write_bytes(dir / "tokenizer.json", "{}");
  fs::resize_file(dir / "tokenizer.json", std::uintmax_t{300} << 20);
  expect_load_error(dir / "tokenizer.json", {"tokenizer.json", "314572800 bytes, more than the 256 MiB"});
}

TEST(C3Tokens, AddedToAPlainQwen25TokenizerAsTheAuthorsDid) {
  test::TempDir dir;
  fs::create_directories(dir / "qwen2.5");
  fs::copy_file(kData / "vocab.json", dir / "qwen2.5" / "vocab.json");
  fs::copy_file(kData / "merges.txt", dir / "qwen2.5" / "merges.txt");
  json added = json::object();
  for (const auto& t : io::read_json_file(kData / "added_tokens_qwen2.5.json"))
    added[t["content"].get<std::string>()] = t["id"];
  test::write_bytes(dir / "qwen2.5" / "added_tokens.json", added.dump());
  const auto plain = load_tokenizer(dir / "qwen2.5");
  ASSERT_EQ(plain->vocab_size(), 151665);
  EXPECT_FALSE(plain->token_id("<imgpad>"));
  fs::create_directories(dir / "c3");
  const auto written = write_tokenizer_with_c3_tokens(dir / "qwen2.5", *plain, dir / "c3");
  ASSERT_EQ(written.size(), 3u);
  const auto c3tok = load_tokenizer(dir / "c3");
  EXPECT_EQ(*c3tok->token_id("<imgpad>"), 151665);
  EXPECT_EQ(*c3tok->token_id("<img>"), 151666);
  EXPECT_EQ(*c3tok->token_id("</img>"), 151667);
  EXPECT_EQ(c3tok->encode("x<img><imgpad></img>"), (std::vector<int32_t>{87, 151666, 151665, 151667}));
  EXPECT_EQ(c3tok->encode("Hello world"), plain->encode("Hello world"));
  fs::create_directories(dir / "again");
  EXPECT_TRUE(write_tokenizer_with_c3_tokens(dir / "c3", *c3tok, dir / "again").empty()) << "nothing missing";
}

}  // namespace
}  // namespace c3
