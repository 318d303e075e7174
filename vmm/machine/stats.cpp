#include "vmm/machine/stats.h"

#include <fmt/format.h>

#include <optional>
#include <type_traits>

namespace vmm86 {

namespace {

constexpr std::string_view kStatKeys[] = {
#define VMM86_X(line, key, text, value) key,
    VMM86_STATS(VMM86_X)
#undef VMM86_X
};

constexpr StatLine kStatRowLines[] = {
#define VMM86_X(line, key, text, value) StatLine::line,
    VMM86_STATS(VMM86_X)
#undef VMM86_X
};

constexpr bool keys_unique() {
  for (size_t i = 0; i < std::size(kStatKeys); ++i) {
    for (size_t j = i + 1; j < std::size(kStatKeys); ++j) {
      if (kStatKeys[i] == kStatKeys[j]) return false;
    }
  }
  return true;
}
static_assert(keys_unique(), "two statistics share a key");

// The printer starts a line whenever the line changes, so a line's rows must stand together.
constexpr bool rows_in_line_order() {
  for (size_t i = 1; i < std::size(kStatRowLines); ++i) {
    if (kStatRowLines[i] < kStatRowLines[i - 1]) return false;
  }
  return true;
}
static_assert(rows_in_line_order(), "VMM86_STATS rows must follow the order of VMM86_STAT_LINES");

std::string render(const Stat& stat) {
  return std::visit(
      [&](const auto& value) {
        using T = std::decay_t<decltype(value)>;
        if constexpr (std::is_same_v<T, MnemonicCounts>) {
          std::string list;
          for (const auto& [mnemonic, count] : value.top) list += fmt::format(" {}={}", mnemonic, count);
          return fmt::format(fmt::runtime(stat.text), list);
        } else {
          return fmt::format(fmt::runtime(stat.text), value);
        }
      },
      stat.value);
}

bool is_zero(const Stat& stat) {
  const auto* count = std::get_if<uint64_t>(&stat.value);
  return count && *count == 0;
}

}  // namespace

void print_stats_text(std::FILE* out, Engine engine, const std::vector<Stat>& stats) {
  std::string text;
  std::optional<StatLine> line;
  for (const Stat& stat : stats) {
    if (stat.line != line) {
      if (line) text += '\n';
      line = stat.line;
      text += fmt::format(fmt::runtime(kStatLines[static_cast<size_t>(stat.line)].label), engine_name(engine));
    }
    if (!(stat.hidden_when_zero && is_zero(stat))) text += render(stat);
  }
  if (line) text += '\n';
  std::fputs(text.c_str(), out);
}

}  // namespace vmm86
