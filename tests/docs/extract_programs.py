#!/usr/bin/python3
"""Writes each whole program in the manual's code blocks to a .cpp file, for the build to compile.

A ```cpp block is a whole program when it includes <chorus/chorus.hpp> and defines main (directly
or with CHORUS_RECIPE_MAIN); snippets are left out. Files are named after the page and the block's
line (`docs-writing-recipes_12.cpp`); a file whose text did not change is not rewritten, so nothing is
recompiled for nothing. Prints the files written, one a line.

Usage: extract_programs.py OUTPUT_DIR PAGE.md...   (pages relative to the current directory)
"""
import os
import re
import sys


def programs(page):
    """(line, code) of each whole program in `page`."""
    found, code, start = [], None, 0
    with open(page) as file:
        for number, line in enumerate(file, 1):
            if code is None and re.match(r"^```(cpp|c\+\+)\s*$", line):
                code, start = [], number + 1
            elif code is not None and line.startswith("```"):
                text = "".join(code)
                if "#include <chorus/chorus.hpp>" in text and ("CHORUS_RECIPE_MAIN(" in text or "int main(" in text):
                    found.append((start, text))
                code = None
            elif code is not None:
                code.append(line)
    return found


def main():
    if len(sys.argv) < 3:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        sys.exit(2)
    output = sys.argv[1]
    os.makedirs(output, exist_ok=True)
    for page in sys.argv[2:]:
        stem = os.path.splitext(page)[0].replace(os.sep, "-")  # docs/models.md -> docs-models
        for line, code in programs(page):
            path = os.path.join(output, f"{stem}_{line}.cpp")
            text = f"// From {os.path.relpath(page)}, line {line}: a program of the manual, compiled by CI.\n" \
                   f"#line {line} \"{os.path.abspath(page)}\"\n" + code
            if not os.path.exists(path) or open(path).read() != text:
                with open(path, "w") as file:
                    file.write(text)
            print(path)


if __name__ == "__main__":
    main()
