// Qcow2Image on images it must refuse (one line at open), tables that turn out corrupt
// during I/O (false, never a crash), locks, format probing, and a process killed between
// writes (the image stays consistent: at worst `qemu-img check` finds leaked clusters).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "devices/storage/open_image.h"
#include "devices/storage/qcow2_image.h"
#include "devices/storage/raw_image.h"
#include "tests/devices/storage/qcow2_test_util.h"

namespace vmm86 {
namespace {

using test::patch_be;
using test::quoted;
using test::read_be;

class Qcow2RefusalTest : public test::Qcow2Test {
 protected:
  /// A small v3 image (64 KiB clusters) with data in its first cluster.
  std::string good(const std::string& name = "good.qcow2") {
    const std::string file = create(name, 4 << 20);
    qemu_io(file, "write -P 0x61 0 64k");
    return file;
  }
  /// Opening `file` fails with one line that contains `needle`.
  void expect_refused(const std::string& file, const std::string& needle, bool read_only = false) {
    auto image = Qcow2Image::open(file, {.read_only = read_only});
    ASSERT_FALSE(image) << file << " opened";
    EXPECT_EQ(image.error().find('\n'), std::string::npos) << image.error();
    EXPECT_NE(image.error().find(needle), std::string::npos) << image.error();
  }
};

TEST_F(Qcow2RefusalTest, MalformedHeadersAreRefusedInOneLine) {
  struct Case {
    uint64_t offset;
    unsigned bytes;
    uint64_t value;
    const char* needle;
  };
  // clang-format off
  const Case cases[] = {
      {4, 4, 4, "version 4"},
      {20, 4, 30, "cluster_bits 30"},
      {20, 4, 8, "cluster_bits 8"},
      {24, 8, uint64_t{1} << 62, "too large"},
      {24, 8, 0, "virtual size of 0"},
      {32, 4, 1, "encrypted"},
      {36, 4, 0, "too small"},
      {36, 4, 0x1000'0000, "too large"},
      {40, 8, 0x4000'0000, "L1 table at 0x40000000"},
      {40, 8, 0x30001, "L1 table at 0x30001"},
      {48, 8, 0x7000'0000, "refcount table at"},
      {56, 4, 0x10000, "refcount table of 65536 clusters"},
      {60, 4, 1, "snapshot table"},
      {72, 8, uint64_t{1} << 10, "unknown incompatible features (bits 0x400)"},
      {72, 8, qcow2::kIncompatExternalData, "external data file"},
      {100, 4, 20, "header_length"},
      {96, 4, 7, "refcount_order 7"},
      {8, 8, 0x20000, "backing file name"},
  };
  // clang-format on
  for (const Case& c : cases) {
    const std::string file = good("case.qcow2");
    if (std::string(c.needle) == "backing file name") patch_be(file, 16, 4, 10);
    patch_be(file, c.offset, c.bytes, c.value);
    SCOPED_TRACE(c.needle);
    expect_refused(file, c.needle, /*read_only=*/true);
    std::filesystem::remove(file);
  }
}

TEST_F(Qcow2RefusalTest, TruncatedAndGarbageTablesAreRefused) {
  const std::string truncated = good("truncated.qcow2");
  std::filesystem::resize_file(truncated, 50);
  expect_refused(truncated, "truncated");
  const std::string refcounts = good("refcounts.qcow2");
  patch_be(refcounts, read_be(refcounts, qcow2::kRefcountTableOffsetField, 8) + 8, 8, 0xDEAD'BEEF'0000);
  expect_refused(refcounts, "refcount table entry 1");
  const std::string l1 = good("l1.qcow2");
  patch_be(l1, read_be(l1, 40, 8), 8, 0x8000'0000'7770'0000);
  expect_refused(l1, "L1 entry 0");
  const std::string not_qcow2 = path("plain.raw");
  test::write_file(not_qcow2, std::vector<uint8_t>(4096, 1));
  expect_refused(not_qcow2, "not a qcow2 image");
}

TEST_F(Qcow2RefusalTest, UnsupportedFeatures) {
  expect_refused(create("l2.qcow2", 1 << 20, "extended_l2=on"), "extended L2");
  expect_refused(create("zstd.qcow2", 1 << 20, "compression_type=zstd"), "zstd");
  // Dirty (lazy refcounts, not closed): read-only is fine, writing needs a repair first.
  const std::string dirty = good("dirty.qcow2");
  patch_be(dirty, 72, 8, qcow2::kIncompatDirty);
  expect_refused(dirty, "qemu-img check -r all");
  EXPECT_TRUE(Qcow2Image::open(dirty, {.read_only = true}));
  const std::string corrupt = good("corrupt.qcow2");
  patch_be(corrupt, 72, 8, qcow2::kIncompatCorrupt);
  expect_refused(corrupt, "marked corrupt");
  EXPECT_TRUE(Qcow2Image::open(corrupt, {.read_only = true}));
}

// Auto-clear feature bits (a persistent bitmap here) are cleared before the first write and
// only then: opening and reading leave the header as it was.
TEST_F(Qcow2RefusalTest, AutoclearBitsClearedAtTheFirstWrite) {
  const std::string file = good();
  tool("qemu-img bitmap --add " + quoted(file) + " dirty-tracking");
  ASSERT_EQ(read_be(file, qcow2::kAutoclearFeaturesField, 8), 1u);
  auto image = Qcow2Image::open(file, {});
  ASSERT_TRUE(image) << image.error();
  std::vector<uint8_t> data(512, 0x33);
  ASSERT_TRUE((*image)->read(0, data));
  EXPECT_EQ(read_be(file, qcow2::kAutoclearFeaturesField, 8), 1u);
  ASSERT_TRUE((*image)->write(0, data));
  EXPECT_EQ(read_be(file, qcow2::kAutoclearFeaturesField, 8), 0u);
  image = Error{"closed"};
  // The bitmap's clusters are now unreferenced: leaks, as QEMU itself warns.
  const test::CommandResult check = test::run_command("qemu-img check " + quoted(file));
  EXPECT_TRUE(check.status == 0 || check.status == 3) << check.output;
  EXPECT_EQ(check.output.find("ERROR"), std::string::npos) << check.output;
}

TEST_F(Qcow2RefusalTest, BackingChainLoopsDepthAndMissingFiles) {
  create("b.qcow2", 1 << 20);
  tool("qemu-img create -q -f qcow2 -F qcow2 -b b.qcow2 " + quoted(path("a.qcow2")));
  tool("qemu-img rebase -u -F qcow2 -b a.qcow2 " + quoted(path("b.qcow2")));
  expect_refused(path("a.qcow2"), "backing chain loop");
  expect_refused(path("a.qcow2"), "backing chain loop", /*read_only=*/true);
  tool("qemu-img rebase -u -F qcow2 -b self.qcow2 " + quoted(create("self.qcow2", 1 << 20)));
  expect_refused(path("self.qcow2"), "backing chain loop");
  create("c0.qcow2", 1 << 20);
  for (int i = 1; i <= 17; ++i) {
    tool(fmt::format("qemu-img create -q -f qcow2 -F qcow2 -b c{}.qcow2 '{}/c{}.qcow2'", i - 1, dir_, i));
  }
  EXPECT_TRUE(Qcow2Image::open(path("c16.qcow2"), {}));  // 16 backing files
  expect_refused(path("c17.qcow2"), "deeper than 16");
  std::filesystem::remove(path("c0.qcow2"));
  expect_refused(path("c3.qcow2"), "c0.qcow2");
}

// A corrupt L2 entry met during I/O: that cluster's reads and writes fail, the rest works.
TEST_F(Qcow2RefusalTest, CorruptL2EntryFailsOnlyItsCluster) {
  const std::string file = good();
  qemu_io(file, "write -P 0x62 1M 64k");
  const uint64_t l2 = read_be(file, read_be(file, 40, 8), 8) & qcow2::kOffsetMask;
  patch_be(file, l2, 8, qcow2::kCopied | 0x7700'0000);  // past the end of the file
  patch_be(file, l2 + 8, 8, 0x62);                      // reserved bits
  auto image = Qcow2Image::open(file, {});
  ASSERT_TRUE(image) << image.error();
  std::vector<uint8_t> cluster(65536);
  EXPECT_FALSE((*image)->read(0, cluster));
  EXPECT_FALSE((*image)->write(100, cluster));
  EXPECT_FALSE((*image)->read(65536, cluster));
  EXPECT_FALSE((*image)->write(65536, cluster));
  EXPECT_TRUE((*image)->read(1 << 20, cluster));
  EXPECT_EQ(cluster[0], 0x62);
  EXPECT_TRUE((*image)->write(3 << 20, cluster));
  EXPECT_TRUE((*image)->flush());
}

// Random bytes of a small image's metadata overwritten, 300 times: each image is refused in
// one line or opens, and then reads, writes and flushes fail or succeed, never crash (the
// ASan build runs this too) and never allocate more than the file could describe.
TEST_F(Qcow2RefusalTest, RandomlyCorruptedMetadataNeverCrashes) {
  const std::string base = create("base.qcow2", 2 << 20, "cluster_size=4096");
  qemu_io(base, "write -P 0x71 0 300k");
  qemu_io(base, "write -P 0x72 1M 8k");
  const std::vector<uint8_t> pristine = test::read_file(base);
  std::mt19937_64 random(20261207);
  const std::string file = path("corrupted.qcow2");
  int opened = 0;
  for (int trial = 0; trial < 300; ++trial) {
    std::vector<uint8_t> bytes = pristine;
    const int flips = 1 + static_cast<int>(random() % 8);
    for (int i = 0; i < flips; ++i) {
      // Mostly the metadata: the header and the tables in the first clusters.
      const uint64_t span = random() % 4 == 0 ? bytes.size() : std::min<uint64_t>(bytes.size(), 5 * 4096);
      bytes[random() % span] = static_cast<uint8_t>(random());
    }
    test::write_file(file, bytes);
    auto image = Qcow2Image::open(file, {});
    if (!image) {
      EXPECT_EQ(image.error().find('\n'), std::string::npos) << image.error();
      continue;
    }
    ++opened;
    std::vector<uint8_t> buffer(65536);
    const uint64_t limit = std::min<uint64_t>((*image)->size_bytes(), 4 << 20);
    for (uint64_t at = 0; at < limit; at += buffer.size()) (void)(*image)->read(at, buffer);
    for (int i = 0; i < 4; ++i) (void)(*image)->write((random() % 512) * 4096 + random() % 4096, buffer);
    (void)(*image)->flush();
  }
  EXPECT_GT(opened, 0);
}

TEST_F(Qcow2RefusalTest, LocksLikeRawImages) {
  const std::string base = path("shared.raw");
  test::write_file(base, std::vector<uint8_t>(1 << 20, 9));
  tool("qemu-img create -q -f qcow2 -F raw -b shared.raw " + quoted(path("one.qcow2")));
  tool("qemu-img create -q -f qcow2 -F raw -b shared.raw " + quoted(path("two.qcow2")));
  auto one = Qcow2Image::open(path("one.qcow2"), {});
  auto two = Qcow2Image::open(path("two.qcow2"), {});  // the backing file is shared
  ASSERT_TRUE(one && two);
  auto again = Qcow2Image::open(path("one.qcow2"), {.read_only = true});
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error(), "image " + path("one.qcow2") + " is in use by another process");
  EXPECT_FALSE(RawImage::open(base, {}));  // nobody writes a backing file in use
}

TEST_F(Qcow2RefusalTest, OpenImageProbesTheFormat) {
  const std::string file = good();
  auto probed = open_image(file, ImageFormat::Probe, false);
  ASSERT_TRUE(probed) << probed.error();
  EXPECT_NE(dynamic_cast<Qcow2Image*>(probed->backend.get()), nullptr);
  EXPECT_EQ(probed->backend->size_bytes(), 4u << 20);
  probed = Error{"closed"};
  auto forced = open_image(file, ImageFormat::Raw, true);
  ASSERT_TRUE(forced) << forced.error();
  EXPECT_NE(dynamic_cast<RawImage*>(forced->backend.get()), nullptr);
  // A probed raw disk never becomes a qcow2 image by a guest write; a named one may.
  const std::string raw = path("plain.raw");
  test::write_file(raw, std::vector<uint8_t>(8192, 0));
  EXPECT_FALSE(open_image(raw, ImageFormat::Qcow2, false));
  auto plain = open_image(raw, ImageFormat::Probe, false);
  ASSERT_TRUE(plain) << plain.error();
  std::vector<uint8_t> magic(qcow2::kMagic.begin(), qcow2::kMagic.end());
  EXPECT_FALSE(plain->backend->write(0, magic));
  EXPECT_TRUE(plain->backend->write(2, std::vector<uint8_t>{'I', 0xFB}));
  EXPECT_FALSE(plain->backend->write(0, std::vector<uint8_t>{'Q', 'F'}));  // completes the magic
  EXPECT_TRUE(plain->backend->write(512, magic));
  plain = Error{"closed"};
  auto named = open_image(raw, ImageFormat::Raw, false);
  ASSERT_TRUE(named);
  EXPECT_TRUE(named->backend->write(0, magic));
  EXPECT_EQ(image_format_from_name("qcow2"), ImageFormat::Qcow2);
  EXPECT_EQ(image_format_from_name("vmdk"), std::nullopt);
}

// A process killed between writes (no flush, no destructor) leaves an image QEMU finds
// consistent: exit 0, or 3 (leaked clusters only). 512-byte clusters over 1 GiB make the
// L2 cache evict and the refcount table move on the way; what was flushed reads back.
TEST_F(Qcow2RefusalTest, KilledProcessLeavesAConsistentImage) {
  for (const int kill_after : {10, 4000, 12000}) {
    const std::string file = create("killed.qcow2", uint64_t{1} << 30, "cluster_size=512");
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      auto image = Qcow2Image::open(file, {});
      if (!image) ::_exit(2);
      std::mt19937_64 random(static_cast<uint64_t>(kill_after));
      std::vector<uint8_t> data(1024, 0x5e);
      for (int i = 0; i < kill_after; ++i) {
        if (i == kill_after / 2 && !(*image)->flush()) ::_exit(3);
        // Before the flush the first half of the disk, after it the second half.
        const uint64_t half = i < kill_after / 2 ? 0 : uint64_t{1} << 29;
        if (!(*image)->write(half + (random() % (1 << 14)) * 32768 + 300, data)) ::_exit(4);
      }
      ::raise(SIGKILL);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
    const test::CommandResult check = test::run_command("qemu-img check " + quoted(file));
    EXPECT_TRUE(check.status == 0 || check.status == 3) << kill_after << "\n" << check.output;
    EXPECT_EQ(check.output.find("ERROR"), std::string::npos) << check.output;
    std::mt19937_64 random(static_cast<uint64_t>(kill_after));
    auto image = Qcow2Image::open(file, {.read_only = true});
    ASSERT_TRUE(image) << image.error();
    std::vector<uint8_t> back(1024);
    for (int i = 0; i < kill_after / 2; ++i) {
      ASSERT_TRUE((*image)->read((random() % (1 << 14)) * 32768 + 300, back));
      ASSERT_EQ(back, std::vector<uint8_t>(1024, 0x5e)) << "flushed write " << i << " of " << kill_after;
    }
    image = Error{"closed"};
    std::filesystem::remove(file);
  }
}

}  // namespace
}  // namespace vmm86
