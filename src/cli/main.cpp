#include "cli/app.hpp"

int main(int argc, char** argv) { return kestrel::cli::main(argc, argv); }
