#include "c3/util/dtype.h"

#include "c3/util/error.h"

namespace c3 {

at::ScalarType scalar_type_from_name(const std::string& name) {
  if (name == "float32" || name == "fp32" || name == "float") return at::kFloat;
  if (name == "bfloat16" || name == "bf16") return at::kBFloat16;
  if (name == "float16" || name == "fp16" || name == "half") return at::kHalf;
  throw UsageError("unknown dtype '" + name + "' (choose float32, bfloat16 or float16)");
}

std::string scalar_type_name(at::ScalarType type) {
  switch (type) {
    case at::kFloat:
      return "float32";
    case at::kBFloat16:
      return "bfloat16";
    case at::kHalf:
      return "float16";
    default:
      return c10::toString(type);
  }
}

at::ScalarType resolve_dtype(const std::string& name, const c10::Device& device) {
  if (name == "auto") return device.is_cuda() ? at::kBFloat16 : at::kFloat;
  return scalar_type_from_name(name);
}

const std::vector<std::string>& dtype_choices() {
  static const std::vector<std::string> choices{"auto", "float32", "bfloat16"};
  return choices;
}

}  // namespace c3
