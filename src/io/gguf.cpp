#include "c3/io/gguf.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <numeric>
#include <set>

#include "c3/util/error.h"

namespace c3::io {
namespace {

using nlohmann::json;

constexpr std::uint32_t kMagic = 0x46554747;                 // "GGUF" read as a little-endian u32
constexpr std::uint64_t kMaxCount = std::uint64_t{1} << 24;  // tensors, keys, array items: far above any model
constexpr int kMaxDims = 4;                                  // GGML_MAX_DIMS
constexpr int kMaxArrayDepth = 4;

// Block size (elements) and bytes per block of each type c3 knows (ggml's type_traits).
struct TypeTraits {
  std::uint32_t type;
  const char* name;
  int64_t block;
  std::size_t bytes;
};
constexpr TypeTraits kTypes[] = {
    {0, "F32", 1, 4},       {1, "F16", 1, 2},       {2, "Q4_0", 32, 18},    {3, "Q4_1", 32, 20},
    {6, "Q5_0", 32, 22},    {7, "Q5_1", 32, 24},    {8, "Q8_0", 32, 34},    {9, "Q8_1", 32, 36},
    {10, "Q2_K", 256, 84},  {11, "Q3_K", 256, 110}, {12, "Q4_K", 256, 144}, {13, "Q5_K", 256, 176},
    {14, "Q6_K", 256, 210}, {15, "Q8_K", 256, 292}, {30, "BF16", 1, 2},
};

const TypeTraits* traits_of(std::uint32_t type) {
  for (const auto& t : kTypes)
    if (t.type == type) return &t;
  return nullptr;
}

// Reads little-endian values from the mapped file, every read checked against its end.
class Cursor {
 public:
  Cursor(const std::uint8_t* data, std::size_t size, const std::string& source)
      : data_(data), size_(size), source_(source) {}

  template <typename T>
  T read(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, data_ + at_, sizeof(T));
    at_ += sizeof(T);
    return v;
  }
  std::string string(const char* what) {
    const auto length = read<std::uint64_t>(what);
    need(length, what);
    std::string s(reinterpret_cast<const char*>(data_ + at_), length);
    at_ += length;
    return s;
  }
  void need(std::uint64_t bytes, const char* what) const {
    if (bytes > size_ - at_)
      fail("truncated: " + std::string(what) + " needs " + std::to_string(bytes) + " bytes at offset " +
           std::to_string(at_) + " of " + std::to_string(size_));
  }
  [[noreturn]] void fail(const std::string& problem) const { fail_file(source_, problem); }
  std::size_t at() const { return at_; }
  std::size_t size() const { return size_; }

 private:
  const std::uint8_t* data_;
  std::size_t size_, at_ = 0;
  const std::string& source_;
};

// gguf_type (GGUF's metadata value types).
enum ValueType : std::uint32_t {
  kU8 = 0,
  kI8 = 1,
  kU16 = 2,
  kI16 = 3,
  kU32 = 4,
  kI32 = 5,
  kF32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kU64 = 10,
  kI64 = 11,
  kF64 = 12,
};

json read_value(Cursor& c, std::uint32_t type, const std::string& key, int depth) {
  switch (type) {
    case kU8:
      return c.read<std::uint8_t>("a u8");
    case kI8:
      return c.read<std::int8_t>("an i8");
    case kU16:
      return c.read<std::uint16_t>("a u16");
    case kI16:
      return c.read<std::int16_t>("an i16");
    case kU32:
      return c.read<std::uint32_t>("a u32");
    case kI32:
      return c.read<std::int32_t>("an i32");
    case kF32:
      return static_cast<double>(c.read<float>("an f32"));
    case kBool: {
      const auto b = c.read<std::uint8_t>("a bool");
      if (b > 1) c.fail("metadata '" + key + "': a bool holds " + std::to_string(b));
      return b == 1;
    }
    case kString:
      return c.string("a string");
    case kU64:
      return c.read<std::uint64_t>("a u64");
    case kI64:
      return c.read<std::int64_t>("an i64");
    case kF64:
      return c.read<double>("an f64");
    case kArray: {
      if (depth >= kMaxArrayDepth) c.fail("metadata '" + key + "': arrays nested too deep");
      const auto item_type = c.read<std::uint32_t>("an array's item type");
      const auto count = c.read<std::uint64_t>("an array's length");
      if (count > kMaxCount) c.fail("metadata '" + key + "': an array of " + std::to_string(count) + " items");
      c.need(count, "an array's items");  // every item takes at least one byte
      json items = json::array();
      for (std::uint64_t i = 0; i < count; ++i) items.push_back(read_value(c, item_type, key, depth + 1));
      return items;
    }
    default:
      c.fail("metadata '" + key + "' has value type " + std::to_string(type) + ", which GGUF does not define");
  }
}

std::size_t align_up(std::size_t offset, std::size_t alignment) {
  return (offset + alignment - 1) / alignment * alignment;
}

}  // namespace

std::string ggml_type_name(std::uint32_t type) {
  const TypeTraits* t = traits_of(type);
  return t ? t->name : "type " + std::to_string(type);
}

bool can_dequantize(std::uint32_t type) {
  for (auto t : {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1,
                 GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K})
    if (static_cast<std::uint32_t>(t) == type) return true;
  return false;
}

int64_t GgufTensor::numel() const {
  return std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<int64_t>());
}

ParsedGguf parse_gguf(const std::uint8_t* data, std::size_t size, const std::string& source) {
  Cursor c(data, size, source);
  if (size < 4 || c.read<std::uint32_t>("the magic") != kMagic) c.fail("not a GGUF file (no 'GGUF' magic)");
  ParsedGguf out;
  out.version = c.read<std::uint32_t>("the version");
  if (out.version == 0x02000000u || out.version == 0x03000000u)
    c.fail("a big-endian GGUF file, which c3 does not read");
  if (out.version != 2 && out.version != 3)
    c.fail("GGUF version " + std::to_string(out.version) + " is not supported (c3 reads versions 2 and 3)");
  const auto tensor_count = c.read<std::uint64_t>("the tensor count");
  const auto kv_count = c.read<std::uint64_t>("the metadata count");
  if (tensor_count > kMaxCount || kv_count > kMaxCount)
    c.fail("claims " + std::to_string(tensor_count) + " tensors and " + std::to_string(kv_count) + " metadata keys");

  for (std::uint64_t i = 0; i < kv_count; ++i) {
    const std::string key = c.string("a metadata key");
    if (out.metadata.contains(key)) c.fail("metadata key '" + key + "' appears twice");
    const auto type = c.read<std::uint32_t>("a value type");
    out.metadata[key] = read_value(c, type, key, 0);
  }
  std::size_t alignment = 32;
  if (out.metadata.contains("general.alignment")) {
    const json& a = out.metadata["general.alignment"];
    if (!a.is_number_unsigned() || a.get<std::uint64_t>() == 0 || a.get<std::uint64_t>() > (1u << 20) ||
        (a.get<std::uint64_t>() & (a.get<std::uint64_t>() - 1)) != 0)
      c.fail("general.alignment must be a power of two, got " +
             a.dump(-1, ' ', false, json::error_handler_t::replace).substr(0, 40));
    alignment = a.get<std::size_t>();
  }

  std::set<std::string> names;
  std::vector<std::uint64_t> offsets;
  for (std::uint64_t i = 0; i < tensor_count; ++i) {
    GgufTensor t;
    t.name = c.string("a tensor name");
    if (!names.insert(t.name).second) c.fail("tensor '" + t.name + "' appears twice");
    const auto dims = c.read<std::uint32_t>("a tensor's dimension count");
    if (dims == 0 || dims > kMaxDims) c.fail("tensor '" + t.name + "' has " + std::to_string(dims) + " dimensions");
    std::vector<int64_t> ne(dims);
    std::uint64_t numel = 1;
    for (auto& n : ne) {
      const auto v = c.read<std::uint64_t>("a tensor dimension");
      if (v == 0 || v > (std::uint64_t{1} << 40) || __builtin_mul_overflow(numel, v, &numel) ||
          numel > (std::uint64_t{1} << 40))
        c.fail("tensor '" + t.name + "' has an impossible dimension " + std::to_string(v));
      n = static_cast<int64_t>(v);
    }
    t.type = c.read<std::uint32_t>("a tensor type");
    const TypeTraits* traits = traits_of(t.type);
    if (!traits) c.fail("tensor '" + t.name + "' has ggml type " + std::to_string(t.type) + ", which c3 does not know");
    if (ne[0] % traits->block != 0)
      c.fail("tensor '" + t.name + "': its rows of " + std::to_string(ne[0]) + " are not whole " + traits->name +
             " blocks of " + std::to_string(traits->block));
    t.nbytes = static_cast<std::size_t>(numel / static_cast<std::uint64_t>(traits->block)) * traits->bytes;
    t.shape.assign(ne.rbegin(), ne.rend());
    offsets.push_back(c.read<std::uint64_t>("a tensor offset"));
    if (offsets.back() % alignment != 0)
      c.fail("tensor '" + t.name + "' starts at " + std::to_string(offsets.back()) +
             ", not a multiple of the alignment " + std::to_string(alignment));
    out.tensors.push_back(std::move(t));
  }
  const std::size_t data_start = align_up(c.at(), alignment);
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
  for (std::size_t i = 0; i < out.tensors.size(); ++i) {
    GgufTensor& t = out.tensors[i];
    if (data_start > size || offsets[i] > size - data_start || t.nbytes > size - data_start - offsets[i])
      c.fail("tensor '" + t.name + "' (" + std::to_string(t.nbytes) + " bytes at " + std::to_string(offsets[i]) +
             ") runs past the end of the file (truncated?)");
    t.data = data + data_start + offsets[i];
    ranges.emplace_back(offsets[i], offsets[i] + t.nbytes);
  }
  std::sort(ranges.begin(), ranges.end());
  for (std::size_t i = 1; i < ranges.size(); ++i)
    if (ranges[i].first < ranges[i - 1].second) c.fail("two tensors' data overlap");
  return out;
}

GgufReader::GgufReader(const std::filesystem::path& path)
    : path_(path), file_(path), parsed_(parse_gguf(file_.data(), file_.size(), path.string())) {
  for (std::size_t i = 0; i < parsed_.tensors.size(); ++i) index_[parsed_.tensors[i].name] = i;
}

GgufReader::~GgufReader() = default;

const GgufTensor* GgufReader::find(const std::string& name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &parsed_.tensors[it->second];
}

}  // namespace c3::io
