#!/usr/bin/python3
"""Writes or checks docs/recipes-reference.md: every shipped recipe program and its config keys, made
from the programs' own --schema (types, defaults, the comment above each field), so the reference
cannot drift from the code.

  recipes_reference.py --write SOURCE_DIR NAME=PROGRAM...   regenerates the page (scripts/docs.sh)
  recipes_reference.py --check SOURCE_DIR NAME=PROGRAM...   fails when the page is not what --write writes
"""
import json
import os
import subprocess
import sys

PAGE = os.path.join("docs", "recipes-reference.md")
HEADER = """# Recipe programs: reference

Every recipe program chorus ships, what it does and each key of its config. A key goes in the JSON
file given with `--config FILE`, or on the command line as `--set key=value`; `--help` prints the same
table and `--schema` the JSON Schema it was made from. A dataset is the path of a JSONL file (or
`{"path": ..., "skip_bad_lines": true}`); a model is `builtin:tiny` or the path of a Hugging Face
model folder. The options every program takes (`--output`, `--resume`, `--cluster`, ...) are in
[writing recipes](writing-recipes.md#running-a-recipe-program).

This page is generated from the programs (`scripts/docs.sh`); a test fails when it is out of date.
"""


def fail(message):
    print("recipes_reference: " + message, file=sys.stderr)
    sys.exit(1)


def source_of(source_dir, name):
    for folder in ("recipes", "examples"):
        path = os.path.join(source_dir, folder, name, name + ".cpp")
        if os.path.exists(path):
            return os.path.relpath(path, source_dir)
    fail(f"no source for {name} under recipes/ or examples/")


def purpose(source_dir, source):
    """The first paragraph of the source's opening comment."""
    lines = []
    with open(os.path.join(source_dir, source)) as file:
        for line in file:
            if not line.startswith("//"):
                break
            text = line[2:].strip()
            if not text:
                break
            lines.append(text)
    return " ".join(lines).rstrip(":") + "."


def type_of(field):
    if "anyOf" in field:
        kinds = [type_of(option) for option in field["anyOf"]]
        datasets = [kind for kind in kinds if kind.startswith("dataset")]
        return datasets[0] if datasets else " or ".join(dict.fromkeys(kinds))
    fmt = field.get("format", "")
    if fmt.startswith("chorus-dataset:"):
        return "dataset of " + fmt.split(":", 1)[1] + "s"
    if fmt == "chorus-model":
        return "model"
    kind = field.get("type", "any")
    if kind == "integer" and field.get("minimum", -1) >= 0:
        return "integer >= 0"
    if kind == "array":
        return "list of " + type_of(field.get("items", {}))
    return {"number": "number", "string": "string", "boolean": "bool", "object": "section"}.get(kind, kind)


def cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def declared_order(program):
    """The config keys in the order the struct declares them: the first column of --help's table."""
    result = subprocess.run([program, "--help"], capture_output=True, text=True, timeout=60)
    lines = result.stdout.splitlines()
    start = lines.index("Config fields:") + 2  # past the table's header row
    keys = []
    for line in lines[start:]:
        if not line.strip():
            break
        keys.append(line.split()[0])
    return keys


def section(name, program, source_dir):
    result = subprocess.run([program, "--schema"], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        fail(f"{program} --schema exited {result.returncode}: {result.stderr}")
    schema = json.loads(result.stdout)
    source = source_of(source_dir, name)
    folder = os.path.dirname(source)
    config = os.path.join("examples", "configs", name + ".json")
    run = f"./build/{folder}/{name}" + (f" --config {config}" if os.path.exists(os.path.join(source_dir, config)) else "")
    text = [f"## {name}", "", purpose(source_dir, source), "", f"    {run}", "",
            f"Source: [{source}](../{source})" + (f"; config: [{config}](../{config})" if "--config" in run else ""), "",
            "| key | type | default | what it is |", "| --- | --- | --- | --- |"]
    required = set(schema.get("required", []))
    order = declared_order(program)
    for key in sorted(schema["properties"], key=lambda k: order.index(k) if k in order else len(order)):
        field = schema["properties"][key]
        default = "(required)" if key in required else "`" + json.dumps(field.get("default")) + "`"
        text.append(f"| `{key}` | {cell(type_of(field))} | {cell(default)} | {cell(field.get('description', ''))} |")
    return "\n".join(text) + "\n"


def main():
    if len(sys.argv) < 4 or sys.argv[1] not in ("--write", "--check"):
        fail("usage: recipes_reference.py --write|--check SOURCE_DIR NAME=PROGRAM...")
    mode, source_dir = sys.argv[1], sys.argv[2]
    sections = [section(*pair.split("=", 1), source_dir) for pair in sys.argv[3:]]
    page = HEADER + "\n" + "\n".join(sections)
    path = os.path.join(source_dir, PAGE)
    if mode == "--write":
        with open(path, "w") as file:
            file.write(page)
        print(f"wrote {PAGE}")
        return
    with open(path) as file:
        if file.read() != page:
            fail(f"{PAGE} is out of date with the programs' --schema: run scripts/docs.sh and commit it")
    print(f"{PAGE} matches the {len(sections)} programs' --schema")


if __name__ == "__main__":
    main()
