// libFuzzer target: a whole Parquet file image goes through ParquetFile::from_memory and every
// column is read. FormatError/Error is the expected outcome for bad input; anything else (another
// exception, a sanitizer report, an accepted column breaking ColumnData's invariants) is a bug.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <variant>

#include "robometer/core/error.h"
#include "robometer/io/parquet.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace robometer::io;
  ParquetLimits limits;  // small caps keep each input fast under ASan
  limits.max_page_bytes = 4 << 20;
  limits.max_page_values = 1 << 18;
  limits.max_column_values = 1 << 20;
  try {
    ParquetFile f = ParquetFile::from_memory(std::string(reinterpret_cast<const char*>(data), size),
                                             "fuzz.parquet", limits);
    for (const auto& col : f.schema()) {
      ColumnData c;
      try {
        c = f.read_column(col.path);
      } catch (const robometer::Error&) {
        continue;  // this column is corrupt (or a nested list): try the others
      }
      size_t n = std::visit([](const auto& v) { return v.size(); }, c.values);
      if (c.valid.size() != static_cast<size_t>(c.num_rows)) std::abort();
      if (c.is_list()) {
        if (c.offsets.size() != c.valid.size() + 1 || c.offsets.front() != 0) std::abort();
        for (size_t r = 0; r + 1 < c.offsets.size(); ++r)
          if (c.offsets[r] > c.offsets[r + 1]) std::abort();
        if (static_cast<size_t>(c.offsets.back()) != n || c.element_valid.size() != n) std::abort();
      } else if (n != c.valid.size()) {
        std::abort();
      }
    }
  } catch (const robometer::Error&) {
  }
  return 0;
}
