// `robometer tokenize`: shows how text, or a whole Robometer prompt, is tokenized
// (ids + pieces, image pad runs collapsed) for debugging prompts.
#include <cstdio>
#include <string>
#include <vector>

#include "robometer/cli/command.h"
#include "robometer/core/error.h"
#include "robometer/model/processor.h"
#include "robometer/model/prompt.h"
#include "robometer/model/tokenizer.h"

namespace robometer::cli {
namespace {

struct TokenizeOptions {
  std::string tokenizer;
  std::string text;
  bool progress_prompt = false;
  bool pair_prompt = false;
  bool no_pref_progress = false;
  std::string task = "pick up the cup";
  int frames = 8;
  int height = 240;
  int width = 320;
};

// Printable form of a piece: escapes control characters and bytes that are not whole UTF-8.
std::string escape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '\n')
      out += "\\n";
    else if (c == '\r')
      out += "\\r";
    else if (c == '\t')
      out += "\\t";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\\')
      out += "\\\\";
    else if (c < 0x20 || c == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02X", c);
      out += buf;
    } else if (c < 0x80) {
      out += static_cast<char>(c);
    } else {
      const int len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
      bool whole = len > 0 && i + len <= s.size();
      for (int k = 1; whole && k < len; ++k) whole = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
      if (whole) {
        out.append(s, i, len);
        i += len - 1;
      } else {
        char buf[8];
        std::snprintf(buf, sizeof(buf), "\\x%02X", c);
        out += buf;
      }
    }
  }
  return out;
}

void print_tokens(const model::Tokenizer& tok, const std::vector<int64_t>& ids) {
  const auto image_pad = tok.token_to_id("<|image_pad|>");
  std::printf("ids (%zu):", ids.size());
  for (size_t i = 0; i < ids.size();) {
    size_t j = i + 1;
    if (image_pad && ids[i] == *image_pad)
      while (j < ids.size() && ids[j] == ids[i]) ++j;
    if (j - i > 1)
      std::printf(" %lld\xC3\x97%zu", static_cast<long long>(ids[i]), j - i);
    else
      std::printf(" %lld", static_cast<long long>(ids[i]));
    i = j;
  }
  std::printf("\n");
  for (size_t i = 0; i < ids.size();) {
    size_t j = i + 1;
    if (image_pad && ids[i] == *image_pad)
      while (j < ids.size() && ids[j] == ids[i]) ++j;
    const std::string piece = escape(tok.id_to_bytes(ids[i]));
    if (j - i > 1)
      std::printf("%6zu-%-6zu %7lld  %s\xC3\x97%zu\n", i, j - 1, static_cast<long long>(ids[i]),
                  piece.c_str(), j - i);
    else
      std::printf("%6zu        %7lld  \"%s\"\n", i, static_cast<long long>(ids[i]), piece.c_str());
    i = j;
  }
}

int run_tokenize(const TokenizeOptions& o) {
  if (o.progress_prompt && o.pair_prompt)
    throw ConfigError("tokenize: use --progress-prompt or --pair-prompt, not both");
  if (!o.progress_prompt && !o.pair_prompt && o.text.empty())
    throw ConfigError("tokenize: give TEXT, --progress-prompt or --pair-prompt");
  std::filesystem::path path =
      o.tokenizer.empty() ? model::locate_tokenizer_json() : std::filesystem::path(o.tokenizer);
  if (path.empty())
    throw ConfigError(
        "tokenize: no tokenizer.json found; pass --tokenizer PATH, set ROBOMETER_TOKENIZER, "
        "or run scripts/deps-node in the repository");
  const model::Tokenizer tok = model::Tokenizer::robometer_from_file(path);
  if (!o.progress_prompt && !o.pair_prompt) {
    print_tokens(tok, tok.encode(o.text));
    return 0;
  }
  if (o.frames <= 0 || o.height <= 0 || o.width <= 0)
    throw ConfigError("tokenize: --frames/--height/--width must be > 0");
  model::ProcessorOptions popts;
  popts.predict_pref_progress = !o.no_pref_progress;
  const model::Processor proc(tok, popts);
  const std::vector<int64_t> pads(o.frames, proc.image_pad_count(o.height, o.width));
  const std::string prompt = o.progress_prompt
                                 ? model::render_progress_prompt(o.task, pads)
                                 : model::render_pair_prompt(o.task, pads, pads, popts.predict_pref_progress);
  const auto ids = tok.encode(prompt);
  std::printf("prompt: %s, %d frame(s) of %dx%d -> %lld image pad tokens each, %zu tokens\n",
              o.progress_prompt ? "progress" : "pair", o.frames, o.height, o.width,
              static_cast<long long>(pads[0]), ids.size());
  print_tokens(tok, ids);
  return 0;
}

Registrar reg(
    "tokenize", "Show the Qwen3 token ids/pieces of a text or of a whole Robometer prompt",
    [](CLI::App& sub, int& exit_code) {
      auto o = std::make_shared<TokenizeOptions>();
      sub.add_option("--tokenizer", o->tokenizer,
                     "tokenizer.json (default: $ROBOMETER_TOKENIZER, else the npm copy under .deps/node)");
      sub.add_option("text", o->text, "text to tokenize");
      sub.add_flag("--progress-prompt", o->progress_prompt, "tokenize a progress (single trajectory) prompt");
      sub.add_flag("--pair-prompt", o->pair_prompt, "tokenize a pair (A, split, B, pref) prompt");
      sub.add_flag("--no-pref-progress", o->no_pref_progress,
                   "pair prompt without the per-frame progress sentence");
      sub.add_option("--task", o->task, "instruction in the prompt");
      sub.add_option("--frames", o->frames, "frames per trajectory")->check(CLI::PositiveNumber);
      sub.add_option("--height", o->height, "frame height before smart_resize")->check(CLI::PositiveNumber);
      sub.add_option("--width", o->width, "frame width before smart_resize")->check(CLI::PositiveNumber);
      sub.callback([o, &exit_code] { exit_code = run_tokenize(*o); });
    });

}  // namespace
}  // namespace robometer::cli
