// The reference side of the tokenizer parity test: encodes each string of a JSON array with
// @huggingface/tokenizers (no special tokens added) and prints the id arrays as JSON.
// Usage: node encode.mjs TOKENIZER_JSON CORPUS_JSON
import { Tokenizer } from "@huggingface/tokenizers";
import fs from "fs";

const [tokenizerPath, corpusPath] = process.argv.slice(2);
const tokenizer = new Tokenizer(JSON.parse(fs.readFileSync(tokenizerPath, "utf8")), {});
const corpus = JSON.parse(fs.readFileSync(corpusPath, "utf8"));
const ids = corpus.map((text) => tokenizer.encode(text, { add_special_tokens: false }).ids);
process.stdout.write(JSON.stringify(ids));
