#include "calc.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>

namespace {

std::string first_line(const char* path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

}  // namespace

TEST(Calc, Adds) { EXPECT_EQ(add(2, 3), 5); }

// kestrel sets KESTREL_VM to the VM's name, which is also the guest's hostname.
TEST(Vm, RunsInAKestrelVm) {
  const char* vm = std::getenv("KESTREL_VM");
  ASSERT_NE(vm, nullptr) << "KESTREL_VM is unset: not running in a kestrel VM";
  EXPECT_EQ(first_line("/proc/sys/kernel/hostname"), vm);
  std::cout << "in VM " << vm << " on kernel " << first_line("/proc/sys/kernel/osrelease") << std::endl;
}
