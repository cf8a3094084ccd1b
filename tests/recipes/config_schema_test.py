#!/usr/bin/python3
"""The recipe programs' --schema, checked with an independent JSON Schema validator (Debian's
python3-jsonschema): each schema is a valid draft 2020-12 schema, describes every field (the comment
above it in the source), accepts the program's shipped config (examples/configs/NAME.json), and an
invalid config (an unknown key, a wrong type) is rejected by the validator and by the program alike.

Usage: config_schema_test.py SOURCE_DIR NAME=PROGRAM...
"""
import json
import os
import subprocess
import sys
import tempfile

import jsonschema


def fail(message):
    print("config_schema_test: " + message, file=sys.stderr)
    sys.exit(1)


def undescribed(schema, prefix=""):
    """The key paths of the fields with no description."""
    missing = []
    for name, field in schema.get("properties", {}).items():
        if not field.get("description"):
            missing.append(prefix + name)
        if field.get("type") == "object":
            missing += undescribed(field, prefix + name + ".")
    return missing


def rejected_by_program(program, config, scratch, expected_in_error):
    path = os.path.join(scratch, "bad.json")
    with open(path, "w") as file:
        json.dump(config, file)
    result = subprocess.run([program, "--config", path, "--output", os.path.join(scratch, "run")],
                            capture_output=True, text=True, timeout=120)
    return result.returncode == 2 and expected_in_error in result.stderr, result


def check(name, program, source_dir, scratch):
    result = subprocess.run([program, "--schema"], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        fail(f"{name} --schema exited {result.returncode}: {result.stderr}")
    schema = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    if schema.get("additionalProperties") is not False or not schema.get("properties"):
        fail(f"{name} --schema: expected an object schema with its fields and no others")
    missing = undescribed(schema)
    if missing:
        fail(f"{name}: fields without a description (write a comment above them): {', '.join(missing)}")

    config_file = os.path.join(source_dir, "examples", "configs", name + ".json")
    if not os.path.exists(config_file):
        return f"{name}: schema of {len(schema['properties'])} described fields"
    with open(config_file) as file:
        config = json.load(file)
    errors = [error.message for error in validator.iter_errors(config)]
    if errors:
        fail(f"examples/configs/{name}.json does not validate against {name} --schema: {errors}")

    # An unknown key.
    typo = dict(config, learning_rat=0.1)
    if validator.is_valid(typo):
        fail(f"{name} --schema accepts an unknown key")
    refused, run = rejected_by_program(program, typo, scratch, "learning_rat")
    if not refused:
        fail(f"{name} did not refuse an unknown key with exit code 2 naming it: {run.returncode} {run.stderr}")

    # A wrong type: the first whole-number field given a word.
    integer = next(key for key, field in schema["properties"].items() if field.get("type") == "integer")
    wrong = dict(config, **{integer: "many"})
    if validator.is_valid(wrong):
        fail(f"{name} --schema accepts a word for the integer field {integer}")
    refused, run = rejected_by_program(program, wrong, scratch, integer)
    if not refused:
        fail(f"{name} did not refuse a word for {integer} with exit code 2 naming it: {run.returncode} {run.stderr}")
    return f"{name}: schema of {len(schema['properties'])} described fields; {name}.json valid; bad configs refused by both"


def main():
    if len(sys.argv) < 3:
        fail(__doc__.strip().splitlines()[-1])
    source_dir = sys.argv[1]
    with tempfile.TemporaryDirectory() as scratch:
        for pair in sys.argv[2:]:
            name, _, program = pair.partition("=")
            print(check(name, program, source_dir, scratch))


if __name__ == "__main__":
    main()
