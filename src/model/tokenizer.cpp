// Byte-level BPE as HF `tokenizers` runs it for Qwen2/Qwen3 (add_special_tokens=False):
//   1. split the text on added tokens (leftmost, then longest match; never split further),
//   2. NFC-normalise each remaining segment (utf8proc),
//   3. Split pre-tokenizer: the tokenizer.json regex, run with PCRE2 (UTF + UCP),
//   4. map bytes to GPT-2's printable code points and merge pairs by rank.
#include "robometer/model/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <utf8proc.h>

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <queue>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "robometer/core/error.h"

namespace robometer::model {

const std::vector<std::string> kRobometerSpecialTokens = {
    "<|split_token|>", "<|reward_token|>", "<|pref_token|>", "<|sim_token|>", "<|prog_token|>"};

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Decodes one code point of valid UTF-8 at s[i] (vocabulary strings are valid); advances i.
uint32_t next_code_point(const std::string& s, size_t& i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  int len = b0 < 0x80 ? 1 : b0 < 0xE0 ? 2 : b0 < 0xF0 ? 3 : 4;
  uint32_t cp = len == 1 ? b0 : len == 2 ? (b0 & 0x1F) : len == 3 ? (b0 & 0x0F) : (b0 & 0x07);
  for (int k = 1; k < len && i + k < s.size(); ++k)
    cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  i += len;
  return cp;
}

// GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to 256, 257, ...
std::vector<uint32_t> byte_to_code_point() {
  std::vector<uint32_t> table(256, 0);
  std::vector<bool> printable(256, false);
  for (int b = '!'; b <= '~'; ++b) printable[b] = true;
  for (int b = 0xA1; b <= 0xAC; ++b) printable[b] = true;
  for (int b = 0xAE; b <= 0xFF; ++b) printable[b] = true;
  uint32_t next = 256;
  for (int b = 0; b < 256; ++b) table[b] = printable[b] ? static_cast<uint32_t>(b) : next++;
  return table;
}

// HF runs the Split regex with Oniguruma, whose Unicode \s is 09-0D, U+0085 and Z*; PCRE2's
// UCP \s lacks U+0085. Spell \s / \S out so both engines agree.
const char* kOnigSpaceItems =
    "\\x{09}-\\x{0d}\\x{20}\\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}"
    "\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}";

std::string onig_to_pcre2(const std::string& pattern) {
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char n = pattern[i + 1];
      ++i;
      if (n == 's') {
        out += in_class ? std::string(kOnigSpaceItems) : "[" + std::string(kOnigSpaceItems) + "]";
      } else if (n == 'S' && !in_class) {
        out += "[^" + std::string(kOnigSpaceItems) + "]";
      } else {
        if (n == 'S') throw Error("tokenizer regex: \\S inside a character class is not supported");
        out += c;
        out += n;
      }
      continue;
    }
    if (c == '[' && !in_class) {
      in_class = true;
      out += c;
      // A ']' right after '[' or '[^' is literal.
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out += pattern[++i];
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out += pattern[++i];
      continue;
    }
    if (c == ']' && in_class) in_class = false;
    out += c;
  }
  return out;
}

// Replaces each maximal invalid UTF-8 subpart by U+FFFD (what Python's errors="replace" and
// the WHATWG TextDecoder do).
std::string sanitize_utf8(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    int len = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (b0 < 0x80)
      len = 1;
    else if (b0 >= 0xC2 && b0 <= 0xDF)
      len = 2;
    else if (b0 >= 0xE0 && b0 <= 0xEF) {
      len = 3;
      if (b0 == 0xE0) lo = 0xA0;
      if (b0 == 0xED) hi = 0x9F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      len = 4;
      if (b0 == 0xF0) lo = 0x90;
      if (b0 == 0xF4) hi = 0x8F;
    }
    if (len == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
      continue;
    }
    int k = 1;
    for (; k < len && i + k < s.size(); ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      const unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
      if (b < l || b > h) break;
    }
    if (k == len) {
      out.append(s, i, len);
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      i += k;
    }
  }
  return out;
}

struct PairHash {
  size_t operator()(uint64_t key) const { return std::hash<uint64_t>()(key * 0x9E3779B97F4A7C15ull); }
};

}  // namespace

struct Tokenizer::Impl {
  fs::path path;
  std::unordered_map<std::string, int64_t> token_to_id;
  std::vector<std::string> id_to_token;  // "" for unused ids
  std::vector<bool> is_added;            // added/special tokens decode verbatim
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>, PairHash> merges;  // (a,b) -> (rank, id)
  int64_t byte_token[256] = {};
  std::vector<uint32_t> byte_to_cp;
  std::unordered_map<uint32_t, uint8_t> cp_to_byte;
  // Added tokens bucketed by first byte, longest first, for leftmost-longest matching.
  std::vector<std::vector<std::pair<std::string, int64_t>>> added_by_first_byte =
      std::vector<std::vector<std::pair<std::string, int64_t>>>(256);
  pcre2_code* regex = nullptr;
  bool use_nfc = false;
  TokenizerLoadStats stats;

  mutable std::mutex cache_mutex;
  mutable std::unordered_map<std::string, std::vector<int64_t>> cache;

  Impl() = default;
  Impl(const Impl&) = delete;  // one pcre2_code_free per compiled regex
  Impl& operator=(const Impl&) = delete;
  ~Impl() {
    if (regex) pcre2_code_free(regex);
  }

  void set_token(int64_t id, const std::string& token, bool added) {
    if (id < 0) throw FormatError(path.string(), "negative token id for '" + token + "'");
    if (static_cast<size_t>(id) >= id_to_token.size()) {
      id_to_token.resize(id + 1);
      is_added.resize(id + 1, false);
    }
    id_to_token[id] = token;
    is_added[id] = added;
    token_to_id[token] = id;
  }

  void add_added_token(const std::string& content, int64_t id) {
    if (content.empty()) throw FormatError(path.string(), "empty added token");
    set_token(id, content, true);
    auto& bucket = added_by_first_byte[static_cast<unsigned char>(content[0])];
    bucket.emplace_back(content, id);
    std::stable_sort(bucket.begin(), bucket.end(),
                     [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  }

  void compile_regex(const std::string& onig_pattern) {
    const std::string pattern = onig_to_pcre2(onig_pattern);
    int err = 0;
    PCRE2_SIZE offset = 0;
    regex = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.c_str()), pattern.size(),
                          PCRE2_UTF | PCRE2_UCP, &err, &offset, nullptr);
    if (!regex) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof(msg));
      throw FormatError(path.string(), "pre_tokenizer regex does not compile at offset " +
                                           std::to_string(offset) + ": " +
                                           reinterpret_cast<const char*>(msg));
    }
    pcre2_jit_compile(regex, PCRE2_JIT_COMPLETE);  // optional speed-up; falls back silently
  }

  // The Split(behavior=Isolated) pre-tokenizer: matches and the gaps between them.
  std::vector<std::string> split(const std::string& text) const {
    std::vector<std::string> pieces;
    if (!regex) {
      pieces.push_back(text);
      return pieces;
    }
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(regex, nullptr);
    size_t start = 0, last_end = 0;
    while (start < text.size()) {
      const int rc = pcre2_match(regex, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), start,
                                 PCRE2_NO_UTF_CHECK, md, nullptr);
      if (rc < 0) break;
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      size_t b = ov[0], e = ov[1];
      if (e == b) {  // empty match: step one code point
        size_t next = b;
        next_code_point(text, next);
        start = next;
        continue;
      }
      if (b > last_end) pieces.emplace_back(text.substr(last_end, b - last_end));
      pieces.emplace_back(text.substr(b, e - b));
      last_end = start = e;
    }
    if (last_end < text.size()) pieces.emplace_back(text.substr(last_end));
    pcre2_match_data_free(md);
    return pieces;
  }

  // BPE over the bytes of one pre-token: repeatedly merge the lowest-ranked adjacent pair,
  // leftmost first among equal ranks (HF's priority queue order).
  std::vector<int64_t> bpe(const std::string& word) const {
    struct Symbol {
      int64_t id;
      int prev, next;
      bool alive;
    };
    std::vector<Symbol> sym;
    sym.reserve(word.size());
    for (size_t i = 0; i < word.size(); ++i)
      sym.push_back({byte_token[static_cast<unsigned char>(word[i])], static_cast<int>(i) - 1,
                     i + 1 < word.size() ? static_cast<int>(i) + 1 : -1, true});
    struct Cand {
      int32_t rank;
      int pos;
      int64_t left, right, merged;
      bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
    };
    std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
    auto push_pair = [&](int pos) {
      if (pos < 0 || sym[pos].next < 0) return;
      const int nxt = sym[pos].next;
      const uint64_t key = (static_cast<uint64_t>(sym[pos].id) << 32) | static_cast<uint64_t>(sym[nxt].id);
      auto it = merges.find(key);
      if (it != merges.end()) heap.push({it->second.first, pos, sym[pos].id, sym[nxt].id, it->second.second});
    };
    for (int i = 0; i + 1 < static_cast<int>(sym.size()); ++i) push_pair(i);
    while (!heap.empty()) {
      const Cand c = heap.top();
      heap.pop();
      Symbol& s = sym[c.pos];
      if (!s.alive || s.next < 0 || s.id != c.left || sym[s.next].id != c.right) continue;
      Symbol& r = sym[s.next];
      s.id = c.merged;
      r.alive = false;
      s.next = r.next;
      if (r.next >= 0) sym[r.next].prev = c.pos;
      push_pair(s.prev);
      push_pair(c.pos);
    }
    std::vector<int64_t> ids;
    for (const Symbol& s : sym)
      if (s.alive) ids.push_back(s.id);
    return ids;
  }

  void encode_segment(const std::string& raw, std::vector<int64_t>& out) const {
    const std::string text = use_nfc ? Tokenizer::nfc(raw) : raw;
    for (const std::string& word : split(text)) {
      {
        std::lock_guard<std::mutex> lock(cache_mutex);
        auto it = cache.find(word);
        if (it != cache.end()) {
          out.insert(out.end(), it->second.begin(), it->second.end());
          continue;
        }
      }
      std::vector<int64_t> ids = bpe(word);
      out.insert(out.end(), ids.begin(), ids.end());
      std::lock_guard<std::mutex> lock(cache_mutex);
      if (cache.size() > 200000) cache.clear();  // bound memory on adversarial input
      cache.emplace(word, std::move(ids));
    }
  }
};

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// FNV-1a over 8-byte words (then the tail): ~2 ms for the 11 MB Qwen3 file.
uint64_t content_hash(const std::string& bytes) {
  uint64_t h = 0xcbf29ce484222325ull;
  const size_t words = bytes.size() / 8;
  for (size_t i = 0; i < words; ++i) {
    uint64_t w;
    std::memcpy(&w, bytes.data() + 8 * i, 8);
    h = (h ^ w) * 0x100000001b3ull;
  }
  for (size_t i = 8 * words; i < bytes.size(); ++i)
    h = (h ^ static_cast<unsigned char>(bytes[i])) * 0x100000001b3ull;
  return h ^ bytes.size();
}

// The identity of a tokenizer.json a cache was made from.
struct SourceStamp {
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  uint64_t hash = 0;
  bool operator==(const SourceStamp& o) const {
    return size == o.size && mtime_ns == o.mtime_ns && hash == o.hash;
  }
};

// Cache layout (native byte order; the magic's byte order tells a foreign file):
//   magic u64, version u32, SourceStamp, use_nfc u8, regex str, vocab [str, id i64]*,
//   merges [a i64, b i64, merged i64]*, added [str, id i64]*, end magic u64.
// str = u32 length + bytes; lists = u64 count + items.
constexpr uint64_t kCacheMagic = 0x314b4f544d424f52ull;  // "ROBMTOK1"
constexpr uint32_t kCacheVersion = 1;

class CacheWriter {
 public:
  template <class T>
  void pod(T v) {
    out_.append(reinterpret_cast<const char*>(&v), sizeof(T));
  }
  void str(const std::string& v) {
    pod(static_cast<uint32_t>(v.size()));
    out_ += v;
  }
  const std::string& bytes() const { return out_; }

 private:
  std::string out_;
};

class CacheReader {
 public:
  explicit CacheReader(const std::string& bytes) : in_(bytes) {}
  template <class T>
  T pod() {
    if (pos_ + sizeof(T) > in_.size()) throw std::runtime_error("truncated");
    T v;
    std::memcpy(&v, in_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string str() {
    const auto n = pod<uint32_t>();
    if (pos_ + n > in_.size()) throw std::runtime_error("truncated");
    std::string v = in_.substr(pos_, n);
    pos_ += n;
    return v;
  }
  uint64_t count(size_t item_bytes) {  // a list length that the remaining bytes can hold
    const auto n = pod<uint64_t>();
    if (n > (in_.size() - pos_) / item_bytes) throw std::runtime_error("bad count");
    return n;
  }
  bool at_end() const { return pos_ == in_.size(); }

 private:
  const std::string& in_;
  size_t pos_ = 0;
};

bool read_whole_file(const fs::path& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  in.seekg(0, std::ios::end);
  const auto size = in.tellg();
  if (size < 0) return false;
  out.resize(static_cast<size_t>(size));
  in.seekg(0);
  return static_cast<bool>(in.read(out.data(), size));
}

bool cache_enabled(TokenizerCache mode) {
  if (mode == TokenizerCache::Off) return false;
  const char* env = std::getenv("ROBOMETER_TOKENIZER_CACHE");
  return !(env && std::string(env) == "0");
}

}  // namespace

// What tokenizer.json says, in the order it says it: replaying it builds the same Impl whether it
// came from the JSON or from the cache.
struct Tokenizer::Parsed {
  bool use_nfc = false;
  std::string regex;  // "" when there is no Split step
  std::vector<std::pair<std::string, int64_t>> vocab;
  std::vector<std::array<int64_t, 3>> merges;  // (left id, right id, merged id) by rank
  std::vector<std::pair<std::string, int64_t>> added;
};

Tokenizer::Parsed Tokenizer::parse_json(const fs::path& path, const std::string& text) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw FormatError(path.string(), std::string("not valid JSON: ") + e.what());
  }
  Parsed p;
  const std::string where = path.string();
  try {
    const json& model = j.at("model");
    if (model.value("type", std::string("BPE")) != "BPE")
      throw FormatError(where,
                        "model.type is '" + model.value("type", std::string()) + "', only BPE is supported");

    // Normalizer: NFC (Qwen) or none.
    const json& norm = j.contains("normalizer") ? j["normalizer"] : json();
    if (!norm.is_null()) {
      const std::string type = norm.value("type", std::string());
      if (type == "NFC")
        p.use_nfc = true;
      else
        throw FormatError(where, "normalizer.type '" + type + "' is not supported (only NFC)");
    }

    // Pre-tokenizer: Sequence[Split(regex, Isolated), ByteLevel(use_regex=false)].
    const json& pre = j.at("pre_tokenizer");
    std::vector<json> steps;
    if (pre.value("type", std::string()) == "Sequence")
      steps = pre.at("pretokenizers").get<std::vector<json>>();
    else
      steps.push_back(pre);
    bool byte_level = false;
    for (const json& step : steps) {
      const std::string type = step.value("type", std::string());
      if (type == "Split") {
        if (step.value("behavior", std::string()) != "Isolated" || step.value("invert", false))
          throw FormatError(where, "pre_tokenizer Split: only behavior=Isolated, invert=false is supported");
        p.regex = step.at("pattern").at("Regex").get<std::string>();
        if (p.regex.empty()) throw FormatError(where, "pre_tokenizer Split: empty regex");
      } else if (type == "ByteLevel") {
        if (step.value("use_regex", true) || step.value("add_prefix_space", false))
          throw FormatError(
              where, "pre_tokenizer ByteLevel: only use_regex=false, add_prefix_space=false is supported");
        byte_level = true;
      } else {
        throw FormatError(where, "pre_tokenizer type '" + type + "' is not supported");
      }
    }
    if (!byte_level) throw FormatError(where, "pre_tokenizer has no ByteLevel step");

    const json& vocab = model.at("vocab");
    p.vocab.reserve(vocab.size());
    std::unordered_map<std::string, int64_t> ids;  // the last id given to a token, as in the Impl
    ids.reserve(vocab.size());
    for (const auto& [token, id] : vocab.items()) {
      p.vocab.emplace_back(token, id.get<int64_t>());
      ids[token] = p.vocab.back().second;
    }

    const json& merges = model.at("merges");
    p.merges.reserve(merges.size());
    int32_t rank = 0;
    for (const json& m : merges) {
      std::string a, b;
      if (m.is_string()) {  // legacy "a b"
        const std::string s = m.get<std::string>();
        const size_t sp = s.find(' ');
        if (sp == std::string::npos)
          throw FormatError(where, "model.merges[" + std::to_string(rank) + "] has no space");
        a = s.substr(0, sp);
        b = s.substr(sp + 1);
      } else {
        a = m.at(0).get<std::string>();
        b = m.at(1).get<std::string>();
      }
      auto ia = ids.find(a), ib = ids.find(b), im = ids.find(a + b);
      if (ia == ids.end() || ib == ids.end() || im == ids.end())
        throw FormatError(where,
                          "model.merges[" + std::to_string(rank) + "] refers to a token not in the vocab");
      p.merges.push_back({ia->second, ib->second, im->second});
      ++rank;
    }

    if (j.contains("added_tokens")) {
      for (const json& t : j["added_tokens"]) {
        if (t.value("lstrip", false) || t.value("rstrip", false) || t.value("single_word", false))
          throw FormatError(where, "added token '" + t.value("content", std::string()) +
                                       "': lstrip/rstrip/single_word are not supported");
        p.added.emplace_back(t.at("content").get<std::string>(), t.at("id").get<int64_t>());
      }
    }
  } catch (const json::exception& e) {
    throw FormatError(where, std::string("unexpected tokenizer.json layout: ") + e.what());
  }
  return p;
}

Tokenizer Tokenizer::from_file(const fs::path& path, TokenizerCache cache) {
  TokenizerLoadStats stats;
  auto t0 = Clock::now();
  std::string text;
  if (!read_whole_file(path, text)) throw FormatError(path.string(), "cannot open tokenizer file");
  const bool use_cache = cache_enabled(cache);
  SourceStamp stamp;
  std::error_code ec;
  const fs::path cache_path = fs::path(path.string() + ".robometer-cache");
  if (use_cache) {
    stamp.size = text.size();
    const auto mtime = fs::last_write_time(path, ec);
    stamp.mtime_ns =
        ec ? 0 : std::chrono::duration_cast<std::chrono::nanoseconds>(mtime.time_since_epoch()).count();
    stamp.hash = content_hash(text);
  }
  stats.read_ms = ms_since(t0);

  t0 = Clock::now();
  std::optional<Parsed> parsed;
  if (use_cache) {
    // Any mismatch or damage means "no cache": the JSON is parsed and the cache rewritten.
    std::string bytes;
    if (read_whole_file(cache_path, bytes)) {
      try {
        CacheReader r(bytes);
        if (r.pod<uint64_t>() != kCacheMagic || r.pod<uint32_t>() != kCacheVersion)
          throw std::runtime_error("magic");
        SourceStamp s;
        s.size = r.pod<uint64_t>();
        s.mtime_ns = r.pod<int64_t>();
        s.hash = r.pod<uint64_t>();
        if (!(s == stamp)) throw std::runtime_error("stale");
        Parsed p;
        p.use_nfc = r.pod<uint8_t>() != 0;
        p.regex = r.str();
        p.vocab.resize(r.count(12));
        for (auto& [tok, id] : p.vocab) tok = r.str(), id = r.pod<int64_t>();
        p.merges.resize(r.count(24));
        for (auto& m : p.merges)
          for (auto& v : m) v = r.pod<int64_t>();
        p.added.resize(r.count(12));
        for (auto& [tok, id] : p.added) tok = r.str(), id = r.pod<int64_t>();
        if (r.pod<uint64_t>() != kCacheMagic || !r.at_end()) throw std::runtime_error("trailer");
        parsed = std::move(p);
        stats.from_cache = true;
        stats.cache_path = cache_path.string();
      } catch (const std::exception& e) {
        spdlog::debug("tokenizer cache {} not used ({}); parsing {}", cache_path.string(), e.what(),
                      path.string());
      }
    }
  }
  if (!parsed) parsed = parse_json(path, text);
  stats.parse_ms = ms_since(t0);

  Tokenizer tok = from_parsed(path, *parsed, stats);

  if (use_cache && !stats.from_cache) {
    t0 = Clock::now();
    CacheWriter w;
    w.pod(kCacheMagic);
    w.pod(kCacheVersion);
    w.pod(stamp.size);
    w.pod(stamp.mtime_ns);
    w.pod(stamp.hash);
    w.pod(static_cast<uint8_t>(parsed->use_nfc));
    w.str(parsed->regex);
    w.pod(static_cast<uint64_t>(parsed->vocab.size()));
    for (const auto& [t, id] : parsed->vocab) w.str(t), w.pod(id);
    w.pod(static_cast<uint64_t>(parsed->merges.size()));
    for (const auto& m : parsed->merges)
      for (auto v : m) w.pod(v);
    w.pod(static_cast<uint64_t>(parsed->added.size()));
    for (const auto& [t, id] : parsed->added) w.str(t), w.pod(id);
    w.pod(kCacheMagic);
    // A unique temporary + rename: concurrent writers (loader workers, parallel tests) never
    // expose a half-written cache. A read-only folder just means no cache.
    const fs::path tmp = cache_path.string() + ".tmp" + std::to_string(::getpid()) + "_" +
                         std::to_string(std::hash<std::thread::id>()(std::this_thread::get_id()));
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      out.write(w.bytes().data(), static_cast<std::streamsize>(w.bytes().size()));
      out.close();
      if (out) fs::rename(tmp, cache_path, ec);
      if (!out || ec) {
        spdlog::debug("tokenizer cache {} not written", cache_path.string());
        fs::remove(tmp, ec);
      } else {
        tok.impl_->stats.cache_path = cache_path.string();
      }
    }
    tok.impl_->stats.cache_write_ms = ms_since(t0);
  }
  return tok;
}

Tokenizer Tokenizer::from_parsed(const fs::path& path, const Parsed& p, TokenizerLoadStats stats) {
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  const std::string where = path.string();
  auto t0 = Clock::now();
  impl->use_nfc = p.use_nfc;
  impl->token_to_id.reserve(p.vocab.size() + 64);
  impl->id_to_token.reserve(p.vocab.size() + 64);
  for (const auto& [token, id] : p.vocab) impl->set_token(id, token, false);
  impl->byte_to_cp = byte_to_code_point();
  for (int b = 0; b < 256; ++b) {
    std::string s;
    append_utf8(s, impl->byte_to_cp[b]);
    impl->cp_to_byte[impl->byte_to_cp[b]] = static_cast<uint8_t>(b);
    auto it = impl->token_to_id.find(s);
    if (it == impl->token_to_id.end())
      throw FormatError(where, "model.vocab lacks the byte token for byte " + std::to_string(b));
    impl->byte_token[b] = it->second;
  }
  stats.vocab_ms = ms_since(t0);

  t0 = Clock::now();
  impl->merges.reserve(p.merges.size());
  for (size_t rank = 0; rank < p.merges.size(); ++rank) {
    const auto& [a, b, merged] = p.merges[rank];
    const uint64_t key = (static_cast<uint64_t>(a) << 32) | static_cast<uint64_t>(b);
    impl->merges.emplace(key, std::make_pair(static_cast<int32_t>(rank), static_cast<int32_t>(merged)));
  }
  for (const auto& [content, id] : p.added) impl->add_added_token(content, id);
  stats.merges_ms = ms_since(t0);

  t0 = Clock::now();
  if (!p.regex.empty()) impl->compile_regex(p.regex);
  stats.regex_ms = ms_since(t0);
  impl->stats = std::move(stats);
  return Tokenizer(std::move(impl));
}

Tokenizer Tokenizer::robometer_from_file(const fs::path& path, TokenizerCache cache) {
  Tokenizer tok = from_file(path, cache);
  tok.add_special_tokens(kRobometerSpecialTokens);
  return tok;
}

std::string Tokenizer::nfc(const std::string& text) {
  // ASCII is already NFC; skip the allocation for the common case.
  if (std::all_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; }))
    return text;
  utf8proc_uint8_t* out = nullptr;
  const utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                                          static_cast<utf8proc_ssize_t>(text.size()), &out,
                                          static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  if (n < 0) throw Error(std::string("tokenizer: text is not valid UTF-8 (") + utf8proc_errmsg(n) + ")");
  std::string result(reinterpret_cast<char*>(out), static_cast<size_t>(n));
  std::free(out);
  return result;
}

std::vector<std::string> Tokenizer::pre_tokenize(const std::string& segment) const {
  return impl_->split(impl_->use_nfc ? nfc(segment) : segment);
}

std::vector<int64_t> Tokenizer::encode(const std::string& text) const {
  std::vector<int64_t> ids;
  size_t seg_start = 0, i = 0;
  while (i < text.size()) {
    const auto& bucket = impl_->added_by_first_byte[static_cast<unsigned char>(text[i])];
    const std::pair<std::string, int64_t>* hit = nullptr;
    for (const auto& cand : bucket) {
      if (text.compare(i, cand.first.size(), cand.first) == 0) {
        hit = &cand;
        break;
      }
    }
    if (!hit) {
      ++i;
      continue;
    }
    if (i > seg_start) impl_->encode_segment(text.substr(seg_start, i - seg_start), ids);
    ids.push_back(hit->second);
    i += hit->first.size();
    seg_start = i;
  }
  if (seg_start < text.size()) impl_->encode_segment(text.substr(seg_start), ids);
  return ids;
}

std::string Tokenizer::id_to_bytes(int64_t id) const {
  const std::string& token = id_to_token(id);
  if (impl_->is_added[id]) return token;
  std::string bytes;
  size_t i = 0;
  while (i < token.size()) {
    const uint32_t cp = next_code_point(token, i);
    auto it = impl_->cp_to_byte.find(cp);
    if (it == impl_->cp_to_byte.end())
      throw Error("tokenizer: vocab entry " + std::to_string(id) + " is not byte-level");
    bytes += static_cast<char>(it->second);
  }
  return bytes;
}

std::string Tokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string bytes;
  for (int64_t id : ids) bytes += id_to_bytes(id);
  return sanitize_utf8(bytes);
}

std::optional<int64_t> Tokenizer::token_to_id(const std::string& token) const {
  auto it = impl_->token_to_id.find(token);
  if (it == impl_->token_to_id.end()) return std::nullopt;
  return it->second;
}

const std::string& Tokenizer::id_to_token(int64_t id) const {
  if (id < 0 || id >= vocab_size() || impl_->id_to_token[id].empty())
    throw Error("tokenizer: token id " + std::to_string(id) + " is not in the vocabulary (size " +
                std::to_string(vocab_size()) + ")");
  return impl_->id_to_token[id];
}

bool Tokenizer::is_added_token(int64_t id) const {
  return id >= 0 && id < vocab_size() && impl_->is_added[id];
}

int Tokenizer::add_special_tokens(const std::vector<std::string>& tokens) {
  int added = 0;
  for (const std::string& t : tokens) {
    if (impl_->token_to_id.count(t)) continue;
    impl_->add_added_token(t, vocab_size());
    ++added;
  }
  return added;
}

int64_t Tokenizer::vocab_size() const { return static_cast<int64_t>(impl_->id_to_token.size()); }

const TokenizerLoadStats& Tokenizer::load_stats() const { return impl_->stats; }

RobometerTokenIds Tokenizer::robometer_special_ids() const {
  auto need = [&](const std::string& t) {
    auto id = token_to_id(t);
    if (!id)
      throw Error("tokenizer: special token " + t + " is missing (use Tokenizer::robometer_from_file)");
    return *id;
  };
  RobometerTokenIds ids;
  ids.split = need("<|split_token|>");
  ids.reward = need("<|reward_token|>");
  ids.pref = need("<|pref_token|>");
  ids.sim = need("<|sim_token|>");
  ids.prog = need("<|prog_token|>");
  return ids;
}

fs::path locate_tokenizer_json() {
  if (const char* env = std::getenv("ROBOMETER_TOKENIZER")) {
    if (*env) return fs::path(env);
  }
  return {};
}

}  // namespace robometer::model
