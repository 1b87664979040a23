// tokenizer.json's text steps on hand-checked cases: the regex iterator's empty-match rule, the five
// Split behaviours, Metaspace's prepend schemes, the decoder chain and the post-processor. (The same
// steps run against Hugging Face tokenizers on real text in tests/hf/test_tokenizer_pipelines.py.)
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "c3/tokenizer/regex.h"
#include "c3/tokenizer/text_pipeline.h"
#include "c3/util/error.h"

namespace c3 {
namespace {

using nlohmann::json;
using testing::ElementsAre;
using testing::HasSubstr;

std::vector<std::pair<size_t, size_t>> matches(const std::string& pattern, const std::string& text) {
  std::vector<std::pair<size_t, size_t>> out;
  Regex(pattern, "t.json").find_all(text, [&](size_t s, size_t e) { out.emplace_back(s, e); });
  return out;
}

std::vector<std::string> pieces(const json& pre_tokenizer, const std::string& text, bool at_start = true) {
  json doc = {{"pre_tokenizer", pre_tokenizer}};
  if (pre_tokenizer["type"] == "ByteLevel") doc["decoder"] = {{"type", "ByteLevel"}};
  const TextPipeline p = TextPipeline::from_tokenizer_json(doc, "t.json");
  std::vector<std::string> out;
  p.pre_tokenize(text, at_start, [&](std::string_view piece) { out.emplace_back(piece); });
  return out;
}

json split(const std::string& behavior, bool invert = false) {
  return {{"type", "Split"}, {"pattern", {{"String", " "}}}, {"behavior", behavior}, {"invert", invert}};
}

TEST(Regex, AnEmptyMatchRightAfterAMatchIsSkippedAsOnigurumaDoes) {
  // a* on "baab": empty at 0, "aa" at 1..3, then no empty match at 3 (right after it), empty at 4.
  EXPECT_THAT(matches("a*", "baab"), ElementsAre(std::pair{0u, 0u}, std::pair{1u, 3u}, std::pair{4u, 4u}));
  EXPECT_THAT(matches("\\p{N}", "x1\xE2\x85\xA0"), ElementsAre(std::pair{1u, 2u}, std::pair{2u, 5u}));  // Ⅰ is Nl
  EXPECT_THROW(Regex("(open", "t.json"), Error);
}

TEST(PreTokenizer, SplitKeepsWhatItsBehaviourSays) {
  EXPECT_THAT(pieces(split("Removed"), "a b  c"), ElementsAre("a", "b", "c"));
  EXPECT_THAT(pieces(split("Isolated"), "a b  c"), ElementsAre("a", " ", "b", " ", " ", "c"));
  EXPECT_THAT(pieces(split("MergedWithPrevious"), "a b  c"), ElementsAre("a ", "b ", " ", "c"));
  EXPECT_THAT(pieces(split("MergedWithNext"), "a b  c"), ElementsAre("a", " b", " ", " c"));
  EXPECT_THAT(pieces(split("Contiguous"), "a b  c"), ElementsAre("a", " ", "b", "  ", "c"));
  EXPECT_THAT(pieces(split("Removed", true), "a b  c"), ElementsAre(" ", " ", " "));
}

TEST(PreTokenizer, MetaspacePrependsWhereItsSchemeSays) {
  const json first = {
      {"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"prepend_scheme", "first"}, {"split", true}};
  EXPECT_THAT(pieces(first, "a b"), ElementsAre("\xE2\x96\x81"
                                                "a",
                                                "\xE2\x96\x81"
                                                "b"));
  EXPECT_THAT(pieces(first, "a b", false), ElementsAre("a",
                                                       "\xE2\x96\x81"
                                                       "b"));  // not where the input began
  json never = first;
  never["prepend_scheme"] = "never";
  never["split"] = false;
  EXPECT_THAT(pieces(never, "a b"), ElementsAre("a\xE2\x96\x81"
                                                "b"));
}

TEST(PreTokenizer, DigitsAndByteLevelPrefixSpace) {
  EXPECT_THAT(pieces({{"type", "Digits"}, {"individual_digits", true}}, "a12b"), ElementsAre("a", "1", "2", "b"));
  EXPECT_THAT(pieces({{"type", "Digits"}, {"individual_digits", false}}, "a12b"), ElementsAre("a", "12", "b"));
  EXPECT_THAT(pieces({{"type", "ByteLevel"}, {"add_prefix_space", true}, {"use_regex", true}}, "hi you"),
              ElementsAre(" hi", " you"));
}

TEST(Normalizer, StepsRunInOrder) {
  const json n = {{"type", "Sequence"},
                  {"normalizers", json::array({{{"type", "NFKC"}},
                                               {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "_"}},
                                               {{"type", "Prepend"}, {"prepend", ">"}}})}};
  const TextPipeline p = TextPipeline::from_tokenizer_json({{"normalizer", n}}, "t.json");
  EXPECT_EQ(p.normalize("\xEF\xAC\x81 x"), ">fi_x");  // the ligature ﬁ under NFKC
  EXPECT_EQ(p.normalize(""), "");                     // Prepend leaves empty text empty
}

TEST(Decoder, TheLlama2ChainAndMetaspace) {
  const json chain = {
      {"type", "Sequence"},
      {"decoders", json::array({{{"type", "Replace"}, {"pattern", {{"String", "\xE2\x96\x81"}}}, {"content", " "}},
                                {{"type", "ByteFallback"}},
                                {{"type", "Fuse"}},
                                {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}})}};
  const TextPipeline p = TextPipeline::from_tokenizer_json({{"decoder", chain}}, "t.json");
  EXPECT_EQ(p.decode({"\xE2\x96\x81"
                      "a",
                      "<0xE2>", "<0x82>", "<0xAC>",
                      "\xE2\x96\x81"
                      "b"}),
            "a\xE2\x82\xAC b");
  EXPECT_EQ(p.decode({"<0xE2>", "<0x82>", "x"}), "\xEF\xBF\xBD\xEF\xBF\xBDx");  // one U+FFFD per byte token
  const TextPipeline m = TextPipeline::from_tokenizer_json(
      {{"decoder", {{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"prepend_scheme", "first"}}}}, "t.json");
  EXPECT_EQ(m.decode({"\xE2\x96\x81\xE2\x96\x81"
                      "a",
                      "\xE2\x96\x81"
                      "b"}),
            "a b");
}

TEST(PostProcessor, TemplateAndBertTokens) {
  const json t = {
      {"type", "TemplateProcessing"},
      {"single", json::array({{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                              {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                              {{"SpecialToken", {{"id", "</s>"}, {"type_id", 0}}}}})},
      {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {1}}}}, {"</s>", {{"id", "</s>"}, {"ids", {2}}}}}}};
  const TextPipeline p = TextPipeline::from_tokenizer_json({{"post_processor", t}}, "t.json");
  EXPECT_THAT(p.prefix_ids(), ElementsAre(1));
  EXPECT_THAT(p.suffix_ids(), ElementsAre(2));
  const TextPipeline b = TextPipeline::from_tokenizer_json(
      {{"post_processor", {{"type", "BertProcessing"}, {"sep", {"[SEP]", 3}}, {"cls", {"[CLS]", 4}}}}}, "t.json");
  EXPECT_THAT(b.prefix_ids(), ElementsAre(4));
  EXPECT_THAT(b.suffix_ids(), ElementsAre(3));
}

TEST(TextPipeline, WhatC3DoesNotImplementIsRefusedByName) {
  const auto error = [](const json& doc) {
    try {
      TextPipeline::from_tokenizer_json(doc, "t.json");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_THAT(error({{"normalizer", {{"type", "BertNormalizer"}}}}), HasSubstr("t.json: normalizer 'BertNormalizer'"));
  EXPECT_THAT(error({{"pre_tokenizer", {{"type", "Punctuation"}}}}), HasSubstr("pre_tokenizer 'Punctuation'"));
  EXPECT_THAT(error({{"pre_tokenizer", {{"type", "ByteLevel"}}}}),
              HasSubstr("needs a decoder that starts with ByteLevel"));
  EXPECT_THAT(error({{"pre_tokenizer", split("Sideways")}}), HasSubstr("behavior 'Sideways'"));
  EXPECT_THAT(error({{"post_processor",
                      {{"type", "TemplateProcessing"}, {"single", json::array({{{"Sequence", {{"id", "B"}}}}})}}}}),
              HasSubstr("other than A"));
}

}  // namespace
}  // namespace c3
