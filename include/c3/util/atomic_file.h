// Outputs are never half-written: data goes to a temporary file beside the target, is fsynced,
// and is renamed over the target only on commit(). Destroying an uncommitted AtomicFile (an error,
// an exception) removes the temporary, so a failed run leaves no partial output behind.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

namespace c3 {

class AtomicFile {
 public:
  explicit AtomicFile(std::filesystem::path target);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, std::size_t size);
  void write(std::string_view text) { write(text.data(), text.size()); }
  // fsync, rename over the target, fsync the directory.
  void commit();

  const std::filesystem::path& target() const { return target_; }

 private:
  std::filesystem::path target_;
  std::filesystem::path temp_;
  int fd_ = -1;
  bool committed_ = false;
};

void write_file_atomically(const std::filesystem::path& target, std::string_view contents);

// A folder that appears complete or not at all: files are written into a hidden sibling folder,
// which commit() renames to the target. An existing target is replaced only when `overwrite`.
class AtomicDirectory {
 public:
  AtomicDirectory(std::filesystem::path target, bool overwrite);
  ~AtomicDirectory();
  AtomicDirectory(const AtomicDirectory&) = delete;
  AtomicDirectory& operator=(const AtomicDirectory&) = delete;

  // Where to write the contents before commit().
  const std::filesystem::path& staging() const { return staging_; }
  void commit();

 private:
  std::filesystem::path target_;
  std::filesystem::path staging_;
  bool overwrite_;
  bool committed_ = false;
};

// Removes a folder so that it disappears at once: renamed to a hidden ".NAME.tmp-PID-HEX.old"
// first, then deleted (a kill midway leaves only that hidden name, which
// remove_stale_temporaries cleans up). Errors name the folder.
void remove_directory_atomically(const std::filesystem::path& dir);

// What a killed process (SIGKILL, power loss) leaves behind: AtomicFile temporaries
// "NAME.tmp-PID-HEX" and AtomicDirectory staging folders ".NAME.tmp-PID-HEX[.old]". Removes those in
// `dir` whose NAME satisfies `owned` and whose PID is not a live process on this host (so a run
// still writing is left alone); returns how many were removed.
int64_t remove_stale_temporaries(const std::filesystem::path& dir,
                                 const std::function<bool(const std::string&)>& owned);

// Checks, before any work is done, that files can be written into `folder` later: it is a folder
// (or can be made: its nearest existing ancestor is one) and this process may write there. Errors
// name the path that is in the way.
void check_writable_folder(const std::filesystem::path& folder);

// Makes `folder` (and its parents) now, as check_writable_folder would allow; errors name it.
void make_folder(const std::filesystem::path& folder);

// The whole file; a file larger than `max_bytes` is an error naming it (files read into memory
// whole, whatever their contents claim, must not exhaust it).
std::string read_text_file(const std::filesystem::path& path, std::uint64_t max_bytes = UINT64_MAX);

// The largest JSON or tokenizer file c3 reads (Qwen2's tokenizer.json is 7 MB).
inline constexpr std::uint64_t kMaxMetadataFileBytes = std::uint64_t{256} << 20;

}  // namespace c3
