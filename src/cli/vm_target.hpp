// Finding a VM the user names: NAME plus -f DIR (the deployment).
#pragma once

#include <string>

#include "deploy/deployment.hpp"

namespace kestrel::cli {

struct VmTarget {
  deploy::Deployment deployment;
  std::string name;
  vm::VmPaths paths;
  int pid = 0;
};

// Opens DIR, checks that it has a VM called NAME and that the VM runs;
// throws Error with a helpful message otherwise.
VmTarget find_vm(const std::string& name, const std::string& dir);

}  // namespace kestrel::cli
