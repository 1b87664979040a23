// libc3_sentencepiece.so: see spm_shim.h for why this is a separate, isolated library.
#include "spm_shim.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

namespace {

void report(c3spm_bytes_sink sink, void* context, const std::string& message) {
  if (sink) sink(context, message.data(), message.size());
}

sentencepiece::SentencePieceProcessor* sp(void* handle) {
  return static_cast<sentencepiece::SentencePieceProcessor*>(handle);
}

}  // namespace

extern "C" {

int c3spm_load(const char* path, void** handle, c3spm_bytes_sink error, void* context) {
  auto* p = new sentencepiece::SentencePieceProcessor();
  const auto status = p->Load(path);
  if (!status.ok()) {
    report(error, context, status.ToString());
    delete p;
    return 1;
  }
  *handle = p;
  return 0;
}

void c3spm_free(void* handle) { delete sp(handle); }

int c3spm_encode(void* handle, const char* text, size_t size, c3spm_ids_sink out, void* context, c3spm_bytes_sink error,
                 void* error_context) {
  std::vector<int> ids;
  const auto status = sp(handle)->Encode(std::string(text, size), &ids);
  if (!status.ok()) {
    report(error, error_context, status.ToString());
    return 1;
  }
  out(context, ids.data(), ids.size());
  return 0;
}

int c3spm_decode(void* handle, const int* ids, size_t count, c3spm_bytes_sink out, void* context,
                 c3spm_bytes_sink error, void* error_context) {
  std::string text;
  const auto status = sp(handle)->Decode(std::vector<int>(ids, ids + count), &text);
  if (!status.ok()) {
    report(error, error_context, status.ToString());
    return 1;
  }
  out(context, text.data(), text.size());
  return 0;
}

int c3spm_piece_size(void* handle) { return sp(handle)->GetPieceSize(); }

int c3spm_piece_to_id(void* handle, const char* piece, size_t size) {
  const std::string p(piece, size);
  const int id = sp(handle)->PieceToId(p);
  return id >= 0 && sp(handle)->IdToPiece(id) == p ? id : -1;
}

void c3spm_id_to_piece(void* handle, int id, c3spm_bytes_sink out, void* context) {
  const std::string& piece = sp(handle)->IdToPiece(id);
  out(context, piece.data(), piece.size());
}

int c3spm_is_control(void* handle, int id) { return sp(handle)->IsControl(id) ? 1 : 0; }

int c3spm_train(const char* args, c3spm_bytes_sink log, void* log_context, c3spm_bytes_sink error, void* context) {
  // sentencepiece logs to stderr, and its first line comes before it reads --minloglevel: send
  // stderr to a temporary file while it trains and hand the text to the caller's logger.
  std::FILE* capture = std::tmpfile();
  const int saved = capture ? ::dup(2) : -1;
  if (saved >= 0) ::dup2(::fileno(capture), 2);
  const auto status = sentencepiece::SentencePieceTrainer::Train(args);
  if (saved >= 0) {
    std::fflush(stderr);
    ::dup2(saved, 2);
    ::close(saved);
    std::rewind(capture);
    char buffer[4096];
    size_t n;
    while ((n = std::fread(buffer, 1, sizeof buffer, capture)) > 0) report(log, log_context, std::string(buffer, n));
  }
  if (capture) std::fclose(capture);
  if (!status.ok()) {
    report(error, context, status.ToString());
    return 1;
  }
  return 0;
}

}  // extern "C"
