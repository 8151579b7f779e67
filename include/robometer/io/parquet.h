// Apache Parquet reading, written in the project (Arrow/Parquet C++ is not packaged for Debian
// 12). Scope: what LeRobot / RBM datasets and DuckDB/pyarrow writers produce.
//  - footer + Thrift compact-protocol FileMetaData (schema, row groups, column chunks,
//    key-value metadata);
//  - data pages v1 and v2, dictionary pages; encodings PLAIN, RLE/bit-packed hybrid,
//    PLAIN_DICTIONARY/RLE_DICTIONARY, DELTA_BINARY_PACKED, DELTA_LENGTH_BYTE_ARRAY,
//    DELTA_BYTE_ARRAY, BYTE_STREAM_SPLIT; codecs UNCOMPRESSED, SNAPPY, GZIP, ZSTD, BROTLI,
//    LZ4 (Hadoop-framed, or a raw block as old writers made) and LZ4_RAW;
//  - physical types BOOLEAN, INT32, INT64, INT96 (as 12-byte strings), FLOAT, DOUBLE,
//    BYTE_ARRAY, FIXED_LEN_BYTE_ARRAY; flat nullable columns and one level of lists
//    (list<primitive>, or a primitive inside list<struct>);
//  - logical types, applied by the ColumnData getters: DECIMAL (INT32, INT64, FIXED_LEN_BYTE_ARRAY,
//    BYTE_ARRAY) read with its scale, unsigned integers, STRING/ENUM/JSON; DATE, TIME, TIMESTAMP
//    and INTERVAL are refused by the numeric getters (they are not plain numbers).
// Only the columns asked for are read. Every malformed input throws FormatError(path, what);
// reads are bounds-checked and allocations capped by ParquetLimits.
// The code is torch-free (it needs only core/error.h and the codec libraries).
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace robometer::io {

enum class ParquetType {
  Boolean = 0,
  Int32 = 1,
  Int64 = 2,
  Int96 = 3,
  Float = 4,
  Double = 5,
  ByteArray = 6,
  FixedLenByteArray = 7
};
const char* parquet_type_name(ParquetType t);

// Caps that keep a hostile file from exhausting memory or the stack.
struct ParquetLimits {
  int64_t max_footer_bytes = 64ll << 20;
  int64_t max_page_bytes = 256ll << 20;     // compressed or uncompressed size of one page
  int64_t max_page_values = 64ll << 20;     // levels/values claimed by one page
  int64_t max_column_values = 512ll << 20;  // values of one column across all row groups
  int max_thrift_depth = 32;
};

// One leaf column of the schema.
struct ParquetColumn {
  std::string path;  // leaf path joined with '.', e.g. "action.list.element"
  std::string name;  // user-facing name: the path with list wrapper levels removed
                     // ("action"), or the leaf path for flat columns
  std::vector<std::string> path_parts;
  ParquetType type = ParquetType::Int32;
  int type_length = 0;  // FIXED_LEN_BYTE_ARRAY width
  int max_def = 0;
  int max_rep = 0;
  int repeated_def = 0;      // definition level of the repeated ancestor (lists only)
  int converted_type = -1;   // Thrift ConvertedType, -1 if absent (0 = UTF8)
  std::string logical_type;  // "STRING", "LIST", "DECIMAL", "INTEGER", "TIMESTAMP", ... or
                             // empty; derived from converted_type when the file has only that
  int decimal_scale = -1;    // DECIMAL: digits after the point (-1: not a decimal)
  int decimal_precision = 0;
  bool is_unsigned = false;  // UINT_8..UINT_64 / INTEGER(bitWidth, isSigned = false)
  int integer_bits = 0;      // INTEGER: declared bit width (8, 16, 32, 64)
  std::string time_unit;     // TIME / TIMESTAMP: "MILLIS", "MICROS" or "NANOS"
  bool is_list() const { return max_rep > 0; }
  // Physical and logical type for messages: "INT32 DECIMAL(2,1)", "INT64 UINT64", "BYTE_ARRAY STRING".
  std::string type_name() const;
};

// One column's values, in row order. Booleans are stored as uint8_t (0/1); BYTE_ARRAY,
// FIXED_LEN_BYTE_ARRAY and INT96 as std::string (raw bytes).
using ParquetValues = std::variant<std::vector<uint8_t>, std::vector<int32_t>, std::vector<int64_t>,
                                   std::vector<float>, std::vector<double>, std::vector<std::string>>;

struct ColumnData {
  ParquetColumn column;
  int64_t num_rows = 0;
  // Flat column: one value slot per row; null rows hold a default value and valid[row] == 0.
  // List column: valid[row] says whether the list itself is present (0: NULL list);
  // offsets has num_rows + 1 entries, row r's elements are values[offsets[r] .. offsets[r+1]),
  // and element_valid says which elements are non-null.
  ParquetValues values;
  std::vector<uint8_t> valid;
  std::vector<int64_t> offsets;
  std::vector<uint8_t> element_valid;
  int64_t data_pages = 0;               // data pages decoded (diagnostics, tests)
  std::string file;                     // the file it was read from (named in getter errors)
  std::vector<int64_t> row_group_rows;  // rows of each row group (to name a bad row's group)

  bool is_list() const { return column.is_list(); }
  bool is_null(int64_t row) const { return valid.at(static_cast<size_t>(row)) == 0; }

  // Convenience getters for flat columns, with the logical type applied. They throw
  // FormatError naming the file, column (and row, row group and value where one is at fault)
  // when the column has another shape or type, a value does not fit, or a row is NULL (the
  // optional_* forms return nullopt for NULL instead).
  std::vector<std::string> strings() const;  // BYTE_ARRAY / FIXED_LEN_BYTE_ARRAY bytes (not DECIMAL)
  // Any integer column (INT32/INT64/BOOLEAN, unsigned ones up to INT64_MAX) or a DECIMAL
  // whose values are whole numbers.
  std::vector<int64_t> int64s() const;
  std::vector<double> doubles() const;  // any numeric column (DECIMAL scaled)
  std::vector<std::optional<std::string>> optional_strings() const;
  std::vector<std::optional<int64_t>> optional_int64s() const;
  std::vector<std::optional<double>> optional_doubles() const;
  // List column of numbers: one vector per row (a NULL list gives an empty vector; a NULL
  // element throws).
  std::vector<std::vector<double>> double_lists() const;
  std::vector<std::vector<float>> float_lists() const;
};

class ParquetFile {
 public:
  // Opens `path` and parses the footer. Throws FormatError(path, reason).
  explicit ParquetFile(const std::string& path, ParquetLimits limits = {});
  // The file image is taken from memory; `name` is used in error messages.
  static ParquetFile from_memory(std::string bytes, const std::string& name = "<memory>",
                                 ParquetLimits limits = {});
  ~ParquetFile();
  ParquetFile(const ParquetFile&) = delete;  // owns the file (Impl)
  ParquetFile& operator=(const ParquetFile&) = delete;
  ParquetFile(ParquetFile&&) noexcept;
  ParquetFile& operator=(ParquetFile&&) noexcept;

  const std::string& path() const;
  int64_t num_rows() const;
  int num_row_groups() const;
  const std::vector<ParquetColumn>& schema() const;  // leaf columns in schema order
  std::vector<std::string> column_names() const;     // ParquetColumn::name of each leaf
  const std::vector<std::pair<std::string, std::string>>& key_value_metadata() const;
  std::optional<std::string> metadata(const std::string& key) const;
  std::string created_by() const;

  // Finds a leaf by its name (list wrappers removed) or its full leaf path. nullptr if absent.
  const ParquetColumn* find_column(const std::string& name) const;
  bool has_column(const std::string& name) const { return find_column(name) != nullptr; }

  // Reads one column across all row groups. Throws Error for an unknown column and
  // FormatError for corrupt data.
  ColumnData read_column(const std::string& name) const;

 private:
  ParquetFile();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace robometer::io
