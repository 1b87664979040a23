// The command line every c3 benchmark takes: [--quick] [--json FILE].
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>

struct BenchArgs {
  bool quick = false;
  std::string json_path;
};

inline BenchArgs parse_bench_args(int argc, char** argv) {
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
  return args;
}
