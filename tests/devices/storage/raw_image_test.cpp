// RawImage and SnapshotOverlay on temporary files.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "devices/storage/raw_image.h"
#include "devices/storage/snapshot_overlay.h"

namespace vmm86 {
namespace {

class RawImageTest : public ::testing::Test {
 protected:
  RawImageTest() {
    std::string pattern = ::testing::TempDir() + "vmm86-raw-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) ADD_FAILURE() << "mkdtemp";
    dir = pattern;
  }
  ~RawImageTest() override {
    for (const std::string& file : files) ::unlink(file.c_str());
    ::rmdir(dir.c_str());
  }

  /// A file of `size` bytes, byte i = i * 7.
  std::string make_file(const std::string& name, size_t size) {
    const std::string path = dir + "/" + name;
    std::ofstream out(path, std::ios::binary);
    for (size_t i = 0; i < size; ++i) out.put(static_cast<char>(i * 7));
    files.push_back(path);
    return path;
  }

  std::string dir;
  std::vector<std::string> files;
};

TEST_F(RawImageTest, RoundTripThroughTheFile) {
  const std::string path = make_file("disk.img", 8192);
  {
    auto image = RawImage::open(path, {});
    ASSERT_TRUE(image) << image.error();
    EXPECT_EQ((*image)->size_bytes(), 8192u);
    EXPECT_FALSE((*image)->read_only());
    EXPECT_EQ((*image)->sector_count(kAtaSectorSize), 16u);
    EXPECT_EQ((*image)->size_note(), "");
    std::vector<uint8_t> data(512, 0xAB);
    EXPECT_TRUE((*image)->write_sectors(3, kAtaSectorSize, data));
    EXPECT_TRUE((*image)->flush());
    std::vector<uint8_t> back(1024);
    EXPECT_TRUE((*image)->read(3 * 512 - 512, back));
    EXPECT_EQ(back[0], static_cast<uint8_t>(1024 * 7));
    EXPECT_EQ(back[512], 0xAB);
    EXPECT_EQ(back[1023], 0xAB);
  }
  auto again = RawImage::open(path, {.read_only = true});
  ASSERT_TRUE(again) << again.error();
  std::vector<uint8_t> back(512);
  EXPECT_TRUE((*again)->read(3 * 512, back));
  EXPECT_EQ(back, std::vector<uint8_t>(512, 0xAB));
}

TEST_F(RawImageTest, ReadOnlyImageRefusesWrites) {
  const std::string path = make_file("ro.img", 4096);
  auto image = RawImage::open(path, {.read_only = true});
  ASSERT_TRUE(image) << image.error();
  EXPECT_TRUE((*image)->read_only());
  std::vector<uint8_t> data(512, 1);
  EXPECT_FALSE((*image)->write(0, data));
  std::vector<uint8_t> back(512);
  EXPECT_TRUE((*image)->read(0, back));
  EXPECT_EQ(back[1], 7);
}

TEST_F(RawImageTest, SecondWritableOpenIsRefusedWhileLocked) {
  const std::string path = make_file("locked.img", 4096);
  auto first = RawImage::open(path, {});
  ASSERT_TRUE(first) << first.error();
  auto second = RawImage::open(path, {});
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error(), "image " + path + " is in use by another process");
  // A reader cannot share a writer's image either.
  EXPECT_FALSE(RawImage::open(path, {.read_only = true}));
  first = Error{"closed"};  // drops the image and its lock
  auto third = RawImage::open(path, {});
  EXPECT_TRUE(third) << third.error();
}

TEST_F(RawImageTest, ReadersShareAnImage) {
  const std::string path = make_file("shared.iso", 4096);
  auto first = RawImage::open(path, {.read_only = true});
  auto second = RawImage::open(path, {.read_only = true});
  EXPECT_TRUE(first && second);
  EXPECT_FALSE(RawImage::open(path, {}));  // but not with a writer
}

TEST_F(RawImageTest, DirectoryAndFifoAreRefused) {
  auto directory = RawImage::open(dir, {});
  ASSERT_FALSE(directory);
  EXPECT_EQ(directory.error(), dir + " is a directory, not an image file or block device");
  const std::string fifo = dir + "/pipe";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  files.push_back(fifo);
  auto pipe = RawImage::open(fifo, {.read_only = true});  // must not wait for a writer
  ASSERT_FALSE(pipe);
  EXPECT_EQ(pipe.error(), fifo + " is a FIFO, not an image file or block device");
}

TEST_F(RawImageTest, MissingFileNamesThePath) {
  auto image = RawImage::open(dir + "/nothing.img", {});
  ASSERT_FALSE(image);
  EXPECT_NE(image.error().find("nothing.img"), std::string::npos);
  EXPECT_NE(image.error().find("No such file"), std::string::npos);
}

TEST_F(RawImageTest, UnwritableFileOpenedForWritingSaysSo) {
  if (::geteuid() == 0) GTEST_SKIP() << "root may write anything";
  const std::string path = make_file("perm.img", 4096);
  ASSERT_EQ(::chmod(path.c_str(), 0444), 0);
  auto image = RawImage::open(path, {});
  ASSERT_FALSE(image);
  EXPECT_NE(image.error().find("is not writable"), std::string::npos) << image.error();
  EXPECT_NE(image.error().find("read-only"), std::string::npos) << image.error();
  EXPECT_TRUE(RawImage::open(path, {.read_only = true}));
}

TEST_F(RawImageTest, TruncatedLastSectorReadsZeroFilled) {
  const std::string path = make_file("odd.img", 1000);
  auto image = RawImage::open(path, {});
  ASSERT_TRUE(image) << image.error();
  EXPECT_EQ((*image)->size_bytes(), 1000u);
  EXPECT_EQ((*image)->sector_count(kAtaSectorSize), 2u);  // the partial sector counts
  EXPECT_NE((*image)->size_note().find("not a multiple of 512"), std::string::npos);
  std::vector<uint8_t> sector(512, 0xEE);
  EXPECT_TRUE((*image)->read_sectors(1, kAtaSectorSize, sector));
  EXPECT_EQ(sector[0], static_cast<uint8_t>(512 * 7));
  EXPECT_EQ(sector[487], static_cast<uint8_t>(999 * 7));
  EXPECT_EQ(sector[488], 0);
  EXPECT_EQ(sector[511], 0);
  // The partial sector may be written whole; nothing beyond it.
  EXPECT_TRUE((*image)->write_sectors(1, kAtaSectorSize, sector));
  EXPECT_FALSE((*image)->write_sectors(2, kAtaSectorSize, sector));
  EXPECT_EQ((*image)->size_bytes(), 1024u);
}

TEST_F(RawImageTest, EmptyFileIsRefused) {
  const std::string path = make_file("empty.img", 0);
  auto image = RawImage::open(path, {});
  ASSERT_FALSE(image);
  EXPECT_EQ(image.error(), "image " + path + " is empty");
}

TEST_F(RawImageTest, SnapshotOverlayLeavesTheImageUntouched) {
  const std::string path = make_file("base.img", 8192);
  auto base = RawImage::open(path, {.read_only = true});
  ASSERT_TRUE(base) << base.error();
  auto overlay = SnapshotOverlay::create(std::move(*base), dir);
  ASSERT_TRUE(overlay) << overlay.error();
  SnapshotOverlay& snap = **overlay;
  EXPECT_FALSE(snap.read_only());
  EXPECT_EQ(snap.size_bytes(), 8192u);
  std::vector<uint8_t> data(1024, 0x42);
  EXPECT_TRUE(snap.write(1024, data));  // sectors 2 and 3
  std::vector<uint8_t> partial(10, 0x99);
  EXPECT_TRUE(snap.write(5 * 512 + 100, partial));  // part of sector 5
  EXPECT_EQ(snap.overlay_sectors(), 3u);
  std::vector<uint8_t> back(8192);
  EXPECT_TRUE(snap.read(0, back));
  for (size_t i = 0; i < back.size(); ++i) {
    uint8_t expected = static_cast<uint8_t>(i * 7);
    if (i >= 1024 && i < 2048) expected = 0x42;
    if (i >= 5 * 512 + 100 && i < 5 * 512 + 110) expected = 0x99;
    ASSERT_EQ(back[i], expected) << i;
  }
  EXPECT_FALSE(snap.write(8192, partial));  // past the end
  // The file itself is unchanged.
  std::ifstream in(path, std::ios::binary);
  std::vector<char> file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_EQ(file.size(), 8192u);
  for (size_t i = 0; i < file.size(); ++i) ASSERT_EQ(static_cast<uint8_t>(file[i]), static_cast<uint8_t>(i * 7)) << i;
}

}  // namespace
}  // namespace vmm86
