// MappedFile: a read-only mmap of a whole file, unmapped by its owner. Used
// for kernel images (tens of MB) that we only inspect or hash.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string_view>
#include <utility>

namespace kestrel::assets {

class MappedFile {
 public:
  MappedFile() = default;
  // Throws Error naming the path if it cannot be opened or mapped.
  explicit MappedFile(const std::filesystem::path& path);
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  MappedFile(MappedFile&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  MappedFile& operator=(MappedFile&& other) noexcept;
  ~MappedFile();

  std::string_view bytes() const { return {static_cast<const char*>(data_), size_}; }
  size_t size() const { return size_; }

 private:
  void* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace kestrel::assets
