#include "c3/util/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "c3/util/error.h"
#include "test_support.h"

namespace c3 {
namespace {

using testing::HasSubstr;

Config make() {
  Config c;
  c.declare("train.lr", 1e-5, "learning rate");
  c.declare("train.steps", 100, "steps");
  c.declare("train.name", "run", "name");
  c.declare("train.bf16", true, "bf16");
  c.declare("runtime.device", "auto", "device", {"cpu", "cuda", "auto"});
  return c;
}

std::string usage_error(const std::function<void()>& f) { return test::error_of<UsageError>(f); }

TEST(Config, DefaultsThenFileThenSetInPriorityOrder) {
  test::TempDir dir;
  test::write_bytes(dir / "a.json", R"({"train": {"lr": 3e-4, "steps": 5}})");
  test::write_bytes(dir / "b.json", R"({"train": {"steps": 7}})");
  Config c = make();
  c.merge_file((dir / "a.json").string());
  c.merge_file((dir / "b.json").string());
  EXPECT_EQ(c.get<double>("train.lr"), 3e-4);
  EXPECT_EQ(c.get<int>("train.steps"), 7);
  c.set_assignment("train.steps=9");
  c.set_assignment("train.name=hello world");
  c.set_assignment("train.lr=1");  // an integer is a valid number
  EXPECT_EQ(c.get<int>("train.steps"), 9);
  EXPECT_EQ(c.get<std::string>("train.name"), "hello world");
  EXPECT_EQ(c.get<double>("train.lr"), 1.0);
  EXPECT_EQ(c.dump()["train"]["bf16"], true);
}

TEST(Config, UnknownKeysAndWrongTypesNameTheKeyAndFile) {
  test::TempDir dir;
  test::write_bytes(dir / "bad.json", R"({"train": {"lrr": 1}})");
  Config c = make();
  auto msg = usage_error([&] { c.merge_file((dir / "bad.json").string()); });
  EXPECT_THAT(msg, HasSubstr("bad.json"));
  EXPECT_THAT(msg, HasSubstr("'train.lrr'"));
  test::write_bytes(dir / "type.json", R"({"train": {"steps": "many"}})");
  msg = usage_error([&] { c.merge_file((dir / "type.json").string()); });
  EXPECT_THAT(msg, HasSubstr("'train.steps' must be an integer"));
  EXPECT_THAT(usage_error([&] { c.set_assignment("train.steps=1.5"); }), HasSubstr("must be an integer"));
  EXPECT_THAT(usage_error([&] { c.set_assignment("train.bf16=yes"); }), HasSubstr("must be a boolean"));
  EXPECT_THAT(usage_error([&] { c.set_assignment("nokey"); }), HasSubstr("section.key=value"));
  EXPECT_THAT(usage_error([&] { c.set_assignment("runtime.device=tpu"); }), HasSubstr("one of cpu, cuda, auto"));
  test::write_bytes(dir / "flat.json", R"({"steps": 3})");
  EXPECT_THAT(usage_error([&] { c.merge_file((dir / "flat.json").string()); }), HasSubstr("must be a section"));
  test::write_bytes(dir / "broken.json", R"({"train": )");
  EXPECT_THAT(usage_error([&] { c.merge_file((dir / "broken.json").string()); }), HasSubstr("invalid JSON"));
  EXPECT_THAT(usage_error([&] { c.merge_file((dir / "missing.json").string()); }), HasSubstr("no such file"));
  EXPECT_EQ(c.get<int>("train.steps"), 100) << "a rejected file changes nothing it rejected";
}

}  // namespace
}  // namespace c3
