#include "c3/io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>

#include "c3/util/atomic_file.h"
#include "c3/util/error.h"

namespace c3::io {
namespace {

using nlohmann::json;

struct DTypeEntry {
  DType dtype;
  const char* name;
  std::size_t size;
};

// Declaration order of the reference implementation's Dtype enum, which its writer sorts by.
constexpr DTypeEntry kDTypes[] = {
    {DType::BOOL, "BOOL", 1}, {DType::U8, "U8", 1},   {DType::I8, "I8", 1},     {DType::I16, "I16", 2},
    {DType::U16, "U16", 2},   {DType::F16, "F16", 2}, {DType::BF16, "BF16", 2}, {DType::I32, "I32", 4},
    {DType::U32, "U32", 4},   {DType::F32, "F32", 4}, {DType::F64, "F64", 8},   {DType::I64, "I64", 8},
    {DType::U64, "U64", 8},
};

int dtype_rank(DType d) {
  for (int i = 0; i < static_cast<int>(std::size(kDTypes)); ++i)
    if (kDTypes[i].dtype == d) return i;
  return -1;
}

bool mul_overflows(std::uint64_t a, std::uint64_t b, std::uint64_t* out) { return __builtin_mul_overflow(a, b, out); }

std::uint64_t read_le_u64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

std::size_t dtype_size(DType dtype) { return kDTypes[dtype_rank(dtype)].size; }

std::string_view dtype_name(DType dtype) { return kDTypes[dtype_rank(dtype)].name; }

std::optional<DType> parse_dtype(std::string_view name) {
  for (const auto& e : kDTypes)
    if (name == e.name) return e.dtype;
  return std::nullopt;
}

int64_t TensorInfo::numel() const {
  return std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<int64_t>());
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

namespace {

// The header's JSON. Duplicate top-level keys are an error: nlohmann keeps the last silently, so
// the keys are watched while parsing.
json parse_header(const char* header, std::uint64_t header_len, const std::string& source) {
  std::set<std::string> seen;
  std::string duplicate;
  json::parser_callback_t watch_keys = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::key && depth == 1) {
      const auto& k = parsed.get_ref<const std::string&>();
      if (!seen.insert(k).second && duplicate.empty()) duplicate = k;
    }
    return true;
  };
  json doc;
  try {
    doc = json::parse(header, header + header_len, watch_keys);
  } catch (const json::exception& e) {
    fail_file(source, std::string("header is not valid JSON (") + e.what() + ")");
  }
  if (!doc.is_object()) fail_file(source, "header is not a JSON object");
  if (!duplicate.empty()) fail_file(source, "tensor name '" + duplicate + "' appears twice in the header");
  return doc;
}

std::map<std::string, std::string> parse_metadata(const json& v, const std::string& source) {
  if (!v.is_object()) fail_file(source, "__metadata__ is not an object");
  std::map<std::string, std::string> metadata;
  for (auto m = v.begin(); m != v.end(); ++m) {
    if (!m.value().is_string()) fail_file(source, "__metadata__." + m.key() + " is not a string");
    metadata[m.key()] = m.value().get<std::string>();
  }
  return metadata;
}

// One tensor's entry, checked against the data section's size (data not yet pointed at).
TensorInfo parse_entry(const std::string& name, const json& v, std::size_t data_size, const std::string& source) {
  auto bad = [&](const std::string& what) { fail_file(source, "tensor '" + name + "': " + what); };
  if (!v.is_object()) bad("entry is not an object");
  if (!v.contains("dtype") || !v["dtype"].is_string()) bad("missing or non-string dtype");
  auto dtype = parse_dtype(v["dtype"].get<std::string>());
  if (!dtype) bad("unknown dtype '" + v["dtype"].get<std::string>() + "'");
  if (!v.contains("shape") || !v["shape"].is_array()) bad("missing or non-array shape");
  if (!v.contains("data_offsets") || !v["data_offsets"].is_array() || v["data_offsets"].size() != 2)
    bad("data_offsets must be [begin, end]");
  TensorInfo t;
  t.name = name;
  t.dtype = *dtype;
  std::uint64_t elements = 1;
  for (const auto& d : v["shape"]) {
    if (!d.is_number_unsigned()) bad("shape entries must be non-negative integers");
    if (mul_overflows(elements, d.get<std::uint64_t>(), &elements)) bad("shape overflows");
    t.shape.push_back(d.get<int64_t>());
  }
  for (const auto& o : v["data_offsets"])
    if (!o.is_number_unsigned()) bad("data_offsets must be non-negative integers");
  const auto begin = v["data_offsets"][0].get<std::uint64_t>();
  const auto end = v["data_offsets"][1].get<std::uint64_t>();
  if (begin > end) bad("data_offsets begin " + std::to_string(begin) + " > end " + std::to_string(end));
  if (end > data_size)
    bad("data_offsets end " + std::to_string(end) + " is past the " + std::to_string(data_size) +
        "-byte data section (truncated?)");
  std::uint64_t expected = 0;
  if (mul_overflows(elements, dtype_size(*dtype), &expected) || expected != end - begin)
    bad("holds " + std::to_string(end - begin) + " bytes but shape " + shape_string(t.shape) + " of " +
        std::string(dtype_name(*dtype)) + " needs " + std::to_string(expected));
  t.begin = begin;
  t.end = end;
  return t;
}

// The data section must be covered exactly: sorted by offset, each tensor starts where the
// previous one ended, and the last ends at the end of the file.
void check_coverage(std::vector<TensorInfo>& tensors, std::size_t data_size, const std::string& source) {
  std::sort(tensors.begin(), tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  std::size_t cursor = 0;
  for (const auto& t : tensors) {
    if (t.begin < cursor) fail_file(source, "tensor '" + t.name + "' overlaps the tensor before it");
    if (t.begin > cursor)
      fail_file(source, "gap of " + std::to_string(t.begin - cursor) + " bytes before tensor '" + t.name + "'");
    cursor = t.end;
  }
  if (cursor != data_size)
    fail_file(source,
              std::to_string(data_size - cursor) + " bytes after the last tensor are not described by the header");
}

}  // namespace

ParsedSafetensors parse_safetensors(const std::uint8_t* bytes, std::size_t size, const std::string& source) {
  if (size < 8)
    fail_file(source,
              "not a safetensors file: " + std::to_string(size) + " bytes, shorter than the 8-byte header length");
  const std::uint64_t header_len = read_le_u64(bytes);
  if (header_len > SafetensorsReader::kMaxHeaderBytes)
    fail_file(source, "header length " + std::to_string(header_len) + " exceeds the " +
                          std::to_string(SafetensorsReader::kMaxHeaderBytes) +
                          "-byte limit (corrupt or not safetensors)");
  if (header_len > size - 8)
    fail_file(source, "header length " + std::to_string(header_len) + " runs past the end of the " +
                          std::to_string(size) + "-byte file (truncated?)");
  const std::size_t data_size = size - 8 - header_len;
  const json doc = parse_header(reinterpret_cast<const char*>(bytes + 8), header_len, source);
  ParsedSafetensors out;
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    if (it.key() == "__metadata__") {
      out.metadata = parse_metadata(it.value(), source);
      continue;
    }
    TensorInfo t = parse_entry(it.key(), it.value(), data_size, source);
    t.data = bytes + 8 + header_len + t.begin;
    out.tensors.push_back(std::move(t));
  }
  check_coverage(out.tensors, data_size, source);
  return out;
}

SafetensorsReader::SafetensorsReader(const std::filesystem::path& path) : path_(path), file_(path) {
  auto parsed = parse_safetensors(file_.data(), file_.size(), path.string());
  tensors_ = std::move(parsed.tensors);
  metadata_ = std::move(parsed.metadata);
  for (std::size_t i = 0; i < tensors_.size(); ++i) index_[tensors_[i].name] = i;
}

SafetensorsReader::~SafetensorsReader() = default;

const TensorInfo* SafetensorsReader::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const TensorInfo& SafetensorsReader::at(const std::string& name) const {
  const TensorInfo* t = find(name);
  if (!t) fail_file(path_.string(), "no tensor named '" + name + "'");
  return *t;
}

void SafetensorsReader::evict(const TensorInfo& tensor) const { file_.evict(tensor.data, tensor.nbytes()); }

std::string safetensors_header(const std::vector<TensorBytes>& tensors,
                               const std::map<std::string, std::string>& metadata, std::vector<std::size_t>* order) {
  std::vector<std::size_t> idx(tensors.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) {
    int ra = dtype_rank(tensors[a].dtype), rb = dtype_rank(tensors[b].dtype);
    return ra != rb ? ra > rb : tensors[a].name < tensors[b].name;
  });
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::set<std::string> names;
  std::size_t offset = 0;
  for (std::size_t i : idx) {
    const TensorBytes& t = tensors[i];
    if (t.name == "__metadata__" || !names.insert(t.name).second)
      throw Error("safetensors writer: duplicate or reserved tensor name '" + t.name + "'");
    std::uint64_t expected = dtype_size(t.dtype);
    for (int64_t d : t.shape) {
      if (d < 0) throw Error("safetensors writer: tensor '" + t.name + "' has a negative dimension");
      expected *= static_cast<std::uint64_t>(d);
    }
    if (expected != t.nbytes)
      throw Error("safetensors writer: tensor '" + t.name + "' has " + std::to_string(t.nbytes) +
                  " bytes, its shape needs " + std::to_string(expected));
    nlohmann::ordered_json entry;
    entry["dtype"] = std::string(dtype_name(t.dtype));
    entry["shape"] = t.shape;
    entry["data_offsets"] = {offset, offset + t.nbytes};
    header[t.name] = std::move(entry);
    offset += t.nbytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  if (order) *order = std::move(idx);
  return text;
}

void write_safetensors(const std::filesystem::path& path, const std::vector<TensorBytes>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<std::size_t> order;
  const std::string header = safetensors_header(tensors, metadata, &order);
  AtomicFile file(path);
  std::uint8_t len[8];
  std::uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) len[i] = static_cast<std::uint8_t>(n >> (8 * i));
  file.write(len, 8);
  file.write(header);
  for (std::size_t i : order) file.write(tensors[i].data, tensors[i].nbytes);
  file.commit();
}

}  // namespace c3::io
