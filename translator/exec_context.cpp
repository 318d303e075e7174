#include "translator/exec_context.h"

#include <sys/mman.h>

#include <new>

namespace vmm86 {

namespace {
constexpr size_t kBelowContext = kPageSize + kReturnStackBytes + kPageSize;  // guard, return stack, poll page
constexpr size_t region_bytes() { return kBelowContext + ((sizeof(ExecContext) + kPageSize - 1) & ~size_t{kPageMask}); }
uint8_t* poll_page(const ExecContext* ctx) {
  return reinterpret_cast<uint8_t*>(const_cast<ExecContext*>(ctx)) - kPageSize;
}
uint8_t* region_start(const ExecContext* ctx) {
  return reinterpret_cast<uint8_t*>(const_cast<ExecContext*>(ctx)) - kBelowContext;
}
}  // namespace

void ExecContextDeleter::operator()(ExecContext* ctx) const {
  ctx->~ExecContext();
  munmap(region_start(ctx), region_bytes());
}

ExecContextPtr create_exec_context() {
  void* p = mmap(nullptr, region_bytes(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  auto* ctx = new (static_cast<uint8_t*>(p) + kBelowContext) ExecContext();
  mprotect(region_start(ctx), kPageSize, PROT_NONE);
  mprotect(poll_page(ctx), kPageSize, PROT_READ);
  ctx->return_stack_top = reinterpret_cast<uint64_t>(poll_page(ctx)) - 8;
  return ExecContextPtr(ctx);
}

void request_exit(ExecContext* ctx) { mprotect(poll_page(ctx), kPageSize, PROT_NONE); }

void clear_exit_request(ExecContext* ctx) { mprotect(poll_page(ctx), kPageSize, PROT_READ); }

bool is_return_stack_guard(const ExecContext* ctx, const void* addr) {
  const uint8_t* guard = region_start(ctx);
  const auto* a = static_cast<const uint8_t*>(addr);
  return a >= guard && a < guard + kPageSize;
}

bool is_poll_page(const ExecContext* ctx, const void* addr) {
  const uint8_t* page = poll_page(ctx);
  const auto* a = static_cast<const uint8_t*>(addr);
  return a >= page && a < page + kPageSize;
}

}  // namespace vmm86
