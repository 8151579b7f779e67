// Deterministic test strings for the tokenizer oracle comparison (tokenizer_corpus.cpp).
#pragma once
#include <filesystem>
#include <string>
#include <vector>

namespace robometer::test {

// Task strings found in the real-data fixtures under `shared_data` (tasks.jsonl files, the
// tasks.parquet string, SOURCES.md lines, LIV folder names). Empty when the folder is absent.
std::vector<std::string> fixture_task_strings(const std::filesystem::path& shared_data);

// Hand-written and seeded-random strings: many scripts, emoji (ZWJ, skin tones, flags),
// whitespace runs, long numbers, contractions, code, embedded special tokens, NFD forms.
// U+0085 and U+FEFF are left out on purpose: JS's \s and Oniguruma's \s disagree on them
// (tested separately against HF's rule).
std::vector<std::string> synthetic_strings(unsigned seed, int n_random);

}  // namespace robometer::test
