// Byte-level BPE tokenizer read from a Hugging Face `tokenizer.json` (Qwen2/Qwen3 family):
// added tokens matched first, NFC, the Split pre-tokenizer regex (PCRE2), GPT-2 byte mapping,
// merges by rank. Encodes exactly like HF `tokenizers` with add_special_tokens=False.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace robometer::model {

// Robometer's five added tokens, in the order that fixes their ids (spec §1.2).
extern const std::vector<std::string> kRobometerSpecialTokens;

struct RobometerTokenIds {
  int64_t split = -1, reward = -1, pref = -1, sim = -1, prog = -1;
};

// Parsing the 11 MB tokenizer.json costs ~0.4 s, paid by every process start and loader worker,
// so the parsed vocabulary and merges are kept in a binary cache next to it
// (<file>.robometer-cache), used only when its recorded source size, mtime and content hash
// match the file. Off: parse the JSON and touch no cache (also with $ROBOMETER_TOKENIZER_CACHE=0).
enum class TokenizerCache { Use, Off };

// Where one load spent its time (`robometer bench tokenizer` prints it).
struct TokenizerLoadStats {
  double read_ms = 0;    // reading tokenizer.json and hashing it
  double parse_ms = 0;   // JSON → DOM, or reading the cache
  double vocab_ms = 0;   // token ↔ id maps, byte tokens
  double merges_ms = 0;  // merge-rank map
  double regex_ms = 0;   // pre-tokenizer regex compile + JIT
  double cache_write_ms = 0;
  bool from_cache = false;
  std::string cache_path;  // the cache used or written; "" when none
};

class Tokenizer {
 public:
  // Reads tokenizer.json (model.type must be BPE with a ByteLevel pre-tokenizer). Throws
  // FormatError naming the file and key on anything it does not understand.
  static Tokenizer from_file(const std::filesystem::path& path, TokenizerCache cache = TokenizerCache::Use);
  // Same, then appends Robometer's five special tokens (ids 151669..151673 for Qwen3).
  static Tokenizer robometer_from_file(const std::filesystem::path& path,
                                       TokenizerCache cache = TokenizerCache::Use);

  Tokenizer(const Tokenizer&) = delete;  // owns the compiled regex (Impl)
  Tokenizer& operator=(const Tokenizer&) = delete;
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  std::vector<int64_t> encode(const std::string& text) const;
  // Inverse of encode for valid UTF-8 (invalid byte sequences decode to U+FFFD).
  std::string decode(const std::vector<int64_t>& ids) const;

  std::optional<int64_t> token_to_id(const std::string& token) const;
  // The vocabulary string of `id` (byte-level form, e.g. "Ġthe"); throws Error if out of range.
  const std::string& id_to_token(int64_t id) const;
  // The text one id stands for (byte-level inverse); may be a partial UTF-8 sequence.
  std::string id_to_bytes(int64_t id) const;

  // True for ids from added_tokens / add_special_tokens (matched whole, decoded verbatim).
  bool is_added_token(int64_t id) const;

  // Adds special tokens not yet known, with the next free ids, in order. Returns how many were added.
  int add_special_tokens(const std::vector<std::string>& tokens);
  int64_t vocab_size() const;  // highest id + 1
  const TokenizerLoadStats& load_stats() const;
  // Ids of the five Robometer tokens; throws Error if any is missing.
  RobometerTokenIds robometer_special_ids() const;

  // Exposed for tests: the pre-tokenizer's split of one normalised text segment.
  std::vector<std::string> pre_tokenize(const std::string& segment) const;
  // Exposed for tests: NFC normalisation as the tokenizer applies it.
  static std::string nfc(const std::string& text);

 private:
  struct Impl;
  struct Parsed;
  static Parsed parse_json(const std::filesystem::path& path, const std::string& text);
  static Tokenizer from_parsed(const std::filesystem::path& path, const Parsed& parsed,
                               TokenizerLoadStats stats);
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The default tokenizer.json: $ROBOMETER_TOKENIZER, or an empty path when it is not set. The
// library looks nowhere else; the `robometer` binary sets it to the checkout's npm copy
// (scripts/deps-node) when unset, and tests/common/test_env.cpp does the same for the tests.
std::filesystem::path locate_tokenizer_json();

}  // namespace robometer::model
