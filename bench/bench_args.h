// The command line every c3 benchmark takes: [--quick] [--json FILE].
#pragma once

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "c3/util/runtime.h"

struct BenchArgs {
  bool quick = false;
  std::string json_path;
  int cores = 1;  // threads LibTorch was given
};

// Parses the arguments, then runs as `c3` does: every core for LibTorch.
inline BenchArgs start_bench(int argc, char** argv) {
  BenchArgs args;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") {
      args.quick = true;
    } else if (a == "--json" && i + 1 < argc) {
      args.json_path = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [--quick] [--json FILE]\n", argv[0]);
      std::exit(2);
    }
  }
  c3::configure_cpu_allocator();
  args.cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  c3::configure_threads(args.cores);
  return args;
}
