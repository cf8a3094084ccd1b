// The reference side of the tokenizer parity test: encodes each string of a JSON array with
// @huggingface/tokenizers (no special tokens added) and prints the id arrays as JSON; with
// --decoded, prints [ids, the text decoding them gives] for each string.
// Usage: node encode.mjs TOKENIZER_JSON CORPUS_JSON [--decoded]
import { Tokenizer } from "@huggingface/tokenizers";
import fs from "fs";

const [tokenizerPath, corpusPath, mode] = process.argv.slice(2);
const tokenizer = new Tokenizer(JSON.parse(fs.readFileSync(tokenizerPath, "utf8")), {
  clean_up_tokenization_spaces: false,
});
const corpus = JSON.parse(fs.readFileSync(corpusPath, "utf8"));
const ids = corpus.map((text) => tokenizer.encode(text, { add_special_tokens: false }).ids);
const decoded = (list) => (list.length === 0 ? "" : tokenizer.decode(list));
process.stdout.write(JSON.stringify(mode === "--decoded" ? ids.map((list) => [list, decoded(list)]) : ids));
