// The competitor of bench_tokenizer: @huggingface/tokenizers under node encodes every line of a
// corpus file, and prints the best of several timed passes as JSON: {"seconds": s, "tokens": n}.
// Usage: node reference_encode.mjs TOKENIZER_JSON CORPUS_TXT PASSES
import { createRequire } from "module";
import fs from "fs";
import path from "path";
import { fileURLToPath, pathToFileURL } from "url";

// The package lives with the parity test's npm packages.
const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "../../tests/tokenizer_parity/package.json"));
const module = await import(pathToFileURL(require.resolve("@huggingface/tokenizers")).href);
const Tokenizer = module.Tokenizer ?? module.default.Tokenizer;

const [tokenizerPath, corpusPath, passes] = process.argv.slice(2);
const tokenizer = new Tokenizer(JSON.parse(fs.readFileSync(tokenizerPath, "utf8")), {});
const lines = fs.readFileSync(corpusPath, "utf8").split("\n");
let best = Infinity, tokens = 0;
for (let pass = 0; pass < Number(passes); ++pass) {
  const start = process.hrtime.bigint();
  let count = 0;
  for (const line of lines) count += tokenizer.encode(line, { add_special_tokens: false }).ids.length;
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  best = Math.min(best, seconds);
  tokens = count;
}
process.stdout.write(JSON.stringify({ seconds: best, tokens }));
