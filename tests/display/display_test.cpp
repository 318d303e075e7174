// The host displays' pieces that need no guest: keysyms to PC keys (X11 keysymdef.h values,
// the IBM set 1 codes) and the PNG writer (read back with zlib as a PNG reader would).
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "vmm/display/keysym.h"
#include "vmm/display/png.h"

namespace vmm86 {
namespace {

TEST(Keysym, CharactersMapToTheKeyThatTypesThem) {
  EXPECT_EQ(pc_key_for_keysym('a')->code, 0x1E);
  EXPECT_EQ(pc_key_for_keysym('A')->code, 0x1E);  // Shift comes as its own key
  EXPECT_EQ(pc_key_for_keysym('!')->code, 0x02);
  EXPECT_EQ(pc_key_for_keysym('/')->code, 0x35);
  EXPECT_EQ(pc_key_for_keysym(' ')->code, 0x39);
  EXPECT_EQ(pc_key_for_keysym('~')->code, 0x29);
}

TEST(Keysym, FunctionAndEditingKeys) {
  EXPECT_EQ(pc_key_for_keysym(0xFF0D)->code, 0x1C);  // Return
  EXPECT_EQ(pc_key_for_keysym(0xFFBE)->code, 0x3B);  // F1
  EXPECT_EQ(pc_key_for_keysym(0xFFC7)->code, 0x44);  // F10
  const auto up = pc_key_for_keysym(0xFF52);
  ASSERT_TRUE(up);
  EXPECT_EQ(up->code, 0x48);
  EXPECT_TRUE(up->extended);
  EXPECT_FALSE(pc_key_for_keysym(0x20AC));  // the euro sign: no US key
}

TEST(Png, WritesWhatAReaderDecodes) {
  VgaFrame frame;
  frame.width = 2;
  frame.height = 2;
  frame.pixels = {0xFF0000, 0x00FF00, 0x0000FF, 0x123456};
  const std::string path = testing::TempDir() + "vmm86-png-test.png";
  ASSERT_TRUE(write_png(path, frame));
  std::ifstream in(path, std::ios::binary);
  const std::vector<uint8_t> png((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::remove(path.c_str());
  ASSERT_GT(png.size(), 8u + 25 + 12);
  EXPECT_EQ(std::vector<uint8_t>(png.begin(), png.begin() + 8),
            (std::vector<uint8_t>{0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'}));
  EXPECT_EQ(std::string(png.begin() + 12, png.begin() + 16), "IHDR");
  EXPECT_EQ(png[19], 2);  // width 2, big-endian
  EXPECT_EQ(png[24], 8);  // 8 bits per sample
  EXPECT_EQ(png[25], 2);  // truecolour
  // IDAT follows IHDR (8 + 25 bytes): two rows of filter byte 0 and RGB.
  const size_t idat = 8 + 25;
  const uint32_t length = uint32_t{png[idat]} << 24 | uint32_t{png[idat + 1]} << 16 | uint32_t{png[idat + 2]} << 8 |
                          png[idat + 3];
  EXPECT_EQ(std::string(png.begin() + idat + 4, png.begin() + idat + 8), "IDAT");
  std::vector<uint8_t> raw(14);
  uLongf raw_size = raw.size();
  ASSERT_EQ(uncompress(raw.data(), &raw_size, &png[idat + 8], length), Z_OK);
  EXPECT_EQ(raw, (std::vector<uint8_t>{0, 0xFF, 0, 0, 0, 0xFF, 0, 0, 0, 0, 0xFF, 0x12, 0x34, 0x56}));
}

}  // namespace
}  // namespace vmm86
