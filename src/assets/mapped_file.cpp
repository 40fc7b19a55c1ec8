#include "assets/mapped_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "util/error.hpp"
#include "util/fd.hpp"

namespace kestrel::assets {

MappedFile::MappedFile(const std::filesystem::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) fail_errno("cannot open {}", path.string());
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) fail_errno("cannot stat {}", path.string());
  if (!S_ISREG(st.st_mode)) fail("cannot read {}: not a regular file", path.string());
  if (st.st_size == 0) return;  // mmap rejects empty mappings; bytes() is empty
  void* p = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd.get(), 0);
  if (p == MAP_FAILED) fail_errno("cannot map {}", path.string());
  data_ = p;
  size_ = static_cast<size_t>(st.st_size);
}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    if (data_) ::munmap(data_, size_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(data_, size_);
}

}  // namespace kestrel::assets
