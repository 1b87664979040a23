// Plain-C++ work sharing for CPU work outside LibTorch (scoring pages). at::parallel_for is a
// header template whose OpenMP pragma only takes effect in code compiled with -fopenmp, which c3
// is not: there it silently runs on one thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace c3 {

// Calls f(i) for i in [0, n) on up to `threads` threads (items handed out one by one). The first
// exception thrown is rethrown here once every thread has stopped.
inline void parallel_for_each(int64_t n, int threads, const std::function<void(int64_t)>& f) {
  const int workers = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, n)));
  std::atomic<int64_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto work = [&] {
    for (int64_t i; (i = next++) < n;) {
      try {
        f(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
        next = n;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < workers; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace c3
