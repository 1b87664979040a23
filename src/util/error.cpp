#include "c3/util/error.h"

namespace c3 {

void fail_file(const std::string& file, const std::string& problem) { throw Error(file + ": " + problem); }

}  // namespace c3
