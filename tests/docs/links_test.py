#!/usr/bin/python3
"""Checks the relative links of the front page and the manual: every [text](target) that is not a
URL must name a file or folder that exists, and a #fragment must name a heading of the page it
points to (GitHub's anchors: lower case, punctuation dropped, spaces as hyphens).

Usage: links_test.py SOURCE_DIR PAGE.md...   (pages relative to SOURCE_DIR)
"""
import os
import re
import sys

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def anchors(page):
    """The anchors of the headings of `page`, outside code blocks."""
    result, in_code = set(), False
    with open(page) as file:
        for line in file:
            if line.startswith("```"):
                in_code = not in_code
            elif not in_code and line.startswith("#"):
                title = line.lstrip("#").strip().lower()
                title = re.sub(r"[^\w\- ]", "", title)
                result.add(title.replace(" ", "-"))
    return result


def links(page):
    """(line, target) of each link of `page`, outside code blocks and code spans."""
    found, in_code = [], False
    with open(page) as file:
        for number, line in enumerate(file, 1):
            if line.startswith("```"):
                in_code = not in_code
                continue
            if in_code:
                continue
            for match in LINK.finditer(re.sub(r"`[^`]*`", "", line)):
                found.append((number, match.group(1)))
    return found


def main():
    if len(sys.argv) < 3:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        sys.exit(2)
    source_dir, problems, checked = sys.argv[1], [], 0
    for page in sys.argv[2:]:
        for line, target in links(os.path.join(source_dir, page)):
            if re.match(r"^[a-z]+:", target):
                continue  # http:, https:, mailto:
            checked += 1
            path, _, fragment = target.partition("#")
            resolved = os.path.normpath(os.path.join(source_dir, os.path.dirname(page), path)) if path \
                else os.path.join(source_dir, page)
            if not os.path.exists(resolved):
                problems.append(f"{page}:{line}: {target}: no such file")
            elif fragment and resolved.endswith(".md") and fragment not in anchors(resolved):
                problems.append(f"{page}:{line}: {target}: no heading '{fragment}' in {os.path.relpath(resolved, source_dir)}")
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"{checked} relative links in {len(sys.argv) - 2} pages, all resolve")


if __name__ == "__main__":
    main()
