// The reference side of the chat template parity test: renders each conversation with the model's own
// chat template (tokenizer_config.json's Jinja, run by @huggingface/jinja as transformers.js does),
// tokenises the text with @huggingface/tokenizers and prints the id arrays as JSON.
// Usage: node render_chat.mjs MODEL_FOLDER CASES_JSON
// CASES_JSON: [{"messages": [...], "tools": [...], "add_generation_prompt": true, "enable_thinking": false}, ...]
// in OpenAI's shapes (enable_thinking may be left out).
import { Template } from "@huggingface/jinja";
import { Tokenizer } from "@huggingface/tokenizers";
import fs from "fs";
import path from "path";

const [folder, casesPath] = process.argv.slice(2);
const read = (name) => JSON.parse(fs.readFileSync(path.join(folder, name), "utf8"));
const config = read("tokenizer_config.json");
const tokenizer = new Tokenizer(read("tokenizer.json"), config);
const template = new Template(config.chat_template);
const cases = JSON.parse(fs.readFileSync(casesPath, "utf8"));
const ids = cases.map((c) => {
  const text = template.render({
    messages: c.messages,
    tools: c.tools.length > 0 ? c.tools : null,
    add_generation_prompt: c.add_generation_prompt,
    ...("enable_thinking" in c ? { enable_thinking: c.enable_thinking } : {}),
  });
  return { text, ids: tokenizer.encode(text, { add_special_tokens: false }).ids };
});
process.stdout.write(JSON.stringify(ids));
