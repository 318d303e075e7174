// vmm86 command line.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "vmm/version.h"

int main(int argc, char** argv) {
  CLI::App app{"vmm86: a binary-translation virtual machine monitor for 32-bit x86 guests"};
  app.set_version_flag("--version", vmm86::version_string());
  app.require_subcommand(0, 1);
  auto* run = app.add_subcommand("run", "Boot a Linux kernel (bzImage) in a new virtual machine");
  std::string kernel;
  run->add_option("--kernel", kernel, "bzImage to boot")->required();
  CLI11_PARSE(app, argc, argv);
  if (run->parsed()) {
    std::fprintf(stderr, "vmm86: error: no execution engine is built yet; cannot boot %s\n", kernel.c_str());
    return 2;
  }
  std::fputs(app.help().c_str(), stdout);
  return 0;
}
