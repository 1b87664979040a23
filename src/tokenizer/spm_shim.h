// C interface of libc3_sentencepiece.so, a shim around sentencepiece that c3 loads into a link
// namespace of its own (dlmopen). Debian's libsentencepiece carries its own protobuf-lite
// (3.14) and exports it; LibTorch loads the system protobuf (3.21). Linked into one global symbol
// scope, one of the two binds to the other's symbols and aborts (measured: a crash at start-up, or
// a version-check abort). Isolated, each keeps its own. The namespace has its own C and C++
// runtimes (own heap), so only plain data crosses: results come back through callbacks that copy
// them, and nothing is allocated on one side and freed on the other.
#pragma once

#include <cstddef>

extern "C" {
typedef void (*c3spm_ids_sink)(void* context, const int* ids, size_t count);
typedef void (*c3spm_bytes_sink)(void* context, const char* data, size_t size);

// Each returns 0 on success, else writes a message through `error` and returns non-zero.
int c3spm_load(const char* path, void** handle, c3spm_bytes_sink error, void* context);
void c3spm_free(void* handle);
int c3spm_encode(void* handle, const char* text, size_t size, c3spm_ids_sink out, void* context, c3spm_bytes_sink error,
                 void* error_context);
int c3spm_decode(void* handle, const int* ids, size_t count, c3spm_bytes_sink out, void* context,
                 c3spm_bytes_sink error, void* error_context);
int c3spm_piece_size(void* handle);
int c3spm_piece_to_id(void* handle, const char* piece, size_t size);  // -1 when not exactly one piece
void c3spm_id_to_piece(void* handle, int id, c3spm_bytes_sink out, void* context);
int c3spm_is_control(void* handle, int id);
// sentencepiece's own log (its stderr during training) is captured and passed to `log`.
int c3spm_train(const char* args, c3spm_bytes_sink log, void* log_context, c3spm_bytes_sink error, void* context);
}
