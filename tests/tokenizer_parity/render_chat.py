#!/usr/bin/python3
"""The reference side of the chat template parity tests: renders each conversation with the model's
own chat template in Jinja2 set up as transformers' apply_chat_template sets it up (a sandboxed
environment with trim_blocks and lstrip_blocks, loop controls, its tojson filter, raise_exception and
strftime_now): the engine the templates are written for. Prints the texts as a JSON array;
encode.mjs then tokenises them with @huggingface/tokenizers.

Usage: render_chat.py MODEL_FOLDER CASES_JSON [--errors]
CASES_JSON: [{"messages": [...], "tools": [...], "add_generation_prompt": true, "enable_thinking": false}, ...]
in OpenAI's shapes (enable_thinking may be left out; "variables" adds any others). The template is
chat_template.jinja if the folder has one, else tokenizer_config.json's chat_template. With --errors
a case the template refuses prints as {"error": message} instead of failing the run.
"""
import json
import os
import sys
from datetime import datetime

import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def strftime_now(format):
    return datetime.now().strftime(format)


def token(value):  # a special token in tokenizer_config.json: its text, or {"content": text, ...}
    return value.get("content") if isinstance(value, dict) else value


def main():
    folder, cases_path = sys.argv[1:3]
    keep_errors = "--errors" in sys.argv[3:]
    config = json.load(open(os.path.join(folder, "tokenizer_config.json"), encoding="utf-8"))
    jinja_file = os.path.join(folder, "chat_template.jinja")
    source = open(jinja_file, encoding="utf-8").read() if os.path.exists(jinja_file) else config["chat_template"]
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    template = env.from_string(source)
    texts = []
    for case in json.load(open(cases_path, encoding="utf-8")):
        # Calls' arguments as the dicts the templates expect (vLLM parses the API's strings so too).
        for message in case.get("messages", []):
            for call in message.get("tool_calls", []):
                call["function"]["arguments"] = json.loads(call["function"]["arguments"])
        variables = {
            "messages": case["messages"],
            "tools": case.get("tools") or None,
            "add_generation_prompt": case.get("add_generation_prompt", False),
            "bos_token": token(config.get("bos_token")),
            "eos_token": token(config.get("eos_token")),
        }
        if "enable_thinking" in case:
            variables["enable_thinking"] = case["enable_thinking"]
        variables.update(case.get("variables", {}))
        try:
            texts.append(template.render(**variables))
        except jinja2.exceptions.TemplateError as error:
            if not keep_errors:
                raise
            texts.append({"error": str(error)})
    sys.stdout.write(json.dumps(texts))


if __name__ == "__main__":
    main()
