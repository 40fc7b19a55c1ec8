#include "assets/file_stamp.hpp"

#include <sys/stat.h>

namespace kestrel::assets {

nlohmann::json file_stamp(const std::filesystem::path& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return nullptr;
  return {{"ino", static_cast<uint64_t>(st.st_ino)},
          {"size", static_cast<uint64_t>(st.st_size)},
          {"mtime_ns", static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec}};
}

bool same_stamp(const nlohmann::json& recorded, const std::filesystem::path& path) {
  nlohmann::json now = file_stamp(path);
  if (recorded.is_null() || now.is_null()) return recorded.is_null() && now.is_null();
  if (!recorded.is_object()) return false;
  return recorded.value("ino", uint64_t{0}) == now["ino"].get<uint64_t>() &&
         recorded.value("size", uint64_t{0}) == now["size"].get<uint64_t>() &&
         recorded.value("mtime_ns", int64_t{0}) == now["mtime_ns"].get<int64_t>();
}

}  // namespace kestrel::assets
