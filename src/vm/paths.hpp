// The files of one VM inside its deployment directory (docs/deployment-dir.md).
#pragma once

#include <filesystem>
#include <string>

namespace kestrel::vm {

struct VmPaths {
  std::filesystem::path dir;  // DIR/NAME

  std::filesystem::path qmp() const { return dir / "qmp.sock"; }
  std::filesystem::path serial() const { return dir / "serial.sock"; }
  std::filesystem::path serial_lock() const { return dir / "serial.lock"; }
  std::filesystem::path console_log() const { return dir / "console.log"; }
  std::filesystem::path qemu_log() const { return dir / "qemu.log"; }
  std::filesystem::path pid_file() const { return dir / "qemu.pid"; }
  std::filesystem::path agent(int port) const { return dir / ("agent." + std::to_string(port)); }
  // An empty directory that the unused 9p devices export (host/shares.hpp).
  std::filesystem::path empty_share() const { return dir / "empty"; }
  std::filesystem::path agent_lock(int port) const { return dir / ("agent." + std::to_string(port) + ".lock"); }
};

}  // namespace kestrel::vm
