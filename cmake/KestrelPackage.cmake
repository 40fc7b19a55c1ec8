# Installation beyond the binaries and the API's library and header
# (src/CMakeLists.txt), and the Debian package:
#   <prefix>/share/cmake/Kestrel/   find_package(Kestrel) (KestrelConfig.cmake.in),
#                                   KestrelTargets*.cmake: Kestrel::kestrel (docs/api.md)
#   <prefix>/share/doc/kestrel/     README, docs, examples
# `cpack -G DEB` in the build directory makes kestrel_<version>_<arch>.deb;
# library dependencies come from dpkg-shlibdeps, the programs kestrel runs
# are listed below.
include(CMakePackageConfigHelpers)
set(KESTREL_CMAKE_DIR ${CMAKE_INSTALL_DATADIR}/cmake/Kestrel)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/KestrelConfig.cmake.in
  ${PROJECT_BINARY_DIR}/KestrelConfig.cmake
  INSTALL_DESTINATION ${KESTREL_CMAKE_DIR}
  PATH_VARS CMAKE_INSTALL_BINDIR)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/KestrelConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/KestrelConfig.cmake ${PROJECT_BINARY_DIR}/KestrelConfigVersion.cmake
  DESTINATION ${KESTREL_CMAKE_DIR})
install(EXPORT KestrelTargets NAMESPACE Kestrel:: DESTINATION ${KESTREL_CMAKE_DIR})
install(FILES README.md ARCHITECTURE.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/docs)
install(DIRECTORY examples DESTINATION ${CMAKE_INSTALL_DOCDIR}
  PATTERN target EXCLUDE PATTERN build EXCLUDE)

set(CPACK_PACKAGE_NAME kestrel)
set(CPACK_PACKAGE_VENDOR kestrel)
set(CPACK_PACKAGE_CONTACT "kestrel developers <kestrel@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "run test binaries inside throwaway QEMU VMs, fast")
set(CPACK_PACKAGE_DESCRIPTION "kestrel runs a test binary in a fresh QEMU VM whose root file system is the\n\
host's own (read-only, with a throw-away writable layer), streams its output\n\
and returns its exit status; failed runs keep their VM for inspection.\n\
Integrates with cargo, nextest, go test and CTest.")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION devel)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# libkestrel.so.0 (the API): a shlibs file for packages built against it, and
# the ldconfig trigger that goes with it.
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
# Programs kestrel runs: QEMU; a static busybox for the initramfs; apt-get
# and apt-cache for `kestrel kernel fetch`.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "qemu-system-x86, busybox-static, apt")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "ca-certificates")
include(CPack)
