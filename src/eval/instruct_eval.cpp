#include "c3/eval/instruct_eval.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <map>
#include <sstream>

#include "c3/eval/eval_run.h"
#include "c3/eval/result_journal.h"
#include "c3/util/atomic_file.h"
#include "c3/util/dtype.h"
#include "c3/util/error.h"
#include "c3/util/output_record.h"
#include "c3/util/sha256.h"
#include "c3/util/status_line.h"
#include "c3/version.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace c3 {
namespace {

bool is_word_byte(unsigned char c) { return std::isalnum(c) || c == '_' || c >= 0x80; }

// Python's string.punctuation.
bool is_punctuation(unsigned char c) { return c < 0x80 && std::ispunct(c); }

std::vector<std::string> normalized_tokens(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream words(squad_normalize(text));
  for (std::string w; words >> w;) out.push_back(w);
  return out;
}

}  // namespace

std::string squad_normalize(const std::string& text) {
  std::string s;
  for (unsigned char c : text)
    if (!is_punctuation(c)) s += static_cast<char>(c < 0x80 ? std::tolower(c) : c);
  // re.sub(r'\b(a|an|the)\b', ' ', s)
  std::string no_articles;
  for (size_t i = 0; i < s.size();) {
    bool removed = false;
    if (i == 0 || !is_word_byte(static_cast<unsigned char>(s[i - 1])))
      for (const std::string article : {"the", "an", "a"}) {
        const size_t end = i + article.size();
        if (s.compare(i, article.size(), article) == 0 &&
            (end == s.size() || !is_word_byte(static_cast<unsigned char>(s[end])))) {
          no_articles += ' ', i = end, removed = true;
          break;
        }
      }
    if (!removed) no_articles += s[i++];
  }
  // ' '.join(s.split())
  std::string out;
  std::istringstream words(no_articles);
  for (std::string w; words >> w;) out += (out.empty() ? "" : " ") + w;
  return out;
}

bool squad_exact_match(const std::string& prediction, const std::string& truth) {
  return squad_normalize(prediction) == squad_normalize(truth);
}

double squad_f1(const std::string& prediction, const std::string& truth) {
  const auto p = normalized_tokens(prediction), t = normalized_tokens(truth);
  std::map<std::string, int64_t> counts;
  for (const auto& w : t) ++counts[w];
  int64_t same = 0;
  for (const auto& w : p)
    if (counts[w]-- > 0) ++same;
  if (same == 0) return 0.0;
  const double precision = static_cast<double>(same) / static_cast<double>(p.size());
  const double recall = static_cast<double>(same) / static_cast<double>(t.size());
  return 2 * precision * recall / (precision + recall);
}

namespace {

constexpr const char* kContexts[] = {"latents", "text", "none"};
constexpr const char* kAnswersJournal = "answers.partial.jsonl";

std::string record_digest(const InstructRecord& r) {
  return sha256_hex(r.context + '\0' + r.instruction + '\0' + r.answer);
}

// A journaled answer is current when its record is still read, from the same place, the same.
ResultJournal::StillCurrent record_unchanged(const std::vector<InstructRecord>& records, size_t count) {
  std::map<std::string, std::string> digests;
  for (size_t i = 0; i < count; ++i) digests[records[i].origin] = record_digest(records[i]);
  return ResultJournal::input_unchanged(std::move(digests), "record", "record_sha256");
}

// One record answered from its context's latents, its text and nothing, each answer scored.
json answer_record(C3Codec& codec, const InstructRecord& r, const InstructEvalRun& run) {
  const Tokenizer& tokenizer = codec.tokenizer();
  const C3Prompt prompt(tokenizer, codec.model()->config().latent_tokens, codec.prompt().prompt_template(),
                        r.instruction);
  std::vector<std::vector<int32_t>> pieces;
  std::vector<int32_t> text;
  for (auto& span : cut_spans(r.context, tokenizer, run.span_tokens)) {
    text.insert(text.end(), span.ids.begin(), span.ids.end());
    pieces.push_back(std::move(span.ids));
  }
  if (pieces.empty()) fail_file(r.origin, "the context is empty");
  C3Example latents, plain, none;
  latents.prompt = plain.prompt = none.prompt = &prompt;
  plain.context_text = &text;
  for (const auto& piece : pieces) latents.context.push_back(&piece);
  json record{{"record", r.origin},           {"record_sha256", record_digest(r)},
              {"instruction", r.instruction}, {"answer", r.answer},
              {"spans", pieces.size()},       {"context_tokens", text.size()}};
  int64_t generated = 0;
  const std::vector<C3Example> rows{latents, plain, none};
  for (size_t c = 0; c < rows.size(); ++c) {  // one at a time: the contexts differ in length a lot
    const auto ids = generate_answers(codec.model(), {rows[c]}, run.generate)[0];
    generated += static_cast<int64_t>(ids.size());
    const std::string answer = decode_reconstruction(tokenizer, ids);
    record[kContexts[c]] = {{"prediction", answer},
                            {"exact_match", squad_exact_match(answer, r.answer)},
                            {"f1", squad_f1(answer, r.answer)}};
  }
  record["generated_tokens"] = generated;
  return record;
}

std::string report_markdown(const json& summary) {
  std::string md = "# Instructions answered from latents\n\n";
  md += fmt::format(
      "Model `{}` ({} latents per span), data `{}`: {} records, contexts cut into spans of at most {} tokens "
      "(mean {:.1f} spans, {:.1f}x compression). Each answer is generated greedily with the context given as latents, "
      "as plain tokens, and not at all, and scored as SQuAD v1.1 scores answers.\n\n",
      summary["model"].get<std::string>(), summary["latent_tokens"].get<int64_t>(), summary["data"].get<std::string>(),
      summary["records"].get<int64_t>(), summary["span_tokens"].get<int64_t>(), summary["mean_spans"].get<double>(),
      summary["mean_ratio"].get<double>());
  md += "| context | exact match | token F1 |\n|---|---:|---:|\n";
  for (const auto& row : summary["rows"])
    md += fmt::format("| {} | {:.1f}% | {:.1f}% |\n", row["context"].get<std::string>(),
                      100 * row["exact_match"].get<double>(), 100 * row["f1"].get<double>());
  md += "\nEvery record's answers are in `answers.jsonl`.\n";
  return md;
}

}  // namespace

std::vector<fs::path> instruct_eval_outputs(const fs::path& output) {
  return {output / "answers.jsonl", output / "report.md", output / "summary.json", output / kAnswersJournal};
}

void check_instruct_eval_output(const fs::path& output, bool force) {
  check_eval_folder(output, instruct_eval_outputs(output), written_by_eval, force);
}

json run_instruct_eval(C3Codec& codec, const std::vector<InstructRecord>& records, const InstructEvalRun& run) {
  if (run.span_tokens <= 0) throw UsageError("--max-span-tokens must be positive");
  const auto start = std::chrono::steady_clock::now();
  const C3Config& config = codec.model()->config();
  const size_t count =
      run.limit > 0 ? std::min<size_t>(records.size(), static_cast<size_t>(run.limit)) : records.size();
  // What a journaled answer must have been made with to be kept; the summary records it too.
  const json key{{"task", "instruct"},
                 {"model_fingerprint", codec.fingerprint()},
                 {"latent_tokens", config.latent_tokens},
                 {"span_tokens", run.span_tokens},
                 {"max_new_tokens", run.generate.max_new_tokens},
                 {"no_repeat_ngram", run.generate.no_repeat_ngram_size},
                 {"dtype", scalar_type_name(codec.model()->dtype())},
                 {"device", run.device}};
  const size_t foreign = prepare_eval_outputs(instruct_eval_outputs(run.output), run.force);
  ResultJournal journal(run.output / kAnswersJournal, key, record_unchanged(records, count), "record results");
  std::map<std::string, json> done;
  for (const auto& r : journal.done()) done[r.at("record").get<std::string>()] = r;
  std::vector<json> answers(count);
  JobProgress progress("answering", static_cast<int64_t>(count), run.progress, "records");
  int64_t generated = 0;
  try {
    for (size_t i = 0; i < count; ++i) {
      const auto it = done.find(records[i].origin);
      if (it != done.end()) {
        answers[i] = it->second;
        continue;
      }
      throw_if_stopped(run.generate.stop);
      answers[i] = answer_record(codec, records[i], run);
      journal.append({answers[i]});
      generated += answers[i]["generated_tokens"].get<int64_t>();
      progress.update(static_cast<int64_t>(i + 1), generated);
    }
  } catch (const Interrupted& stop) {
    progress.clear();
    spdlog::warn("interrupted by {}: {} record results are kept in {}; rerun the same command to resume",
                 Interrupted::signal_name(stop.signal()), journal.results(), journal.path().string());
    throw;
  }
  progress.clear();
  std::map<std::string, double> em, f1;
  int64_t spans = 0, context_tokens = 0, all_generated = 0;
  std::string lines, all;
  for (size_t i = 0; i < count; ++i) {
    const json& a = answers[i];
    for (const char* c : kContexts) em[c] += a[c]["exact_match"].get<bool>(), f1[c] += a[c]["f1"].get<double>();
    spans += a["spans"].get<int64_t>(), context_tokens += a["context_tokens"].get<int64_t>();
    all_generated += a["generated_tokens"].get<int64_t>();
    lines += a.dump() + "\n";
    all += records[i].context + '\0' + records[i].instruction + '\0' + records[i].answer + '\0';
  }
  const auto n = static_cast<double>(count);
  json rows = json::array();
  for (const char* c : kContexts) rows.push_back({{"context", c}, {"exact_match", em[c] / n}, {"f1", f1[c] / n}});
  json summary = key;
  summary.update(
      {{"c3_version", C3_VERSION},
       {"model", codec.folder().string()},
       {"data", run.data},
       {"records_sha256", sha256_hex(all)},
       {"records", count},
       {"mean_spans", static_cast<double>(spans) / n},
       {"mean_ratio", static_cast<double>(context_tokens) / static_cast<double>(spans * config.latent_tokens)},
       {"generated_tokens", all_generated},
       {"foreign_files_replaced", foreign},
       {"resumed_records", done.size()},
       {"rows", rows}});
  summary["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::string record_key = sha256_hex(summary.dump());
  make_folder(run.output);
  write_recorded_output(run.output / "answers.jsonl", lines, record_key);
  write_recorded_output(run.output / "report.md", report_markdown(summary), record_key);
  write_recorded_output(run.output / "summary.json", summary.dump(2) + "\n", record_key);  // last: means finished
  journal.remove();
  return summary;
}

}  // namespace c3
