// Guest memory as the CPU sees it: segmentation checks, then paging through the shared
// walker (with a small software TLB), then the physical map (RAM, ROM, MMIO, unbacked).
#include <algorithm>
#include <cstring>

#include "vmm/interp/core.h"

namespace vmm86::interp {

bool Core::raise(uint8_t vector) {
  fault = Fault{vector, false, 0};
  return false;
}

bool Core::raise(uint8_t vector, uint32_t error) {
  fault = Fault{vector, true, error};
  return false;
}

bool Core::seg_check(SegReg s, uint32_t offset, uint32_t size, Access a, uint32_t* linear) {
  const SegmentCache& sc = cpu.sreg(s);
  const uint8_t fv = s == SegReg::Ss ? vec::SS : vec::GP;
  if (pmode()) {
    // A null selector is cached as not present, so any use faults here.
    if (!sc.present()) return raise(fv, 0);
    const bool writes = a == Access::Write || a == Access::ReadWrite;
    if (writes && (sc.is_code() || (sc.type() & 2) == 0)) return raise(fv, 0);
    if (a == Access::Read && sc.is_code() && (sc.type() & 2) == 0) return raise(fv, 0);
  }
  const uint64_t last = uint64_t{offset} + size - 1;
  if (sc.expand_down()) {
    const uint64_t upper = sc.default_big() ? 0xFFFFFFFFu : 0xFFFFu;
    if (offset <= sc.limit || last > upper) return raise(fv, 0);
  } else if (last > sc.limit && sc.limit != 0xFFFFFFFFu) {
    // With a 4 GiB limit an access that runs past offset FFFFFFFFh may or may not fault
    // (SDM vol. 3, 5.3, "implementation-specific"): it wraps here, as in translated code.
    return raise(fv, 0);
  }
  *linear = sc.base + offset;
  return true;
}

namespace {

/// Translates the part of an access that lies in one page.
bool translate_page(Core& c, uint32_t linear, uint32_t len, Access a, bool user, Chunk* out) {
  const bool write = a == Access::Write || a == Access::ReadWrite;
  const uint32_t page = linear & ~kPageMask;
  const uint32_t in_page = linear & kPageMask;
  TlbEntry& e = c.tlb[user ? 1 : 0][(linear >> kPageShift) % Core::kTlbSize];
  const uint32_t tag = page | 1u;
  if ((write ? e.write_tag : e.read_tag) == tag) {
    *out = Chunk{e.phys + in_page, e.host + in_page, len, PhysKind::Ram, false};
    return true;
  }
  const WalkResult r = walk_page_tables(c.mem, paging_mode_of(c.cpu), GuestLinear{linear},
                                        AccessKind{write, user, a == Access::Fetch});
  if (!r.ok) {
    c.cpu.cr2 = linear;
    return c.raise(vec::PF, r.error_code);
  }
  const GuestPhys frame{r.phys.value & ~uint64_t{kPageMask}};
  PhysKind kind = c.mem.kind_at(frame);
  uint8_t* host = c.mem.host_ptr(frame, kPageSize);
  if (kind == PhysKind::Ram && host == nullptr) kind = PhysKind::Unbacked;
  *out = Chunk{r.phys.value, nullptr, len, kind, false};
  if (kind == PhysKind::Ram) {
    const bool watched = c.hooks.is_watched_page(frame);
    if (e.read_tag == 0 && e.write_tag == 0) c.note_tlb_fill(user, (linear >> kPageShift) % Core::kTlbSize);
    if (e.read_tag != tag) e.write_tag = 0;
    e.read_tag = tag;
    e.host = host;
    e.phys = frame.value;
    e.large = r.large_page;
    c.tlb_has_large |= r.large_page;
    // Writes may bypass the walker only once D is set, so the D update is never skipped.
    if (!watched && (write || (r.writable && r.dirty))) e.write_tag = tag;
    out->watched = write && watched;
    out->host = out->watched ? nullptr : host + in_page;
  } else if (kind == PhysKind::Rom && !write && host != nullptr) {
    out->host = host + in_page;
  }
  return true;
}

}  // namespace

bool Core::translate_linear(uint32_t linear, uint32_t size, Access a, bool user, MemTarget* t) {
  const uint32_t first = std::min(size, kPageSize - (linear & kPageMask));
  t->size = size;
  t->count = 1;
  if (!translate_page(*this, linear, first, a, user, &t->chunk[0])) return false;
  if (first < size) {
    t->count = 2;
    if (!translate_page(*this, linear + first, size - first, a, user, &t->chunk[1])) return false;
  }
  return true;
}

bool Core::translate(SegReg s, uint32_t offset, uint32_t size, Access a, MemTarget* t) {
  uint32_t linear = 0;
  if (!seg_check(s, offset, size, a, &linear)) return false;
  return translate_linear(linear, size, a, cpl() == 3, t);
}

namespace {

// MMIO is reached in naturally sized pieces of at most 4 bytes.
unsigned mmio_piece(uint32_t remaining) { return remaining >= 4 ? 4 : remaining >= 2 ? 2 : 1; }

}  // namespace

namespace {

/// The RAM bytes a single-chunk access of 1, 2, 4 or 8 bytes reaches, or null.
uint8_t* atomic_host(GuestMemory& mem, const MemTarget& t) {
  if (t.count != 1) return nullptr;
  const Chunk& ch = t.chunk[0];
  if (ch.len != 1 && ch.len != 2 && ch.len != 4 && ch.len != 8) return nullptr;
  if (ch.host) return ch.host;
  return ch.watched ? mem.host_ptr(GuestPhys{ch.phys}, ch.len) : nullptr;
}

uint64_t atomic_load(const uint8_t* host, uint32_t len) {
  switch (len) {
    case 1: return __atomic_load_n(host, __ATOMIC_SEQ_CST);
    case 2: return __atomic_load_n(reinterpret_cast<const uint16_t*>(host), __ATOMIC_SEQ_CST);
    case 4: return __atomic_load_n(reinterpret_cast<const uint32_t*>(host), __ATOMIC_SEQ_CST);
    default: return __atomic_load_n(reinterpret_cast<const uint64_t*>(host), __ATOMIC_SEQ_CST);
  }
}

template <typename T>
bool compare_and_swap(uint8_t* host, uint64_t expected, uint64_t desired) {
  auto want = static_cast<T>(expected);
  return __atomic_compare_exchange_n(reinterpret_cast<T*>(host), &want, static_cast<T>(desired), false,
                                     __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

bool compare_and_swap(uint8_t* host, uint32_t len, uint64_t expected, uint64_t desired) {
  switch (len) {
    case 1: return compare_and_swap<uint8_t>(host, expected, desired);
    case 2: return compare_and_swap<uint16_t>(host, expected, desired);
    case 4: return compare_and_swap<uint32_t>(host, expected, desired);
    default: return compare_and_swap<uint64_t>(host, expected, desired);
  }
}

}  // namespace

bool Core::atomic_read(const MemTarget& t, void* dst) {
  uint8_t* host = atomic_host(mem, t);
  if (!host) return false;
  const uint32_t len = t.chunk[0].len;
  atomic_rmw.host = host;
  atomic_rmw.len = len;
  atomic_rmw.seen = atomic_load(host, len);
  std::memcpy(dst, &atomic_rmw.seen, len);
  return true;
}

bool Core::atomic_write(const MemTarget& t, const void* src) {
  if (atomic_rmw.host == nullptr || atomic_host(mem, t) != atomic_rmw.host || t.chunk[0].len != atomic_rmw.len) {
    return false;
  }
  uint64_t value = 0;
  std::memcpy(&value, src, atomic_rmw.len);
  if (!compare_and_swap(atomic_rmw.host, atomic_rmw.len, atomic_rmw.seen, value)) {
    atomic_rmw.conflict = true;  // another vCPU wrote it since: the instruction runs again
    return true;
  }
  if (t.chunk[0].watched) hooks.watched_write(GuestPhys{t.chunk[0].phys}, atomic_rmw.len);
  return true;
}

void Core::read_target(const MemTarget& t, void* dst) {
  if (atomic_rmw.active && atomic_read(t, dst)) return;
  auto* out = static_cast<uint8_t*>(dst);
  for (unsigned i = 0; i < t.count; ++i) {
    const Chunk& ch = t.chunk[i];
    if (ch.host != nullptr) {
      std::memcpy(out, ch.host, ch.len);
    } else if (ch.watched) {
      // A read-modify-write of a watched RAM page: only the write side is special.
      (void)mem.read(GuestPhys{ch.phys}, out, ch.len);
    } else {
      ++unmappable_accesses;
      if (ch.kind == PhysKind::Mmio) {
        for (uint32_t done = 0; done < ch.len;) {
          const unsigned n = mmio_piece(ch.len - done);
          const uint32_t v = hooks.mmio_read(GuestPhys{ch.phys + done}, n);
          std::memcpy(out + done, &v, n);
          done += n;
        }
      } else {
        std::memset(out, 0xFF, ch.len);  // nothing there: the bus floats high
      }
    }
    out += ch.len;
  }
}

void Core::write_target(const MemTarget& t, const void* src) {
  if (atomic_rmw.active && atomic_write(t, src)) return;
  const auto* in = static_cast<const uint8_t*>(src);
  for (unsigned i = 0; i < t.count; ++i) {
    const Chunk& ch = t.chunk[i];
    if (ch.host != nullptr) {
      std::memcpy(ch.host, in, ch.len);
    } else if (ch.watched) {
      (void)mem.write(GuestPhys{ch.phys}, in, ch.len);
      hooks.watched_write(GuestPhys{ch.phys}, ch.len);
    } else {
      ++unmappable_accesses;
      if (ch.kind == PhysKind::Mmio) {
        for (uint32_t done = 0; done < ch.len;) {
          const unsigned n = mmio_piece(ch.len - done);
          uint32_t v = 0;
          std::memcpy(&v, in + done, n);
          hooks.mmio_write(GuestPhys{ch.phys + done}, n, v);
          done += n;
        }
      }  // ROM and unbacked: writes are dropped
    }
    in += ch.len;
  }
}

bool Core::read_mem(SegReg s, uint32_t offset, unsigned size, uint32_t* v) {
  MemTarget t;
  if (!translate(s, offset, size, Access::Read, &t)) return false;
  uint32_t x = 0;
  read_target(t, &x);
  *v = x;
  return true;
}

bool Core::write_mem(SegReg s, uint32_t offset, unsigned size, uint32_t v) {
  MemTarget t;
  if (!translate(s, offset, size, Access::Write, &t)) return false;
  write_target(t, &v);
  return true;
}

bool Core::read_bytes(SegReg s, uint32_t offset, void* dst, uint32_t size) {
  MemTarget t;
  if (!translate(s, offset, size, Access::Read, &t)) return false;
  read_target(t, dst);
  return true;
}

bool Core::write_bytes(SegReg s, uint32_t offset, const void* src, uint32_t size) {
  MemTarget t;
  if (!translate(s, offset, size, Access::Write, &t)) return false;
  write_target(t, src);
  return true;
}

bool Core::read_sys(uint32_t linear, void* dst, uint32_t size) {
  MemTarget t;
  if (!translate_linear(linear, size, Access::Read, false, &t)) return false;
  read_target(t, dst);
  return true;
}

bool Core::write_sys(uint32_t linear, const void* src, uint32_t size) {
  MemTarget t;
  if (!translate_linear(linear, size, Access::Write, false, &t)) return false;
  write_target(t, src);
  return true;
}

void Core::flush_tlb() {
  // Only the entries filled since the last flush: Linux writes CR3 on every process
  // switch, and a full clear was 16 KiB each time.
  if (tlb_filled_overflow) {
    for (auto& level : tlb) level.fill(TlbEntry{});
  } else {
    for (const uint16_t i : tlb_filled) tlb[i / kTlbSize][i % kTlbSize] = TlbEntry{};
  }
  tlb_filled.clear();
  tlb_filled_overflow = false;
  tlb_has_large = false;
}

void Core::invalidate_page(uint32_t linear) {
  const uint32_t tag = (linear & ~kPageMask) | 1u;
  for (auto& level : tlb) {
    TlbEntry& e = level[(linear >> kPageShift) % kTlbSize];
    if (e.read_tag == tag || e.write_tag == tag) e = TlbEntry{};
  }
  if (!tlb_has_large) return;
  // A 4 MiB page is one TLB entry for the CPU: INVLPG of any address in it drops all of it,
  // and here it was cached as 4 KiB pieces.
  constexpr uint32_t kLargePageMask = (4u << 20) - 1;
  for (auto& level : tlb) {
    for (TlbEntry& e : level) {
      if (e.large && (e.read_tag & ~kLargePageMask) == (linear & ~kLargePageMask)) e = TlbEntry{};
    }
  }
}

void Core::set_sp(uint32_t v) {
  uint32_t& esp = cpu.reg(Gpr::Esp);
  esp = stack32() ? v : ((esp & 0xFFFF0000u) | (v & 0xFFFFu));
}

bool Core::push(uint32_t v, unsigned size) {
  const uint32_t new_sp = stack32() ? sp() - size : ((sp() - size) & 0xFFFFu);
  if (!write_mem(SegReg::Ss, new_sp, size, v)) return false;
  set_sp(new_sp);
  return true;
}

bool Core::pop(unsigned size, uint32_t* v) {
  if (!read_mem(SegReg::Ss, sp(), size, v)) return false;
  set_sp(sp() + size);
  return true;
}

bool Core::stack_peek(uint32_t delta, unsigned size, uint32_t* v) {
  const uint32_t at = stack32() ? sp() + delta : ((sp() + delta) & 0xFFFFu);
  return read_mem(SegReg::Ss, at, size, v);
}

}  // namespace vmm86::interp
