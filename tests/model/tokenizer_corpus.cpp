// Test strings for the tokenizer oracle: real task strings plus a seeded mix of scripts,
// emoji, whitespace, digits, code and special tokens.
#include "model/tokenizer_corpus.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

namespace robometer::test {
namespace {

namespace fs = std::filesystem;

std::string utf8(uint32_t cp) {
  std::string out;
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
  return out;
}

// Code point ranges assigned long ago (Unicode <= 6), so every engine's tables agree.
struct Range {
  uint32_t lo, hi;
};
const std::vector<Range> kRanges = {
    {0x20, 0x7E},       {0xA0, 0xFF},       {0x100, 0x17F},     {0x391, 0x3A1},     {0x3A3, 0x3C9},
    {0x400, 0x4FF},     {0x5D0, 0x5EA},     {0x620, 0x64A},     {0x660, 0x669},     {0x905, 0x939},
    {0x93E, 0x94D},     {0x966, 0x96F},     {0xE01, 0xE3A},     {0xE40, 0xE5B},     {0x1100, 0x1112},
    {0x1161, 0x1175},   {0x11A8, 0x11C2},   {0x300, 0x36F},     {0x2010, 0x2027},   {0x2030, 0x205E},
    {0x20A0, 0x20B8},   {0x2160, 0x2188},   {0x2190, 0x21FF},   {0x2200, 0x22FF},   {0x2460, 0x24FF},
    {0x2500, 0x257F},   {0x3000, 0x3003},   {0x3041, 0x3096},   {0x30A1, 0x30FA},   {0x4E00, 0x9FA5},
    {0xAC00, 0xD7A3},   {0xF900, 0xFA2D},   {0xFF01, 0xFF5E},   {0x1F300, 0x1F5FF}, {0x1F600, 0x1F64F},
    {0x1F680, 0x1F6C5}, {0x1F3FB, 0x1F3FF}, {0x1F1E6, 0x1F1FF}, {0x2000, 0x200A},   {0x2028, 0x2029},
    {0x0009, 0x000D},   {0x200B, 0x200D},   {0xFE0F, 0xFE0F},   {0xB2, 0xB3},       {0x1D400, 0x1D454}};

const std::vector<std::string> kSentences = {
    "The quick brown fox jumps over the lazy dog.",
    "Put green stick in brown bowl",
    "Pick up the yellow cup and stack it on the other cup",
    "机器人把红色的方块放进蓝色的盒子里。",
    "ロボットがコップを持ち上げて、テーブルの上に置きます。",
    "로봇이 초록색 컵을 집어 올립니다.",
    "Робот кладёт яблоко в тарелку.",
    "الروبوت يضع التفاحة في الطبق.",
    "रोबोट हरे कप को उठाता है।",
    "หุ่นยนต์หยิบแก้วสีเขียวขึ้นมา",
    "Ο ρομπότ βάζει το μήλο στο πιάτο.",
    "הרובוט מרים את הכוס הירוקה.",
    "Der Roboter öffnet die Schublade und legt den Löffel hinein.",
    "Le robot ferme la porte du micro-ondes — très vite !",
    "El robot recoge la taza verde y la coloca en el estante.",
    "Robot đặt quả táo vào đĩa.",
    "Ṫḧë ṙöḃöẗ ḟöḷḋṡ ẗḧë ẗöẅëḷ.",
    "ℌ𝔢𝔩𝔩𝔬 𝐁𝐨𝐥𝐝 ①②③ Ⅻ ½ ¼ ² ³",
    "Ｆｕｌｌｗｉｄｔｈ　ｔｅｘｔ　１２３",
    "naïve café résumé coöperate",
    "Zürich, São Paulo, Kraków, Reykjavík, İstanbul",
};

const std::vector<std::string> kEmoji = {"👍",
                                         "👍🏽",
                                         "👩‍💻",
                                         "👨‍👩‍👧‍👦",
                                         "🏳️‍🌈",
                                         "🇺🇸🇯🇵",
                                         "❤️",
                                         "🤖🦾",
                                         "✋🏿",
                                         "🧑🏻‍🔬",
                                         "😀😃😄",
                                         "🙏🏼",
                                         "1️⃣",
                                         "👁️‍🗨️",
                                         "🏴‍☠️"};

const std::vector<std::string> kSpecial = {
    "<|im_start|>",   "<|im_end|>",      "<|endoftext|>",    "<|vision_start|>", "<|vision_end|>",
    "<|vision_pad|>", "<|image_pad|>",   "<|video_pad|>",    "<tool_call>",      "</think>",
    "<think>",        "<|split_token|>", "<|reward_token|>", "<|pref_token|>",   "<|sim_token|>",
    "<|prog_token|>", "<|im_start",      "|im_end|>",        "<|prog_token",     "< |pref_token|>"};

const std::vector<std::string> kCode = {
    "def f(x):\n    return x ** 2  # square\n",
    "for (int i = 0; i < n; ++i) { sum += a[i]; }",
    "const re = /\\s+(?!\\S)/gu; console.log(`${a}-${b}`);",
    "SELECT id, name FROM robots WHERE success = 1;",
    "{\"task\": \"pick up cup\", \"frames\": [0, 8, 16]}",
    "#include <vector>\nint main() {\n\treturn 0;\n}\n",
    "x_1 = y__2 -- comment\r\n\tz=3",
    "https://github.com/robometer/robometer/blob/main/README.md?x=1&y=2#L10",
};

const std::vector<std::string> kNfd = {
    "e\xCC\x81",  // e + combining acute -> é
    "A\xCC\x8A"
    "ngstr\xC3\xB6m",                        // Å decomposed
    "n\xCC\x83o",                            // ñ decomposed
    "\xE1\x84\x92\xE1\x85\xA1\xE1\x86\xAB",  // Hangul jamo -> 한
    "a\xCC\x9B\xCC\x81",                     // combining marks needing reorder/composition
    "q\xCC\x87\xCC\xA3",                     // marks in non-canonical order
    "\xEF\xA4\x80",                          // CJK compatibility ideograph (singleton)
    "\xE2\x84\xAB",                          // ANGSTROM SIGN -> Å
    "\xE1\xBA\xA1\xCC\x82",                  // ạ + circumflex -> ậ
    "Cafe\xCC\x81 de\xCC\x81ja\xCC\x80 vu",
};

}  // namespace

std::vector<std::string> fixture_task_strings(const fs::path& shared_data) {
  std::vector<std::string> out;
  if (shared_data.empty() || !fs::exists(shared_data)) return out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(shared_data, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const fs::path p = it->path();
    const std::string name = p.filename().string();
    if (name == "tasks.jsonl" || name == "episodes.jsonl") {
      std::ifstream in(p);
      std::string line;
      while (std::getline(in, line)) {
        if (line.empty()) continue;
        auto j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_discarded()) continue;
        if (j.contains("task") && j["task"].is_string()) out.push_back(j["task"]);
        if (j.contains("tasks") && j["tasks"].is_array())
          for (const auto& t : j["tasks"])
            if (t.is_string()) out.push_back(t);
      }
    } else if (name == "SOURCES.md") {
      std::ifstream in(p);
      std::string line;
      while (std::getline(in, line))
        if (!line.empty()) out.push_back(line);
    } else if (it->is_directory() && p.parent_path().filename() == "realrobot_results") {
      std::string task = name;
      out.push_back(task);
      std::replace(task.begin(), task.end(), '_', ' ');
      out.push_back(task);
    }
  }
  // rerun's tasks.parquet stores its one task in a pandas index column (see SOURCES.md).
  out.push_back("place the apple in the plate");
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<std::string> synthetic_strings(unsigned seed, int n_random) {
  std::vector<std::string> out;
  for (const auto* pool : {&kSentences, &kEmoji, &kSpecial, &kCode, &kNfd})
    out.insert(out.end(), pool->begin(), pool->end());

  // Whitespace runs, each in front of, between and after words.
  const std::vector<std::string> ws = {" ",           "  ",           "   ",      "\t",          "\n",
                                       "\n\n",        "\r\n",         " \n",      "\n ",         "\t \t",
                                       "    \n\n   ", "\xE3\x80\x80", "\xC2\xA0", "\xE2\x80\xA8"};
  for (const auto& w : ws) {
    out.push_back(w);
    out.push_back(w + "hello" + w + "world" + w);
    out.push_back("x" + w + "!" + w);
    out.push_back("end of line" + w + w);
  }
  // Contractions in several cases.
  for (const std::string c :
       {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Ve", "'M", "'LL", "'D", "'x"}) {
    out.push_back("robot" + c);
    out.push_back("ROBOT" + c + " done");
    out.push_back(c);
    out.push_back(" " + c + c);
  }
  // Digits: Qwen splits them one by one.
  std::mt19937 rng(seed);
  for (int i = 0; i < 40; ++i) {
    std::string num;
    const int len = 1 + static_cast<int>(rng() % 40);
    for (int k = 0; k < len; ++k) num += static_cast<char>('0' + rng() % 10);
    out.push_back(num);
    out.push_back("frame " + num + ", x=" + num.substr(0, len / 2) + "." + num.substr(len / 2));
  }

  // Seeded random mixtures of everything above plus random code points.
  std::vector<const std::vector<std::string>*> pools = {&kSentences, &kEmoji, &kSpecial, &kCode, &kNfd, &ws};
  std::uniform_int_distribution<size_t> pick_range(0, kRanges.size() - 1);
  for (int i = 0; i < n_random; ++i) {
    std::string s;
    const int parts = 1 + static_cast<int>(rng() % 8);
    for (int p = 0; p < parts; ++p) {
      const unsigned kind = rng() % 4;
      if (kind == 0) {
        const auto& pool = *pools[rng() % pools.size()];
        s += pool[rng() % pool.size()];
      } else {
        const int len = 1 + static_cast<int>(rng() % 12);
        for (int k = 0; k < len; ++k) {
          const Range& r = kRanges[pick_range(rng)];
          s += utf8(r.lo + static_cast<uint32_t>(rng() % (r.hi - r.lo + 1)));
        }
      }
    }
    out.push_back(s);
  }
  return out;
}

}  // namespace robometer::test
