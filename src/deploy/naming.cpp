#include "deploy/naming.hpp"

#include <cctype>

#include "util/allocation.hpp"
#include "util/random.hpp"

namespace kestrel::deploy {

std::string name_stem(std::string_view program) {
  std::string_view base = program;
  while (!base.empty() && base.back() == '/') base.remove_suffix(1);
  if (auto slash = base.rfind('/'); slash != std::string_view::npos) base = base.substr(slash + 1);
  // cargo test binaries end in "-<16 hex digits>".
  if (base.size() > 17 && base[base.size() - 17] == '-') {
    bool hex = true;
    for (char c : base.substr(base.size() - 16)) hex = hex && std::isxdigit(static_cast<unsigned char>(c));
    if (hex) base.remove_suffix(17);
  }
  std::string out;
  for (char c : base) {
    unsigned char u = static_cast<unsigned char>(c);
    if (std::isalnum(u)) {
      out += static_cast<char>(std::tolower(u));
    } else if (!out.empty() && out.back() != '-') {
      out += '-';
    }
    if (out.size() == 24) break;
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.empty() ? "vm" : out;
}

std::string make_vm_name(std::string_view program, std::string_view node) {
  std::string name = name_stem(program) + "-";
  if (!node.empty()) {
    std::string n = name_stem(node).substr(0, 16);
    while (!n.empty() && n.back() == '-') n.pop_back();
    name += n + "-";
  }
  return name + random_hex(6);
}

std::string make_vm_name(std::string_view program) { return make_vm_name(program, current_allocation().node); }

bool is_valid_vm_name(std::string_view name) {
  if (name.empty() || name.size() > 63 || name.front() == '-') return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace kestrel::deploy
