// safetensors I/O. Never trusts the file: every length and offset is checked against the file size
// before anything is read, so a corrupt checkpoint fails with a message instead of reading past the
// mapping.
#include "models/safetensors.hpp"

#include <chorus/errors.hpp>

#include <nlohmann/json.hpp>

#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace chorus::models {

namespace {

// The header of a real checkpoint is a few hundred kilobytes; anything far larger is corruption.
constexpr std::uint64_t kMaxHeaderBytes = 100u * 1024 * 1024;

struct DtypeInfo {
  const char* name;
  torch::ScalarType type;
  std::size_t bytes;
};

constexpr DtypeInfo kDtypes[] = {
  {"F64", torch::kFloat64, 8}, {"F32", torch::kFloat32, 4}, {"F16", torch::kFloat16, 2}, {"BF16", torch::kBFloat16, 2},
  {"I64", torch::kInt64, 8},   {"I32", torch::kInt32, 4},   {"I16", torch::kInt16, 2},   {"I8", torch::kInt8, 1},
  {"U8", torch::kUInt8, 1},    {"BOOL", torch::kBool, 1},
};

const DtypeInfo* find_dtype(const std::string& name) {
  for (const auto& info : kDtypes)
    if (name == info.name)
      return &info;
  return nullptr;
}

[[noreturn]] void fail(const std::filesystem::path& path, const std::string& what) {
  throw CheckpointError(path.string() + ": " + what);
}

[[noreturn]] void fail_tensor(const std::filesystem::path& path, const std::string& name, const std::string& what) {
  throw CheckpointError(path.string() + ": tensor '" + name + "': " + what);
}

} // namespace

// -- the memory mapping -------------------------------------------------------

struct SafetensorsFile::Mapping {
  void* address = MAP_FAILED;
  std::size_t size = 0;
  ~Mapping() {
    if (address != MAP_FAILED && size > 0)
      munmap(address, size);
  }
};

SafetensorsFile SafetensorsFile::open(const std::filesystem::path& path) {
  SafetensorsFile file;
  file.path_ = path;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    fail(path, std::string("cannot open: ") + std::strerror(errno));
  struct stat info{};
  if (fstat(fd, &info) != 0) {
    ::close(fd);
    fail(path, std::string("cannot stat: ") + std::strerror(errno));
  }
  auto size = static_cast<std::uint64_t>(info.st_size);
  if (size < 8) {
    ::close(fd);
    fail(path, "file is " + std::to_string(size) + " bytes, too short for a safetensors header");
  }
  file.mapping_ = std::make_shared<Mapping>();
  file.mapping_->address = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (file.mapping_->address == MAP_FAILED)
    fail(path, std::string("cannot map: ") + std::strerror(errno));
  file.mapping_->size = size;
  const auto* bytes = static_cast<const std::uint8_t*>(file.mapping_->address);

  std::uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i)
    header_size = (header_size << 8) | bytes[i];
  if (header_size > kMaxHeaderBytes || header_size > size - 8)
    fail(path,
         "header length " + std::to_string(header_size) + " does not fit in a file of " + std::to_string(size)
           + " bytes (truncated or not a safetensors file)");
  auto header = nlohmann::json::parse(bytes + 8, bytes + 8 + header_size, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object())
    fail(path, "header is not a JSON object");
  file.data_ = bytes + 8 + header_size;
  std::uint64_t data_size = size - 8 - header_size;

  for (const auto& [name, value] : header.items()) {
    if (name == "__metadata__") {
      if (!value.is_object())
        fail(path, "__metadata__ is not an object");
      for (const auto& [key, text] : value.items()) {
        if (!text.is_string())
          fail(path, "__metadata__ key '" + key + "' is not a string");
        file.metadata_[key] = text.get<std::string>();
      }
      continue;
    }
    if (!value.is_object())
      fail_tensor(path, name, "entry is not an object");
    TensorEntry entry;
    entry.name = name;
    auto dtype = value.find("dtype");
    if (dtype == value.end() || !dtype->is_string())
      fail_tensor(path, name, "missing dtype");
    entry.dtype = dtype->get<std::string>();
    const auto* type = find_dtype(entry.dtype);
    if (!type)
      fail_tensor(path, name,
                  "unknown dtype '" + entry.dtype + "' (expected F64, F32, F16, BF16, I64, I32, I16, I8, U8 or BOOL)");
    auto shape = value.find("shape");
    if (shape == value.end() || !shape->is_array())
      fail_tensor(path, name, "missing shape");
    std::uint64_t elements = 1;
    for (const auto& dim : *shape) {
      if (!dim.is_number_unsigned())
        fail_tensor(path, name, "shape " + shape->dump() + " has a dimension that is not a non-negative integer");
      auto extent = dim.get<std::uint64_t>();
      if (extent > 0 && elements > (std::uint64_t{1} << 62) / extent)
        fail_tensor(path, name, "shape " + shape->dump() + " is too large");
      elements *= extent;
      entry.shape.push_back(static_cast<std::int64_t>(extent));
    }
    auto offsets = value.find("data_offsets");
    if (offsets == value.end() || !offsets->is_array() || offsets->size() != 2 || !(*offsets)[0].is_number_unsigned()
        || !(*offsets)[1].is_number_unsigned())
      fail_tensor(path, name, "data_offsets must be [begin, end]");
    entry.begin = (*offsets)[0].get<std::uint64_t>();
    entry.end = (*offsets)[1].get<std::uint64_t>();
    if (entry.begin > entry.end || entry.end > data_size)
      fail_tensor(path, name,
                  "data_offsets [" + std::to_string(entry.begin) + ", " + std::to_string(entry.end)
                    + "] lie outside the data section of " + std::to_string(data_size) + " bytes");
    if (entry.end - entry.begin != elements * type->bytes)
      fail_tensor(path, name,
                  "holds " + std::to_string(entry.end - entry.begin) + " bytes but shape " + shape->dump() + " of "
                    + entry.dtype + " needs " + std::to_string(elements * type->bytes));
    file.entries_.push_back(std::move(entry));
  }
  std::sort(file.entries_.begin(), file.entries_.end(),
            [](const TensorEntry& a, const TensorEntry& b) { return a.begin < b.begin; });
  for (std::size_t i = 0; i < file.entries_.size(); ++i) {
    if (i > 0 && file.entries_[i].begin < file.entries_[i - 1].end)
      fail_tensor(path, file.entries_[i].name, "overlaps tensor '" + file.entries_[i - 1].name + "'");
    file.index_[file.entries_[i].name] = i;
  }
  return file;
}

bool SafetensorsFile::contains(const std::string& name) const {
  return index_.count(name) > 0;
}

const TensorEntry& SafetensorsFile::entry(const std::string& name) const {
  auto found = index_.find(name);
  if (found == index_.end())
    fail_tensor(path_, name, "not in the file");
  return entries_[found->second];
}

torch::Tensor SafetensorsFile::load(const std::string& name) const {
  const auto& found = entry(name);
  auto tensor = torch::empty(found.shape, torch::TensorOptions().dtype(find_dtype(found.dtype)->type));
  // memcpy rather than from_blob: the data section need not be aligned for the element type.
  if (found.end > found.begin)
    std::memcpy(tensor.data_ptr(), data_ + found.begin, found.end - found.begin);
  return tensor;
}

// -- writing ------------------------------------------------------------------

std::string safetensors_dtype(torch::ScalarType type) {
  for (const auto& info : kDtypes)
    if (info.type == type)
      return info.name;
  throw CheckpointError(std::string("dtype ") + c10::toString(type) + " has no safetensors name");
}

void save_safetensors(const std::filesystem::path& path,
                      const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty())
    header["__metadata__"] = metadata;
  std::vector<torch::Tensor> contiguous;
  std::uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    auto stored = tensor.detach().to(torch::kCPU).contiguous();
    auto bytes = static_cast<std::uint64_t>(stored.numel()) * stored.element_size();
    header[name] = {{"dtype", safetensors_dtype(stored.scalar_type())},
                    {"shape", stored.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    contiguous.push_back(std::move(stored));
  }
  auto text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' '); // keep the data section 8-byte aligned, as the reference writer does
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out)
    fail(path, "cannot create the file");
  std::uint64_t length = text.size();
  char prefix[8];
  for (int i = 0; i < 8; ++i)
    prefix[i] = static_cast<char>((length >> (8 * i)) & 0xff);
  out.write(prefix, 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const auto& stored : contiguous)
    out.write(static_cast<const char*>(stored.data_ptr()),
              static_cast<std::streamsize>(static_cast<std::uint64_t>(stored.numel()) * stored.element_size()));
  out.flush();
  if (!out)
    fail(path, "write failed (disk full?)");
}

} // namespace chorus::models
