// Raw against qcow2 through BlockBackend, as the IDE disk calls it (synchronous, on one
// thread): 64 KiB sequential writes to a new image and reads of a written one, and 4 KiB
// random writes to a new image (each one allocates and fills a qcow2 cluster) and to a
// written one (in place). Each iteration ends with flush() (fdatasync; qcow2 writes its
// metadata first). The files live in $TMPDIR (default /tmp): on a page-cached file system
// this measures the format's own cost (lookups, allocation, copy-on-write, metadata
// writes), not the disk. Rates are per wall-clock second (UseRealTime: I/O waits count).
//
//   storage_bench [--benchmark_filter=...]     needs qemu-img for the qcow2 images
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "devices/storage/open_image.h"

namespace vmm86::bench {
namespace {

constexpr uint64_t kImageBytes = 256ull << 20;
constexpr uint64_t kSequentialBytes = 64ull << 20;
constexpr size_t kSequentialChunk = 64 << 10;
constexpr int kRandomWrites = 4096;
constexpr size_t kRandomChunk = 4096;

enum Format { kRaw, kQcow2 };

std::string temp_path(Format format) {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir != nullptr && *dir != '\0' ? dir : "/tmp") + "/vmm86-storage-bench-" +
         std::to_string(::getpid()) + (format == kRaw ? ".raw" : ".qcow2");
}

/// A new, empty image of kImageBytes (sparse raw file, or qemu-img's default qcow2: v3,
/// 64 KiB clusters), opened writable. Null (and the benchmark skipped) on failure.
std::unique_ptr<BlockBackend> fresh_image(Format format, benchmark::State& state) {
  const std::string path = temp_path(format);
  ::unlink(path.c_str());
  if (format == kRaw) {
    const int fd = ::open(path.c_str(), O_CREAT | O_RDWR | O_TRUNC, 0600);
    if (fd < 0 || ::ftruncate(fd, static_cast<off_t>(kImageBytes)) != 0) state.SkipWithError("cannot create raw file");
    if (fd >= 0) ::close(fd);
  } else {
    const std::string command = "qemu-img create -q -f qcow2 '" + path + "' " + std::to_string(kImageBytes);
    if (std::system(command.c_str()) != 0) state.SkipWithError("qemu-img create failed (install qemu-utils)");
  }
  if (state.error_occurred()) return nullptr;
  auto image = open_image(path, format == kRaw ? ImageFormat::Raw : ImageFormat::Qcow2, false);
  ::unlink(path.c_str());  // the open file lives on until the backend goes
  if (!image) {
    state.SkipWithError(image.error().c_str());
    return nullptr;
  }
  return std::move(image->backend);
}

/// `bytes` from 0 in `chunk`-sized writes.
bool fill(BlockBackend& image, uint64_t bytes, size_t chunk, uint8_t value) {
  const std::vector<uint8_t> data(chunk, value);
  for (uint64_t at = 0; at < bytes; at += chunk) {
    if (!image.write(at, data)) return false;
  }
  return image.flush();
}

void BM_SequentialWrite(benchmark::State& state) {
  const auto format = static_cast<Format>(state.range(0));
  for (auto _ : state) {
    state.PauseTiming();
    auto image = fresh_image(format, state);
    if (image == nullptr) return;
    state.ResumeTiming();
    if (!fill(*image, kSequentialBytes, kSequentialChunk, 0x5A)) state.SkipWithError("write failed");
    state.PauseTiming();
    image.reset();
    state.ResumeTiming();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kSequentialBytes));
}

void BM_SequentialRead(benchmark::State& state) {
  const auto format = static_cast<Format>(state.range(0));
  auto image = fresh_image(format, state);
  if (image == nullptr || !fill(*image, kSequentialBytes, kSequentialChunk, 0xA5)) return;
  std::vector<uint8_t> buffer(kSequentialChunk);
  for (auto _ : state) {
    for (uint64_t at = 0; at < kSequentialBytes; at += kSequentialChunk) {
      if (!image->read(at, buffer)) state.SkipWithError("read failed");
    }
    benchmark::DoNotOptimize(buffer.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kSequentialBytes));
}

/// 4 KiB writes at random 4 KiB-aligned offsets of the whole image; range(1): the image was
/// written whole first (overwrites in place) or is new (each write allocates).
void BM_RandomWrite4k(benchmark::State& state) {
  const auto format = static_cast<Format>(state.range(0));
  const bool allocated = state.range(1) != 0;
  std::mt19937_64 random(42);
  const std::vector<uint8_t> data(kRandomChunk, 0x3C);
  for (auto _ : state) {
    state.PauseTiming();
    auto image = fresh_image(format, state);
    if (image == nullptr || (allocated && !fill(*image, kImageBytes, 1 << 20, 1))) return;
    state.ResumeTiming();
    for (int i = 0; i < kRandomWrites; ++i) {
      if (!image->write((random() % (kImageBytes / kRandomChunk)) * kRandomChunk, data)) state.SkipWithError("write");
    }
    if (!image->flush()) state.SkipWithError("flush failed");
    state.PauseTiming();
    image.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kRandomWrites));
}

BENCHMARK(BM_SequentialWrite)->ArgName("qcow2")->Arg(kRaw)->Arg(kQcow2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_SequentialRead)->ArgName("qcow2")->Arg(kRaw)->Arg(kQcow2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_RandomWrite4k)
    ->ArgNames({"qcow2", "allocated"})
    ->Args({kRaw, 0})
    ->Args({kQcow2, 0})
    ->Args({kRaw, 1})
    ->Args({kQcow2, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace vmm86::bench

BENCHMARK_MAIN();
