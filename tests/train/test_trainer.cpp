// The trainer end to end on CPU: it learns, it resumes exactly, frozen parts stay frozen, and
// divergence stops the run.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include "c3/infer/codec.h"
#include "c3/model/c3_io.h"
#include "c3/model/qwen2_io.h"
#include "c3/train/checkpoints.h"
#include "c3/train/trainer.h"
#include "c3/util/error.h"
#include "test_support.h"
#include "train/train_setup.h"

namespace c3 {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct Corpus {
  test::TempDir dir;
  std::vector<std::string> texts;
  Corpus(int count, int words, int vocab_size = 600) : texts(test::random_texts(count, words, 11)) {
    test::write_jsonl(dir / "train.jsonl", texts);
    test::train_test_tokenizer(test::random_texts(400, 10, 99), dir / "tok", vocab_size);
  }
};

TrainSettings tiny_settings(const Corpus& corpus, const std::string& output) {
  TrainSettings s;
  s.encoder = s.decoder = "preset:tiny";
  s.tokenizer = (corpus.dir / "tok").string();
  s.latent_tokens = 8;
  s.train_files = {(corpus.dir / "train.jsonl").string()};
  s.validation_file = s.train_files[0];  // precision on the training samples themselves
  s.lr = 3e-3;
  s.warmup_steps = 10;
  s.batch_size = 8;
  s.grad_accum = 1;
  s.steps = 10;
  s.log_every = 1;
  s.eval_every = 0;
  s.save_every = 1000;
  s.progress = false;
  s.output = (corpus.dir / output).string();
  return s;
}

std::vector<json> metrics(const fs::path& output, const std::string& type) {
  std::ifstream in(output / "metrics.jsonl");
  std::vector<json> out;
  std::string line;
  while (std::getline(in, line)) {
    auto j = json::parse(line);
    if (j["type"] == type) out.push_back(j);
  }
  return out;
}

// Learning, for real: a from-scratch C3 reconstructs random word sequences it can only know from
// the latents (the words carry no pattern; the untrained model scores ~0).
TEST(Trainer, LearnsToReconstructItsTrainingSamples) {
  Corpus corpus(32, 10);
  TrainSettings s = tiny_settings(corpus, "run");
  s.steps = 400;
  s.log_every = 20;
  s.eval_every = 100;
  s.eval_precision_samples = 32;
  LocalCommunicator comm;
  ASSERT_EQ(train(s, at::kCPU, comm), 0);
  const auto evals = metrics(s.output, "validation");
  ASSERT_EQ(evals.size(), 5u);  // steps 0, 100, 200, 300, 400
  for (const auto& e : evals)
    std::printf("step %4lld  loss %.4f  precision %.3f\n", e["step"].get<long long>(),
                e["validation_loss"].get<double>(), e["validation_precision"].get<double>());
  EXPECT_LT(evals.front()["validation_precision"].get<double>(), 0.05);
  EXPECT_GT(evals.back()["validation_precision"].get<double>(), 0.90);
  EXPECT_LT(evals.back()["validation_loss"].get<double>(), 0.25 * evals.front()["validation_loss"].get<double>());
}

// fp32, and bf16 weights with fp32 masters, moments and gradient sums: all of it must be restored.
class TrainerResume : public testing::TestWithParam<std::string> {};

TEST_P(TrainerResume, GivesTheSameLossesStepForStep) {
  Corpus corpus(24, 8);
  TrainSettings a = tiny_settings(corpus, "straight");
  a.steps = 12, a.grad_accum = 2, a.batch_size = 4, a.save_every = 4, a.keep_checkpoints = 5;
  a.dtype = GetParam();
  TrainSettings b = a;
  b.output = (corpus.dir / "interrupted").string();
  LocalCommunicator comm;
  ASSERT_EQ(train(a, at::kCPU, comm), 0);
  ASSERT_EQ(train(b, at::kCPU, comm), 0);
  // A crash (SIGKILL) while step 8's checkpoint was being saved: it stayed a hidden staging
  // folder (of a process id above Linux's pid_max, so surely dead), and step 12 never happened.
  fs::remove_all(checkpoint_path(b.output, 12));
  const fs::path half_saved = fs::path(b.output) / ".checkpoint-8.tmp-99999999-5eed";
  fs::rename(checkpoint_path(b.output, 8), half_saved);
  ASSERT_EQ(list_checkpoints(b.output).size(), 1u);
  ASSERT_EQ(train(b, at::kCPU, comm), 0);
  EXPECT_FALSE(fs::exists(half_saved)) << "the resumed run cleans up after the killed one";
  const auto la = metrics(a.output, "train"), lb = metrics(b.output, "train");
  ASSERT_EQ(la.size(), 12u);
  ASSERT_EQ(lb.size(), 12u) << "the interrupted run's later records were replaced, not duplicated";
  for (size_t i = 0; i < la.size(); ++i) {
    EXPECT_EQ(lb[i]["step"], la[i]["step"]);
    EXPECT_EQ(lb[i]["loss"].get<double>(), la[i]["loss"].get<double>()) << "step " << i + 1;
  }
  C3Model ma = load_c3(checkpoint_path(a.output, 12)), mb = load_c3(checkpoint_path(b.output, 12));
  for (const auto& item : ma->named_parameters()) EXPECT_TRUE(item.value().equal(mb->named_parameters()[item.key()]));
  EXPECT_NE(la[0]["loss"].get<double>(), la[11]["loss"].get<double>()) << "the run did train";
}

INSTANTIATE_TEST_SUITE_P(Dtype, TrainerResume, testing::Values("float32", "bfloat16"));

// Reconstruction and continuation mixed: each task's loss is logged, validation measures the
// continuation loss, and a resumed run draws the same tasks and examples as the straight one.
TEST(Trainer, MixedTasksLogEachTasksLossAndResumeExactly) {
  Corpus corpus(6, 60);  // documents of ~60 words, cut into pieces of 12-24 tokens
  TrainSettings a = tiny_settings(corpus, "straight");
  a.sampling.min_tokens = 12, a.sampling.max_tokens = 24;
  a.tasks = {{"reconstruct", 0.5}, {"continue", 0.5}};
  a.context_spans = 3;
  a.steps = 8, a.batch_size = 4, a.save_every = 4, a.keep_checkpoints = 5;
  a.eval_every = 4, a.eval_at_start = false, a.eval_precision_samples = 0;
  TrainSettings b = a;
  b.output = (corpus.dir / "interrupted").string();
  LocalCommunicator comm;
  ASSERT_EQ(train(a, at::kCPU, comm), 0);
  ASSERT_EQ(train(b, at::kCPU, comm), 0);
  fs::remove_all(checkpoint_path(b.output, 8));
  ASSERT_EQ(train(b, at::kCPU, comm), 0);
  const auto la = metrics(a.output, "train"), lb = metrics(b.output, "train");
  ASSERT_EQ(la.size(), 8u);
  ASSERT_EQ(lb.size(), 8u);
  int with_both = 0;
  for (size_t i = 0; i < la.size(); ++i) {
    EXPECT_EQ(lb[i]["loss"].get<double>(), la[i]["loss"].get<double>()) << "step " << i + 1;
    EXPECT_EQ(lb[i]["loss_continue"], la[i]["loss_continue"]) << "step " << i + 1;
    with_both += la[i]["loss_reconstruct"].is_number() && la[i]["loss_continue"].is_number();
  }
  EXPECT_GE(with_both, 4) << "steps of 4 rows drawn half and half mostly hold both tasks";
  const auto valid = metrics(a.output, "validation");
  ASSERT_EQ(valid.size(), 2u);
  EXPECT_TRUE(valid[0]["validation_loss_continue"].is_number()) << "the validation file's documents continue too";
  EXPECT_EQ(metrics(b.output, "validation").back()["validation_loss_continue"],
            valid.back()["validation_loss_continue"]);
  // Only reconstruction: no per-task fields, as before.
  TrainSettings c = tiny_settings(corpus, "plain");
  c.steps = 2;
  ASSERT_EQ(train(c, at::kCPU, comm), 0);
  EXPECT_FALSE(metrics(c.output, "train")[0].contains("loss_reconstruct"));
  // A continuation that cannot fit the decoder window is refused before training.
  TrainSettings d = a;
  d.output = (corpus.dir / "too-long").string();
  d.max_length = 150;  // room for one block and 24 tokens, not three blocks
  EXPECT_THAT(test::error_of<UsageError>([&] { train(d, at::kCPU, comm); }), testing::HasSubstr("data.context_spans"));
}

// Instruct records beside reconstruction: their rows train (loss_instruct), and a weight without
// records is refused.
TEST(Trainer, InstructRecordsTrainBesideReconstruction) {
  Corpus corpus(12, 12);
  std::ofstream records(corpus.dir / "qa.jsonl");
  for (const auto& text : corpus.texts)
    records
        << json{{"context", text}, {"instruction", "First word? "}, {"answer", text.substr(0, text.find(' '))}}.dump()
        << "\n";
  records.close();
  TrainSettings s = tiny_settings(corpus, "qa");
  s.tasks = {{"reconstruct", 1}, {"instruct", 1}};
  s.instruct_files = {(corpus.dir / "qa.jsonl").string()};
  s.sampling.min_tokens = 6, s.sampling.max_tokens = 10;  // contexts of two or three pieces
  s.steps = 4;
  s.eval_every = 2, s.eval_precision_samples = 16;
  LocalCommunicator comm;
  EXPECT_THAT(test::error_of<UsageError>([&] { train(s, at::kCPU, comm); }),
              testing::HasSubstr("data.instruct_validation_records is 16 but data.instruct holds only 12 records"));
  s.instruct_validation_records = 4;  // 8 records train, 4 validate
  ASSERT_EQ(train(s, at::kCPU, comm), 0);
  int instruct = 0;
  for (const auto& record : metrics(s.output, "train")) instruct += record["loss_instruct"].is_number();
  EXPECT_GE(instruct, 3);
  const auto validations = metrics(s.output, "validation");
  ASSERT_EQ(validations.size(), 3u);  // steps 0, 2, 4
  for (const auto& v : validations) {
    EXPECT_GT(v["validation_loss_instruct"].get<double>(), 0);
    EXPECT_EQ(v["instruct_samples"], 4) << "the held-out records, answered from their latents";
    EXPECT_GE(v["validation_instruct_f1"].get<double>(), v["validation_instruct_exact_match"].get<double>());
    EXPECT_LE(v["validation_instruct_f1"].get<double>(), 1.0);
  }
  // Held-out records of their own: all 12 validate (and all 12 train).
  TrainSettings held = s;
  held.output = (corpus.dir / "held").string();
  held.instruct_validation_files = s.instruct_files;
  held.steps = 1;
  ASSERT_EQ(train(held, at::kCPU, comm), 0);
  EXPECT_EQ(metrics(held.output, "validation").at(0)["instruct_samples"], 12);
  TrainSettings none = s;
  none.output = (corpus.dir / "none").string();
  none.instruct_files.clear();
  EXPECT_THAT(test::error_of<UsageError>([&] { train(none, at::kCPU, comm); }), testing::HasSubstr("data.instruct"));
}

// A warm start from a tiny C3 checkpoint whose weights we know (`initial`, saved in DIR/init).
struct WarmStart {
  C3Model initial{nullptr};
  TrainSettings settings;
  WarmStart(const Corpus& corpus, const std::string& output) {
    C3Config config = test::tiny_c3_config(8);
    const auto tok = load_tokenizer(corpus.dir / "tok");
    config.encoder.vocab_size = config.decoder.vocab_size = tok->vocab_size();
    initial = C3Model(config);
    initial->init_weights(21);
    save_c3(initial, corpus.dir / "init", {}, corpus.dir / "tok");
    settings = tiny_settings(corpus, output);
    settings.encoder = settings.decoder = settings.tokenizer = "";
    settings.checkpoint = (corpus.dir / "init").string();
    settings.validation_file = "", settings.validation_samples = 2;
  }
};

TEST(Trainer, FrozenPartsStayBitIdenticalAndLrScalesApply) {
  Corpus corpus(16, 8);
  WarmStart warm(corpus, "frozen");
  C3Model& initial = warm.initial;
  TrainSettings& s = warm.settings;
  s.steps = 3;
  s.frozen = {"decoder"};
  s.lr_scale = {{"projector", 0.0}};
  LocalCommunicator comm;
  ASSERT_EQ(train(s, at::kCPU, comm), 0);
  C3Model trained = load_c3(checkpoint_path(s.output, 3));
  for (C3Part part : all_c3_parts()) {
    bool all_equal = true;
    auto before = initial->part_parameters(part);
    auto after = trained->part_parameters(part);
    for (size_t i = 0; i < before.size(); ++i) all_equal = all_equal && before[i].second.equal(after[i].second);
    const bool should_change = part == C3Part::encoder || part == C3Part::query;
    EXPECT_EQ(all_equal, !should_change) << c3_part_name(part);
  }
  EXPECT_TRUE(fs::exists(checkpoint_path(s.output, 3) / "tokenizer.model")) << "tokenizer travels with the model";
}

// model.projector_init whiten: a new run starts from a projector that removes each slot's mean and
// hands the decoder latents at its mean embedding norm; nothing else moves (all else frozen, lr 0).
TEST(Trainer, WhitenedProjectorStartsAtTheDecodersEmbeddingNorm) {
  Corpus corpus(48, 8);
  WarmStart warm(corpus, "whiten");
  C3Model& initial = warm.initial;
  TrainSettings& s = warm.settings;
  s.steps = 1;
  s.frozen = {"decoder", "encoder", "projector"};
  s.lr_scale = {{"query", 0.0}};
  s.projector_init = "whiten";
  LocalCommunicator comm;
  ASSERT_EQ(train(s, at::kCPU, comm), 0);

  C3Codec whitened = C3Codec::load(s.output);
  EXPECT_FALSE(whitened.model()->projector->weight.equal(initial->projector->weight));
  EXPECT_TRUE(whitened.model()->query.equal(initial->query));
  std::vector<std::vector<int32_t>> ids;
  for (const auto& text : corpus.texts) ids.push_back(whitened.tokenizer().encode(text));
  std::vector<const std::vector<int32_t>*> texts;
  for (const auto& row : ids) texts.push_back(&row);
  const at::Tensor latents = whitened.compress(texts);                        // [48, 8, hidden]
  const at::Tensor before = initial->projector(whitened.slot_states(texts));  // the authors' init
  const double embedding_norm = initial->decoder->model->embed_tokens->weight.norm(2, -1).mean().item<double>();
  EXPECT_NEAR(latents.norm(2, -1).mean().item<double>() / embedding_norm, 1.0, 0.1);
  // Each slot's mean is what the whitening removes: small beside the latents, unlike before.
  const double slot_mean = latents.mean(0).norm(2, -1).mean().item<double>();
  EXPECT_LT(slot_mean / latents.norm(2, -1).mean().item<double>(), 0.3);
  EXPECT_GT(before.mean(0).norm(2, -1).mean().item<double>() / before.norm(2, -1).mean().item<double>(), 0.5);
}

TEST(Trainer, DivergenceStopsWithAClearError) {
  Corpus corpus(16, 8);
  TrainSettings s = tiny_settings(corpus, "diverge");
  s.lr = 1e30, s.clip_norm = 0, s.warmup_steps = 0, s.steps = 50, s.max_bad_steps = 2, s.validation_samples = 2;
  s.validation_file = "";
  LocalCommunicator comm;
  try {
    train(s, at::kCPU, comm);
    FAIL() << "expected the run to stop";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), testing::HasSubstr("non-finite loss or gradient in 2 consecutive steps"));
  }
  const auto records = metrics(s.output, "train");
  ASSERT_FALSE(records.empty());
  EXPECT_LT(records.back()["step"].get<int64_t>(), 50);
}

TEST(Trainer, BadSettingsAreRefusedBeforeAnythingIsWritten) {
  Corpus corpus(16, 8);
  LocalCommunicator comm;
  TrainSettings s = tiny_settings(corpus, "bad");
  s.batch_size = 0;
  EXPECT_THROW(train(s, at::kCPU, comm), UsageError);
  s = tiny_settings(corpus, "bad");
  s.frozen = {"encoder", "query", "projector", "decoder"};
  EXPECT_THROW(train(s, at::kCPU, comm), UsageError);
  s = tiny_settings(corpus, "bad");
  s.frozen = {"everything"};
  EXPECT_THROW(train(s, at::kCPU, comm), UsageError);
  s = tiny_settings(corpus, "bad");
  s.train_files = {(corpus.dir / "nope.jsonl").string()};
  EXPECT_THROW(train(s, at::kCPU, comm), Error);
  test::write_bytes(corpus.dir / "empty.jsonl", "\n");
  s.train_files = {(corpus.dir / "empty.jsonl").string()};
  EXPECT_THROW(train(s, at::kCPU, comm), Error);
  EXPECT_FALSE(fs::exists(corpus.dir / "bad")) << "no output folder for a run that never started";
}

// The common real-world start: two Hugging Face Qwen2 folders whose tokenizer is Qwen2.5's, which
// has no image tokens yet.
TEST(Trainer, StartsFromTwoQwen2FoldersAndAddsTheImageTokens) {
  Corpus corpus(8, 6);
  const fs::path data = fs::path(C3_TEST_DATA) / "qwen2-tokenizer";
  Qwen2Config small = test::tiny_config();
  small.vocab_size = 151936;  // Qwen2.5's embedding rows
  Qwen2Config wider = small;
  wider.hidden_size = 96, wider.num_attention_heads = 6, wider.intermediate_size = 192;
  Qwen2ForCausalLM encoder(small), decoder(wider);
  encoder->init_weights(1), decoder->init_weights(2);
  save_qwen2(encoder, corpus.dir / "Qwen2.5-tiny-enc");
  save_qwen2(decoder, corpus.dir / "Qwen2.5-tiny-dec");
  fs::copy_file(data / "vocab.json", corpus.dir / "Qwen2.5-tiny-dec" / "vocab.json");
  fs::copy_file(data / "merges.txt", corpus.dir / "Qwen2.5-tiny-dec" / "merges.txt");
  json added = json::object();
  for (const auto& t : json::parse(test::read_bytes(data / "added_tokens_qwen2.5.json")))
    added[t["content"].get<std::string>()] = t["id"];
  test::write_bytes(corpus.dir / "Qwen2.5-tiny-dec" / "added_tokens.json", added.dump());

  TrainSettings s = tiny_settings(corpus, "from-hf");
  s.encoder = (corpus.dir / "Qwen2.5-tiny-enc").string();
  s.decoder = (corpus.dir / "Qwen2.5-tiny-dec").string();
  s.tokenizer = "";
  s.validation_file = "", s.validation_samples = 2;
  s.batch_size = 2, s.steps = 2;
  LocalCommunicator comm;
  ASSERT_EQ(train(s, at::kCPU, comm), 0);
  const fs::path ckpt = checkpoint_path(s.output, 2);
  const auto tokens = json::parse(test::read_bytes(ckpt / "added_tokens.json"));
  EXPECT_EQ(tokens["<imgpad>"], 151665);
  EXPECT_EQ(tokens["<img>"], 151666);
  EXPECT_EQ(tokens["</img>"], 151667);
  C3Model model = load_c3(ckpt);
  EXPECT_EQ(model->config().encoder.hidden_size, 64);
  EXPECT_EQ(model->config().decoder.hidden_size, 96);
  EXPECT_EQ(model->config().decoder.vocab_size, 151936);
  EXPECT_FALSE(model->encoder->model->layers[0]->as<Qwen2DecoderLayer>()->mlp->up_proj->weight.equal(
      encoder->model->layers[0]->as<Qwen2DecoderLayer>()->mlp->up_proj->weight))
      << "the encoder trained";
}

}  // namespace
}  // namespace c3

namespace c3 {
namespace {

TEST(StagedFolder, RemovesTheFoldersOfProcessesThatAreGone) {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ASSERT_GT(child, 0);
  ::waitpid(child, nullptr, 0);  // reaped: no process has that id now
  const fs::path temp = fs::temp_directory_path();
  const fs::path orphan = temp / ("c3-staged-" + std::to_string(child) + "-1"),
                 live = temp / ("c3-staged-" + std::to_string(::getpid()) + "-test");
  const fs::path junk = temp / "c3-staged-99999999999999999999999-x";  // not a process id: left alone
  fs::create_directories(orphan / "inside");
  fs::create_directories(live);
  fs::create_directories(junk);
  fs::path made;
  {
    const train_setup::StagedFolder staged;
    made = staged.path();
    EXPECT_TRUE(fs::is_directory(made));
    EXPECT_FALSE(fs::exists(orphan)) << "its process is gone";
    EXPECT_TRUE(fs::exists(live)) << "a running process's folder stays";
  }
  EXPECT_FALSE(fs::exists(made));
  EXPECT_TRUE(fs::exists(junk));
  fs::remove_all(live);
  fs::remove_all(junk);
}

}  // namespace
}  // namespace c3
