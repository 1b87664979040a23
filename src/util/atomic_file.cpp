#include "c3/util/atomic_file.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <utility>
#include <vector>

#include "c3/util/error.h"

namespace fs = std::filesystem;

namespace c3 {
namespace {

std::string unique_suffix() {
  static std::mt19937_64 rng{std::random_device{}()};
  std::ostringstream s;
  s << ".tmp-" << ::getpid() << "-" << std::hex << (rng() & 0xffffffu);
  return s.str();
}

std::string errno_text() { return std::strerror(errno); }

void fsync_directory(const fs::path& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

AtomicFile::AtomicFile(fs::path target) : target_(std::move(target)) {
  temp_ = target_;
  temp_ += unique_suffix();
  fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd_ < 0) fail_file(target_.string(), "cannot create: " + errno_text());
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) {
    std::error_code ec;
    fs::remove(temp_, ec);
  }
}

void AtomicFile::write(const void* data, std::size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd_, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail_file(target_.string(), "write failed: " + errno_text());
    }
    p += n;
    size -= static_cast<std::size_t>(n);
  }
}

void AtomicFile::commit() {
  if (::fsync(fd_) != 0) fail_file(target_.string(), "fsync failed: " + errno_text());
  if (::close(fd_) != 0) {
    fd_ = -1;
    fail_file(target_.string(), "close failed: " + errno_text());
  }
  fd_ = -1;
  if (::rename(temp_.c_str(), target_.c_str()) != 0) {
    fail_file(target_.string(), "rename failed: " + errno_text());
  }
  committed_ = true;
  fsync_directory(target_.parent_path());
}

void write_file_atomically(const fs::path& target, std::string_view contents) {
  AtomicFile file(target);
  file.write(contents);
  file.commit();
}

AtomicDirectory::AtomicDirectory(fs::path target, bool overwrite) : target_(std::move(target)), overwrite_(overwrite) {
  if (target_.filename().empty()) target_ = target_.parent_path();  // "out/" -> "out"
  std::error_code ec;
  if (fs::exists(target_, ec) && !overwrite_) {
    fail_file(target_.string(), "already exists (pass --force to replace it)");
  }
  fs::path parent = target_.parent_path();
  if (!parent.empty()) {
    fs::create_directories(parent, ec);
    if (ec) fail_file(parent.string(), "cannot create folder: " + ec.message());
  }
  staging_ = parent / ("." + target_.filename().string() + unique_suffix());
  fs::create_directory(staging_, ec);
  if (ec) fail_file(staging_.string(), "cannot create folder: " + ec.message());
}

AtomicDirectory::~AtomicDirectory() {
  if (!committed_) {
    std::error_code ec;
    fs::remove_all(staging_, ec);
  }
}

void AtomicDirectory::commit() {
  for (const auto& entry : fs::directory_iterator(staging_)) {
    if (entry.is_regular_file()) {
      int fd = ::open(entry.path().c_str(), O_RDONLY);
      if (fd >= 0) {
        ::fsync(fd);
        ::close(fd);
      }
    }
  }
  fsync_directory(staging_);
  std::error_code ec;
  fs::path old;
  if (fs::exists(target_, ec)) {
    if (!overwrite_) fail_file(target_.string(), "already exists (pass --force to replace it)");
    old = target_.parent_path() / ("." + target_.filename().string() + unique_suffix() + ".old");
    fs::rename(target_, old, ec);
    if (ec) fail_file(target_.string(), "cannot move the old folder aside: " + ec.message());
  }
  fs::rename(staging_, target_, ec);
  if (ec) {
    if (!old.empty()) fs::rename(old, target_, ec);
    fail_file(target_.string(), "cannot rename the finished folder into place");
  }
  committed_ = true;
  fsync_directory(target_.parent_path());
  if (!old.empty()) fs::remove_all(old, ec);
}

void remove_directory_atomically(const fs::path& dir) {
  const fs::path hidden = dir.parent_path() / ("." + dir.filename().string() + unique_suffix() + ".old");
  std::error_code ec;
  fs::rename(dir, hidden, ec);
  if (ec) fail_file(dir.string(), "cannot remove: " + ec.message());
  fs::remove_all(hidden, ec);
  if (ec) fail_file(hidden.string(), "cannot remove: " + ec.message());
}

namespace {

// "NAME.tmp-PID-HEX" or ".NAME.tmp-PID-HEX[.old]" -> (NAME, PID); PID 0 when not a temporary.
std::pair<std::string, long> parse_temporary(std::string name, bool is_directory) {
  if (is_directory) {
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".old") == 0) name.resize(name.size() - 4);
    if (name.empty() || name[0] != '.') return {"", 0};
    name.erase(0, 1);
  }
  const size_t at = name.rfind(".tmp-");
  if (at == std::string::npos || at == 0) return {"", 0};
  const std::string rest = name.substr(at + 5);
  const size_t dash = rest.find('-');
  if (dash == 0 || dash == std::string::npos || dash + 1 == rest.size()) return {"", 0};
  for (size_t i = 0; i < rest.size(); ++i) {
    const char c = rest[i];
    const bool ok = i < dash ? (c >= '0' && c <= '9') : i == dash || std::isxdigit(static_cast<unsigned char>(c));
    if (!ok) return {"", 0};
  }
  return {name.substr(0, at), std::stol(rest.substr(0, dash))};
}

bool process_alive(long pid) { return pid == ::getpid() || ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM; }

}  // namespace

int64_t remove_stale_temporaries(const fs::path& dir, const std::function<bool(const std::string&)>& owned) {
  std::error_code ec;
  int64_t removed = 0;
  std::vector<fs::path> stale;
  for (fs::directory_iterator it(dir.empty() ? fs::path(".") : dir, ec), end; !ec && it != end; it.increment(ec)) {
    const bool is_directory = it->is_directory(ec);
    const auto [name, pid] = parse_temporary(it->path().filename().string(), is_directory);
    if (pid > 0 && owned(name) && !process_alive(pid)) stale.push_back(it->path());
  }
  for (const auto& path : stale) removed += fs::remove_all(path, ec) > 0 ? 1 : 0;
  return removed;
}

std::string read_text_file(const fs::path& path, std::uint64_t max_bytes) {
  std::error_code ec;
  if (!fs::exists(path, ec)) fail_file(path.string(), "no such file");
  if (fs::is_directory(path, ec)) fail_file(path.string(), "is a folder, expected a file");
  const auto size = fs::file_size(path, ec);
  if (!ec && size > max_bytes)
    fail_file(path.string(), std::to_string(size) + " bytes, more than the " + std::to_string(max_bytes >> 20) +
                                 " MiB c3 reads from a file of this kind");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail_file(path.string(), "cannot open for reading");
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) fail_file(path.string(), "read failed");
  return s.str();
}

void check_writable_folder(const fs::path& folder) {
  std::error_code ec;
  fs::path existing = folder.empty() ? fs::path(".") : folder;
  while (!fs::exists(existing, ec) && existing.has_relative_path() && existing != existing.parent_path())
    existing = existing.parent_path().empty() ? fs::path(".") : existing.parent_path();
  if (!fs::is_directory(existing, ec))
    fail_file(existing.string(), existing == folder
                                     ? "is a file, not a folder to write into"
                                     : "is a file, so the folder " + folder.string() + " cannot be made");
  if (::access(existing.c_str(), W_OK | X_OK) != 0)
    fail_file(existing.string(), std::string("cannot write there: ") + std::strerror(errno));
}

void make_folder(const fs::path& folder) {
  if (folder.empty()) return;
  check_writable_folder(folder);
  std::error_code ec;
  fs::create_directories(folder, ec);
  if (ec) fail_file(folder.string(), "cannot make the folder: " + ec.message());
}

}  // namespace c3
