// Thrift compact protocol, just enough for Parquet's FileMetaData and PageHeader.
// Unknown fields are skipped (forward compatibility); recursion depth and container sizes are
// bounded so a hostile footer cannot blow the stack or the heap.
#include <functional>

#include "parquet_internal.h"

namespace robometer::io::parquet {
namespace {

enum TType {
  kStop = 0,
  kTrue = 1,
  kFalse = 2,
  kI8 = 3,
  kI16 = 4,
  kI32 = 5,
  kI64 = 6,
  kDouble = 7,
  kBinary = 8,
  kList = 9,
  kSet = 10,
  kMap = 11,
  kStruct = 12
};

class Thrift {
 public:
  Thrift(Cursor& c, int max_depth) : c_(c), max_depth_(max_depth) {}

  // Calls on_field(id, type) for every field; it returns false to have the field skipped.
  void read_struct(const std::function<bool(int, int)>& on_field) {
    Depth guard(*this);
    int last_id = 0;
    for (;;) {
      uint8_t h = c_.byte("thrift field header");
      int type = h & 0x0f;
      if (type == kStop) return;
      int delta = h >> 4;
      int id = delta ? last_id + delta : static_cast<int>(c_.zigzag("thrift field id"));
      if (type > kStruct) corrupt("thrift: invalid field type " + std::to_string(type));
      last_id = id;
      if (!on_field(id, type)) skip(type);
    }
  }

  int64_t read_int(int type) {
    if (type != kI8 && type != kI16 && type != kI32 && type != kI64)
      corrupt("thrift: expected an integer, got type " + std::to_string(type));
    if (type == kI8) return static_cast<int8_t>(c_.byte("thrift i8"));
    return c_.zigzag("thrift integer");
  }
  int32_t read_i32(int type) {
    int64_t v = read_int(type);
    if (v < INT32_MIN || v > INT32_MAX) corrupt("thrift: i32 out of range");
    return static_cast<int32_t>(v);
  }
  bool read_bool(int type) {
    if (type != kTrue && type != kFalse) corrupt("thrift: expected a bool");
    return type == kTrue;
  }
  std::string read_binary(int type) {
    if (type != kBinary) corrupt("thrift: expected a string, got type " + std::to_string(type));
    uint64_t n = c_.uleb("thrift string length");
    if (n > c_.remaining()) corrupt("thrift: string length " + std::to_string(n) + " exceeds data");
    const uint8_t* p = c_.take(n, "thrift string");
    return std::string(reinterpret_cast<const char*>(p), n);
  }
  // Calls on_elem(elem_type) `size` times.
  void read_list(int type, const std::function<void(int)>& on_elem) {
    if (type != kList && type != kSet) corrupt("thrift: expected a list, got type " + std::to_string(type));
    Depth guard(*this);
    uint8_t h = c_.byte("thrift list header");
    uint64_t size = h >> 4;
    int elem = h & 0x0f;
    if (size == 15) size = c_.uleb("thrift list size");
    // Every element takes at least one byte: a larger claim is corrupt.
    if (size > c_.remaining()) corrupt("thrift: list of " + std::to_string(size) + " elements exceeds data");
    for (uint64_t i = 0; i < size; ++i) on_elem(elem);
  }
  // Bool list elements are one byte each (unlike struct fields).
  bool read_list_bool() { return c_.byte("thrift bool") == 1; }

  void skip(int type) {
    Depth guard(*this);
    switch (type) {
      case kTrue:
      case kFalse:
        return;
      case kI8:
        c_.take(1, "thrift i8");
        return;
      case kI16:
      case kI32:
      case kI64:
        c_.uleb("thrift integer");
        return;
      case kDouble:
        c_.take(8, "thrift double");
        return;
      case kBinary:
        read_binary(kBinary);
        return;
      case kList:
      case kSet:
        read_list(type, [&](int elem) {
          if (elem == kTrue || elem == kFalse)
            c_.take(1, "thrift bool");
          else
            skip(elem);
        });
        return;
      case kMap: {
        uint64_t size = c_.uleb("thrift map size");
        if (size == 0) return;
        uint8_t kv = c_.byte("thrift map types");
        if (size > c_.remaining()) corrupt("thrift: map size exceeds data");
        for (uint64_t i = 0; i < size; ++i) {
          skip_elem(kv >> 4);
          skip_elem(kv & 0x0f);
        }
        return;
      }
      case kStruct:
        read_struct([](int, int) { return false; });
        return;
      default:
        corrupt("thrift: cannot skip type " + std::to_string(type));
    }
  }

 private:
  void skip_elem(int t) {
    if (t == kTrue || t == kFalse)
      c_.take(1, "thrift bool");
    else
      skip(t);
  }
  struct Depth {
    Thrift& t;
    explicit Depth(Thrift& th) : t(th) {
      if (++t.depth_ > t.max_depth_) corrupt("thrift: nesting deeper than " + std::to_string(t.max_depth_));
    }
    Depth(const Depth&) = delete;  // one decrement per increment
    Depth& operator=(const Depth&) = delete;
    ~Depth() { --t.depth_; }
  };
  Cursor& c_;
  int depth_ = 0;
  int max_depth_;
};

const char* logical_type_name(int id) {
  switch (id) {
    case 1:
      return "STRING";
    case 2:
      return "MAP";
    case 3:
      return "LIST";
    case 4:
      return "ENUM";
    case 5:
      return "DECIMAL";
    case 6:
      return "DATE";
    case 7:
      return "TIME";
    case 8:
      return "TIMESTAMP";
    case 10:
      return "INTEGER";
    case 11:
      return "NULL";
    case 12:
      return "JSON";
    case 13:
      return "BSON";
    case 14:
      return "UUID";
    case 15:
      return "FLOAT16";
    case 16:
      return "VARIANT";
    case 17:
      return "GEOMETRY";
    case 18:
      return "GEOGRAPHY";
    default:
      return "UNKNOWN";
  }
}

SchemaElement read_schema_element(Thrift& t) {
  SchemaElement e;
  t.read_struct([&](int id, int type) {
    switch (id) {
      case 1:
        e.type = t.read_i32(type);
        return true;
      case 2:
        e.type_length = t.read_i32(type);
        return true;
      case 3:
        e.repetition = t.read_i32(type);
        return true;
      case 4:
        e.name = t.read_binary(type);
        return true;
      case 5:
        e.num_children = t.read_i32(type);
        return true;
      case 6:
        e.converted_type = t.read_i32(type);
        return true;
      case 7:
        e.scale = t.read_i32(type);
        return true;
      case 8:
        e.precision = t.read_i32(type);
        return true;
      case 10:
        if (type != kStruct) return false;
        // LogicalType is a union: the id of its single field names the type.
        t.read_struct([&](int lid, int ltype) {
          e.logical_type = logical_type_name(lid);
          if (ltype != kStruct) return false;
          if (lid == 5) {  // DecimalType {1: scale, 2: precision}
            e.logical_scale = 0;
            t.read_struct([&](int f, int ft) {
              if (f == 1) {
                e.logical_scale = t.read_i32(ft);
                return true;
              }
              if (f == 2) {
                e.logical_precision = t.read_i32(ft);
                return true;
              }
              return false;
            });
            return true;
          }
          if (lid == 7 || lid == 8) {  // TimeType / TimestampType {1: isAdjustedToUTC, 2: unit}
            t.read_struct([&](int f, int ft) {
              if (f != 2 || ft != kStruct) return false;
              t.read_struct([&](int u, int) {  // TimeUnit union
                e.logical_unit = u == 1 ? "MILLIS" : u == 2 ? "MICROS" : u == 3 ? "NANOS" : "UNKNOWN";
                return false;
              });
              return true;
            });
            return true;
          }
          if (lid == 10) {  // IntType {1: bitWidth (i8), 2: isSigned}
            t.read_struct([&](int f, int ft) {
              if (f == 1) {
                e.logical_bit_width = static_cast<int>(t.read_int(ft));
                return true;
              }
              if (f == 2) {
                e.logical_signed = t.read_bool(ft);
                return true;
              }
              return false;
            });
            return true;
          }
          return false;
        });
        return true;
      default:
        return false;
    }
  });
  return e;
}

ColumnChunkMeta read_column_meta(Thrift& t, ColumnChunkMeta m) {
  m.has_meta = true;
  t.read_struct([&](int id, int type) {
    switch (id) {
      case 1:
        m.type = t.read_i32(type);
        return true;
      case 3:
        t.read_list(type, [&](int elem) { m.path.push_back(t.read_binary(elem)); });
        return true;
      case 4:
        m.codec = t.read_i32(type);
        return true;
      case 5:
        m.num_values = t.read_int(type);
        return true;
      case 7:
        m.total_compressed_size = t.read_int(type);
        return true;
      case 9:
        m.data_page_offset = t.read_int(type);
        return true;
      case 11:
        m.dictionary_page_offset = t.read_int(type);
        return true;
      default:
        return false;
    }
  });
  return m;
}

ColumnChunkMeta read_column_chunk(Thrift& t) {
  ColumnChunkMeta m;
  t.read_struct([&](int id, int type) {
    switch (id) {
      case 1:
        m.file_path = t.read_binary(type);
        return true;
      case 3:
        if (type != kStruct) corrupt("thrift: ColumnChunk.meta_data is not a struct");
        m = read_column_meta(t, m);
        return true;
      default:
        return false;
    }
  });
  return m;
}

RowGroupMeta read_row_group(Thrift& t) {
  RowGroupMeta rg;
  t.read_struct([&](int id, int type) {
    switch (id) {
      case 1:
        t.read_list(type, [&](int elem) {
          if (elem != kStruct) corrupt("thrift: RowGroup.columns holds non-structs");
          rg.columns.push_back(read_column_chunk(t));
        });
        return true;
      case 3:
        rg.num_rows = t.read_int(type);
        return true;
      default:
        return false;
    }
  });
  return rg;
}

}  // namespace

FileMeta parse_file_metadata(Span bytes, int max_depth) {
  Cursor c(bytes);
  Thrift t(c, max_depth);
  FileMeta fm;
  bool has_schema = false, has_rows = false, has_groups = false;
  t.read_struct([&](int id, int type) {
    switch (id) {
      case 1:
        fm.version = t.read_i32(type);
        return true;
      case 2:
        has_schema = true;
        t.read_list(type, [&](int elem) {
          if (elem != kStruct) corrupt("thrift: schema holds non-structs");
          fm.schema.push_back(read_schema_element(t));
        });
        return true;
      case 3:
        fm.num_rows = t.read_int(type);
        has_rows = true;
        return true;
      case 4:
        has_groups = true;
        t.read_list(type, [&](int elem) {
          if (elem != kStruct) corrupt("thrift: row_groups holds non-structs");
          fm.row_groups.push_back(read_row_group(t));
        });
        return true;
      case 5:
        t.read_list(type, [&](int elem) {
          if (elem != kStruct) corrupt("thrift: key_value_metadata holds non-structs");
          std::pair<std::string, std::string> kv;
          t.read_struct([&](int kid, int ktype) {
            if (kid == 1) {
              kv.first = t.read_binary(ktype);
              return true;
            }
            if (kid == 2) {
              kv.second = t.read_binary(ktype);
              return true;
            }
            return false;
          });
          fm.key_value.push_back(std::move(kv));
        });
        return true;
      case 6:
        fm.created_by = t.read_binary(type);
        return true;
      default:
        return false;
    }
  });
  if (!has_schema || !has_rows || !has_groups)
    corrupt("FileMetaData lacks a required field (schema, num_rows or row_groups)");
  return fm;
}

PageHeader parse_page_header(Cursor& c, int max_depth) {
  Thrift t(c, max_depth);
  PageHeader h;
  t.read_struct([&](int id, int type) {
    switch (id) {
      case 1:
        h.type = t.read_i32(type);
        return true;
      case 2:
        h.uncompressed_size = t.read_i32(type);
        return true;
      case 3:
        h.compressed_size = t.read_i32(type);
        return true;
      case 5:  // DataPageHeader
        if (type != kStruct) return false;
        h.has_data_header = true;
        t.read_struct([&](int did, int dtype) {
          if (did == 1) {
            h.num_values = t.read_i32(dtype);
            return true;
          }
          if (did == 2) {
            h.encoding = t.read_i32(dtype);
            return true;
          }
          return false;  // level encodings are always RLE in practice; statistics skipped
        });
        return true;
      case 7:  // DictionaryPageHeader
        if (type != kStruct) return false;
        h.has_dict_header = true;
        t.read_struct([&](int did, int dtype) {
          if (did == 1) {
            h.num_values = t.read_i32(dtype);
            return true;
          }
          if (did == 2) {
            h.encoding = t.read_i32(dtype);
            return true;
          }
          return false;
        });
        return true;
      case 8:  // DataPageHeaderV2
        if (type != kStruct) return false;
        h.has_v2_header = true;
        t.read_struct([&](int did, int dtype) {
          switch (did) {
            case 1:
              h.num_values = t.read_i32(dtype);
              return true;
            case 2:
              h.num_nulls = t.read_i32(dtype);
              return true;
            case 3:
              h.num_rows = t.read_i32(dtype);
              return true;
            case 4:
              h.encoding = t.read_i32(dtype);
              return true;
            case 5:
              h.def_levels_bytes = t.read_i32(dtype);
              return true;
            case 6:
              h.rep_levels_bytes = t.read_i32(dtype);
              return true;
            case 7:
              h.is_compressed = t.read_bool(dtype);
              return true;
            default:
              return false;
          }
        });
        return true;
      default:
        return false;
    }
  });
  if (h.type < 0 || h.uncompressed_size < 0 || h.compressed_size < 0)
    corrupt("page header lacks type or sizes (or they are negative)");
  return h;
}

}  // namespace robometer::io::parquet
