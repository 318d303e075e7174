// QEMU's isa-debug-exit (devices/legacy/isa_debug_exit.h) on an I/O bus: the first write of
// any width to any of its ports asks the machine to end, with QEMU's status formula.
#include "devices/legacy/isa_debug_exit.h"

#include <gtest/gtest.h>

#include <tuple>
#include <vector>

#include "devices/bus.h"

namespace vmm86 {
namespace {

TEST(IsaDebugExit, StatusIsQemusFormula) {
  EXPECT_EQ(IsaDebugExit::exit_status_for(0), 1);
  EXPECT_EQ(IsaDebugExit::exit_status_for(0x2A), 85);
  EXPECT_EQ(IsaDebugExit::exit_status_for(0x7F), 255);
  EXPECT_EQ(IsaDebugExit::exit_status_for(0x80), 1) << "exit() keeps the low 8 bits";
  EXPECT_EQ(IsaDebugExit::exit_status_for(0xFFFFFFFF), 255);
}

TEST(IsaDebugExit, FirstWriteOnAnyPortEndsTheMachine) {
  for (const auto& [port, size, value] : {std::tuple{0xF4, 1u, 0x2Au}, {0xF6, 2u, 0x1234u}, {0xF4, 4u, 0x12345678u}}) {
    IoBus bus;
    IsaDebugExit device;
    ASSERT_EQ(bus.add(0xF4, 4, device, "isa-debug-exit", IsaDebugExit::kWidth), BusStatus::Ok);
    std::vector<uint32_t> requests;
    device.set_exit_request([&](uint32_t v) { requests.push_back(v); });
    EXPECT_EQ(bus.read(0xF4, 1), 0u);
    EXPECT_FALSE(device.value());
    bus.write(static_cast<uint16_t>(port), size, value);
    bus.write(0xF4, 1, 0x55);  // the vCPU may run on briefly: a second write changes nothing
    EXPECT_EQ(requests, std::vector<uint32_t>{value});
    EXPECT_EQ(device.value(), value);
  }
}

}  // namespace
}  // namespace vmm86
