// Qcow2Image against QEMU's own tools: images qemu-img makes and qemu-io writes read back
// the same here; what Qcow2Image writes, qemu-io reads, `qemu-img check` finds clean and
// `qemu-img compare` finds equal to a raw file given the same writes. Every cluster size
// from 512 B to 2 MiB, versions 2 and 3, every refcount width, backing chains, internal
// snapshots and compressed clusters.
#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "devices/storage/qcow2_image.h"
#include "devices/storage/raw_image.h"
#include "devices/storage/snapshot_overlay.h"
#include "tests/devices/storage/qcow2_test_util.h"

namespace vmm86 {
namespace {

using test::quoted;

constexpr uint64_t kMiB = 1 << 20;

/// The guest-visible bytes a sequence of writes leaves, kept beside the image under test.
struct Model {
  std::vector<uint8_t> bytes;
  void write(uint64_t offset, const std::vector<uint8_t>& data) {
    std::copy(data.begin(), data.end(), bytes.begin() + static_cast<std::ptrdiff_t>(offset));
  }
};

std::vector<uint8_t> filled(size_t size, uint8_t value) { return std::vector<uint8_t>(size, value); }

class Qcow2InteropTest : public test::Qcow2Test {
 protected:
  std::unique_ptr<Qcow2Image> open(const std::string& file, bool read_only = false) {
    auto image = Qcow2Image::open(file, {.read_only = read_only});
    EXPECT_TRUE(image) << image.error();
    return image ? std::move(*image) : nullptr;
  }
  /// Every byte of `image` equals `expected` (read in odd-sized pieces).
  void expect_contents(Qcow2Image& image, const std::vector<uint8_t>& expected) {
    ASSERT_EQ(image.size_bytes(), expected.size());
    std::vector<uint8_t> back(expected.size());
    for (uint64_t at = 0; at < back.size();) {
      const size_t piece = std::min<uint64_t>(back.size() - at, 3 * 65536 + 512);
      ASSERT_TRUE(image.read(at, std::span(back).subspan(at, piece))) << at;
      at += piece;
    }
    const auto mismatch = std::mismatch(back.begin(), back.end(), expected.begin());
    EXPECT_TRUE(mismatch.first == back.end()) << "first difference at byte " << (mismatch.first - back.begin());
  }
};

struct Flavor {
  const char* options;  ///< qemu-img create -o
  const char* name;
};
// clang-format off
constexpr Flavor kFlavors[] = {
    {"compat=0.10,cluster_size=512", "v2_512"},   {"compat=0.10,cluster_size=65536", "v2_64k"},
    {"compat=1.1,cluster_size=512", "v3_512"},    {"compat=1.1,cluster_size=4096", "v3_4k"},
    {"compat=1.1,cluster_size=65536", "v3_64k"},  {"compat=1.1,cluster_size=2097152", "v3_2m"},
    {"compat=1.1,refcount_bits=1,cluster_size=4096", "refcount1"},
    {"compat=1.1,refcount_bits=2,cluster_size=1024", "refcount2"},
    {"compat=1.1,refcount_bits=4,cluster_size=2048", "refcount4"},
    {"compat=1.1,refcount_bits=8,cluster_size=512", "refcount8"},
    {"compat=1.1,refcount_bits=32,cluster_size=8192", "refcount32"},
    {"compat=1.1,refcount_bits=64,cluster_size=512", "refcount64"},
};
// clang-format on

class Qcow2FlavorTest : public Qcow2InteropTest, public ::testing::WithParamInterface<Flavor> {};

TEST_P(Qcow2FlavorTest, ReadsWhatQemuWrote) {
  const std::string file = create("qemu.qcow2", 8 * kMiB, GetParam().options);
  qemu_io(file, "write -P 0xab 0 64k");
  qemu_io(file, "write -P 0xcd 1049088 5000");  // 1 MiB + 512, across clusters
  qemu_io(file, "write -P 0xef 8384512 4096");  // the last 4 KiB
  Model model{std::vector<uint8_t>(8 * kMiB)};
  model.write(0, filled(64 << 10, 0xab));
  model.write(1049088, filled(5000, 0xcd));
  model.write(8384512, filled(4096, 0xef));
  if (std::string(GetParam().options).find("compat=1.1") != std::string::npos) {
    qemu_io(file, "write -z 0 32k");  // zero clusters (v3)
    model.write(0, filled(32 << 10, 0));
  }
  auto image = open(file, /*read_only=*/true);
  ASSERT_NE(image, nullptr);
  expect_contents(*image, model.bytes);
}

TEST_P(Qcow2FlavorTest, QemuReadsWhatWeWrote) {
  const std::string file = create("ours.qcow2", 8 * kMiB, GetParam().options);
  const std::string raw = path("same.raw");
  tool("qemu-img create -q -f raw " + quoted(raw) + " 8M");
  {
    auto image = open(file);
    auto mirror = RawImage::open(raw, {});
    ASSERT_TRUE(image && mirror);
    const std::pair<uint64_t, size_t> writes[] = {{0, 65536}, {1049088, 5000}, {8384512, 4096}, {3 * kMiB + 7, 1}};
    uint8_t value = 0x11;
    for (const auto& [offset, length] : writes) {
      const std::vector<uint8_t> data = filled(length, value);
      ASSERT_TRUE(image->write(offset, data)) << offset;
      ASSERT_TRUE((*mirror)->write(offset, data));
      value = static_cast<uint8_t>(value + 0x22);
    }
    ASSERT_TRUE(image->flush());
  }
  qemu_io(file, "read -P 0x11 0 64k");
  qemu_io(file, "read -P 0x33 1049088 5000");
  qemu_io(file, "read -P 0x55 8384512 4096");
  qemu_io(file, "read -P 0 65536 983552");
  expect_clean(file);
  tool("qemu-img compare -q -f qcow2 -F raw " + quoted(file) + " " + quoted(raw));
}

// Random writes and reads of random lengths (sector-aligned or not), checked against a
// model after each read and by QEMU at the end; the small clusters make the image grow its
// refcount table several times.
TEST_P(Qcow2FlavorTest, RandomWritesMatchARawFile) {
  constexpr uint64_t kSize = 24 * kMiB;
  const std::string file = create("fuzz.qcow2", kSize, GetParam().options);
  qemu_io(file, "write -P 0x5a 2M 1M");  // some clusters QEMU allocated first
  Model model{std::vector<uint8_t>(kSize)};
  model.write(2 * kMiB, filled(kMiB, 0x5a));
  const uint64_t table_before = test::read_be(file, qcow2::kRefcountTableOffsetField, 8);
  std::mt19937_64 random(0x9c0a2 + std::string(GetParam().name).size());
  {
    auto image = open(file);
    ASSERT_NE(image, nullptr);
    for (int i = 0; i < 400; ++i) {
      const uint64_t length = 1 + random() % (random() % 3 == 0 ? 400000 : 9000);
      const uint64_t offset = random() % (kSize - length);
      if (random() % 3 == 0) {
        std::vector<uint8_t> back(length);
        ASSERT_TRUE(image->read(offset, back));
        ASSERT_TRUE(std::equal(back.begin(), back.end(), model.bytes.begin() + static_cast<std::ptrdiff_t>(offset)))
            << "read " << length << " at " << offset << " after " << i << " operations";
        continue;
      }
      std::vector<uint8_t> data(length);
      for (auto& byte : data) byte = static_cast<uint8_t>(random());
      ASSERT_TRUE(image->write(offset, data)) << "write " << length << " at " << offset;
      model.write(offset, data);
      if (i % 97 == 0) {
        ASSERT_TRUE(image->flush());
      }
    }
    expect_contents(*image, model.bytes);
  }
  expect_clean(file);
  const std::string options = GetParam().options;
  if (options.find("cluster_size=512") != std::string::npos && options.find("refcount_bits") == std::string::npos) {
    // 8 MiB is all the first refcount table of 512-byte clusters covers: it had to move.
    EXPECT_NE(test::read_be(file, qcow2::kRefcountTableOffsetField, 8), table_before);
  }
  const std::string raw = path("fuzz.raw");
  test::write_file(raw, model.bytes);
  tool("qemu-img compare -q -f qcow2 -F raw " + quoted(file) + " " + quoted(raw));
  auto again = open(file, /*read_only=*/true);
  ASSERT_NE(again, nullptr);
  expect_contents(*again, model.bytes);
}

std::string flavor_name(const ::testing::TestParamInfo<Flavor>& flavor) { return flavor.param.name; }
INSTANTIATE_TEST_SUITE_P(Flavors, Qcow2FlavorTest, ::testing::ValuesIn(kFlavors), flavor_name);

// qcow2 over raw over nothing, and qcow2 over qcow2 over raw: reads fall through to the
// backing files (zeros past a shorter backing file), partial writes copy the rest of their
// cluster from below, and the backing files are never written.
TEST_F(Qcow2InteropTest, BackingChains) {
  const std::string base = path("base.raw");
  std::vector<uint8_t> base_bytes(3 * kMiB + 1000);
  std::mt19937 random(7);
  for (auto& byte : base_bytes) byte = static_cast<uint8_t>(random());
  test::write_file(base, base_bytes);
  tool("qemu-img create -q -f qcow2 -o cluster_size=4096 -F raw -b base.raw " + quoted(path("mid.qcow2")) + " 4M");
  qemu_io(path("mid.qcow2"), "write -P 0x77 1M 10000");
  tool("qemu-img create -q -f qcow2 -o cluster_size=65536 -F qcow2 -b mid.qcow2 " + quoted(path("top.qcow2")) + " 5M");
  qemu_io(path("top.qcow2"), "write -P 0x99 2M 3000");
  Model model{as_raw(path("top.qcow2"))};
  ASSERT_EQ(model.bytes.size(), 5 * kMiB);
  {
    auto top = open(path("top.qcow2"));
    ASSERT_NE(top, nullptr);
    ASSERT_NE(top->backing(), nullptr);
    expect_contents(*top, model.bytes);
    const std::pair<uint64_t, size_t> writes[] = {{100, 50}, {1 * kMiB + 4000, 70000}, {3 * kMiB + 900, 300}, {0, 1}};
    for (const auto& [offset, length] : writes) {
      std::vector<uint8_t> data(length, static_cast<uint8_t>(offset));
      ASSERT_TRUE(top->write(offset, data));
      model.write(offset, data);
    }
    expect_contents(*top, model.bytes);
  }
  expect_clean(path("top.qcow2"));
  expect_clean(path("mid.qcow2"));
  EXPECT_EQ(as_raw(path("top.qcow2")), model.bytes);
  EXPECT_EQ(test::read_file(base), base_bytes);
}

// Internal snapshots are left as they were: a write to a cluster (or an L2 table) the
// snapshot shares goes to a new one, and the snapshot still reads its old data.
TEST_F(Qcow2InteropTest, SnapshotsStayIntact) {
  const std::string file = create("snap.qcow2", 4 * kMiB, "cluster_size=4096");
  qemu_io(file, "write -P 0x42 0 1M");
  tool("qemu-img snapshot -c first " + quoted(file));
  const std::vector<uint8_t> before = as_raw(file);
  Model model{before};
  {
    auto image = open(file);
    ASSERT_NE(image, nullptr);
    std::vector<uint8_t> data(10000, 0x24);
    ASSERT_TRUE(image->write(5000, data));
    ASSERT_TRUE(image->write(2 * kMiB, data));
    model.write(5000, data);
    model.write(2 * kMiB, data);
  }
  expect_clean(file);
  EXPECT_EQ(as_raw(file), model.bytes);
  const std::string old = path("first.raw");
  tool("qemu-img convert -O raw -l snapshot.name=first " + quoted(file) + " " + quoted(old));
  EXPECT_EQ(test::read_file(old), before);
}

// zlib-compressed clusters (qemu-img convert -c) read back; writing to one moves it.
TEST_F(Qcow2InteropTest, CompressedClusters) {
  const std::string raw = path("plain.raw");
  std::vector<uint8_t> bytes(2 * kMiB);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i / 1000 + (i % 7 == 0 ? i : 0));
  test::write_file(raw, bytes);
  const std::string file = path("packed.qcow2");
  tool("qemu-img convert -c -f raw -O qcow2 -o cluster_size=16384 " + quoted(raw) + " " + quoted(file));
  EXPECT_NE(tool("qemu-img info " + quoted(file)).output.find("qcow2"), std::string::npos);
  Model model{bytes};
  {
    auto image = open(file);
    ASSERT_NE(image, nullptr);
    expect_contents(*image, model.bytes);
    std::vector<uint8_t> data(777, 0xEE);
    ASSERT_TRUE(image->write(20000, data));
    model.write(20000, data);
    expect_contents(*image, model.bytes);
  }
  expect_clean(file);
  EXPECT_EQ(as_raw(file), model.bytes);
}

// SnapshotOverlay sits over a qcow2 image as over a raw one: the image is never written.
TEST_F(Qcow2InteropTest, SnapshotOverlayOverQcow2) {
  const std::string file = create("base.qcow2", kMiB);
  qemu_io(file, "write -P 0x31 0 64k");
  const std::vector<uint8_t> before = test::read_file(file);
  auto image = Qcow2Image::open(file, {.read_only = true});
  ASSERT_TRUE(image) << image.error();
  auto overlay = SnapshotOverlay::create(std::move(*image), dir_);
  ASSERT_TRUE(overlay) << overlay.error();
  std::vector<uint8_t> data(4096, 0x13);
  ASSERT_TRUE((*overlay)->write(512, data));
  std::vector<uint8_t> back(8192);
  ASSERT_TRUE((*overlay)->read(0, back));
  EXPECT_EQ(back[0], 0x31);
  EXPECT_EQ(back[512], 0x13);
  EXPECT_EQ(back[4608], 0x31);
  overlay = Error{"closed"};
  EXPECT_EQ(test::read_file(file), before);
}

}  // namespace
}  // namespace vmm86
