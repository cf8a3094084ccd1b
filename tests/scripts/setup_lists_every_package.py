#!/usr/bin/python3
"""Fails when the build or the tests use a file that scripts/setup.sh would not install.

A developer's machine keeps every package installed by hand, so a package missing from the setup
script shows up only on a new machine (it happened: clang's sanitizer runtimes and llvm-symbolizer-19
were installed by hand, and CI failed on every fresh machine). This test finds the files a build
really uses and asks dpkg which package owns each:

  - every absolute path of an existing file named in the build's ninja files and ctest files
    (the compiler, the archiver, the libraries linked, protoc, the programs the tests run, the
    symbolizer named in the sanitizers' options), CMake's package files (*.cmake) aside;
  - every header the compiler read (`ninja -t deps`);
  - every shared library the built programs load (ldd);
  - what clang links into a program built with each sanitizer (a probe link with `-Wl,--trace`).

Each file's package must be one the setup script lists, one those pull in through Depends or
Pre-Depends (the script installs without recommends), or one of Debian's required packages. A file
that no package owns fails too: a new machine would not have it.

Usage: setup_lists_every_package.py SOURCE_DIR BUILD_DIR NINJA CXX_COMPILER
"""
import glob
import os
import re
import subprocess
import sys
import tempfile

# The sanitizer flag sets scripts/build.sh builds with, each probed for the runtimes clang links in.
SANITIZER_LINKS = [
    ["-fsanitize=address,undefined"],
    ["-fsanitize=address,undefined,fuzzer"],
    ["-fsanitize=thread"],
]
ABSOLUTE_PATH = re.compile(r"(?<![\w.$-])(/(?:usr|lib|lib64|bin|sbin|opt|etc)/[\w.+/-]+)")


def fail(message):
    print("setup.ListsEveryPackageTheBuildUses: " + message, file=sys.stderr)
    sys.exit(1)


def run(command, **kwargs):
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        fail(f"`{' '.join(command)}` failed ({result.returncode}): {result.stderr.strip()[:2000]}")
    return result.stdout


# -- what dpkg knows ---------------------------------------------------------------------------------

def installed_packages():
    """Installed packages from dpkg's status file: name -> fields (Depends, Provides, ...)."""
    packages = {}
    with open("/var/lib/dpkg/status", encoding="utf-8", errors="replace") as status:
        for stanza in status.read().split("\n\n"):
            fields, key = {}, None
            for line in stanza.splitlines():
                if line.startswith((" ", "\t")) and key:
                    fields[key] += "\n" + line
                elif ":" in line:
                    key, _, value = line.partition(":")
                    fields[key] = value.strip()
            if "Package" in fields and fields.get("Status", "").endswith(" installed"):
                packages[fields["Package"]] = fields
    return packages


def dependency_groups(fields):
    """Depends and Pre-Depends as a list of alternatives lists, names without versions or :arch."""
    groups = []
    for key in ("Pre-Depends", "Depends"):
        for group in filter(None, (g.strip() for g in fields.get(key, "").split(","))):
            names = [re.split(r"[\s(:]", alternative.strip(), maxsplit=1)[0] for alternative in group.split("|")]
            groups.append(names)
    return groups


def closure(roots, packages):
    """The installed packages that installing `roots` without recommends brings along."""
    providers = {}
    for name, fields in packages.items():
        for provided in filter(None, (p.strip() for p in fields.get("Provides", "").split(","))):
            providers.setdefault(re.split(r"[\s(:]", provided, maxsplit=1)[0], []).append(name)
    reached, pending = set(), [r for r in roots if r in packages]
    while pending:
        name = pending.pop()
        if name in reached:
            continue
        reached.add(name)
        for alternatives in dependency_groups(packages[name]):
            # apt takes the first alternative it can satisfy; follow the first one installed here.
            for alternative in alternatives:
                chosen = [alternative] if alternative in packages else providers.get(alternative, [])
                if chosen:
                    pending.extend(chosen)
                    break
    return reached


def file_owners():
    """Every path dpkg installed -> the packages owning it."""
    owners = {}
    for listing in glob.glob("/var/lib/dpkg/info/*.list"):
        package = os.path.basename(listing)[: -len(".list")].split(":")[0]
        with open(listing, encoding="utf-8", errors="replace") as paths:
            for path in paths:
                owners.setdefault(path.rstrip("\n"), set()).add(package)
    return owners


def owners_of(path, owners):
    """The packages owning `path`, trying the names it goes by (symlinks, merged /usr)."""
    candidates = [os.path.realpath(path), path,
                  os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))]
    for candidate in list(candidates):
        for merged in ("/lib", "/lib64", "/bin", "/sbin"):
            if candidate.startswith(merged + "/"):
                candidates.append("/usr" + candidate)
            elif candidate.startswith("/usr" + merged + "/"):
                candidates.append(candidate[len("/usr"):])
    for candidate in candidates:
        if candidate in owners:
            return owners[candidate]
    return set()


# -- what the build uses -----------------------------------------------------------------------------

def named_files(build_dir):
    """Absolute paths of existing files named in the build's ninja and ctest files."""
    files = set()
    texts = [os.path.join(build_dir, name) for name in ("build.ninja", "CMakeFiles/rules.ninja")]
    texts += glob.glob(os.path.join(build_dir, "**", "CTestTestfile.cmake"), recursive=True)
    texts += glob.glob(os.path.join(build_dir, "**", "*_tests-*_tests.cmake"), recursive=True)
    texts += glob.glob(os.path.join(build_dir, "**", "*_include-*.cmake"), recursive=True)
    for text in texts:
        with open(text, encoding="utf-8", errors="replace") as content:
            for match in ABSOLUTE_PATH.finditer(content.read()):
                path = match.group(1).rstrip(".")
                # CMake's own package files are left out: the configure step reads some only because
                # they are there (GTest's config globs GMock's); a package a build really uses also
                # brings headers and libraries, which are checked.
                if os.path.isfile(path) and not path.endswith(".cmake"):
                    files.add(path)
    return files


def headers_read(build_dir, ninja):
    """Every header the compiler read, as ninja recorded it."""
    files = set()
    for line in run([ninja, "-C", build_dir, "-t", "deps"]).splitlines():
        path = line.strip()
        if line.startswith("    ") and path.startswith("/"):
            files.add(os.path.normpath(path))
    return files


def shared_libraries(build_dir):
    """Every shared library the build's programs and libraries load."""
    files = set()
    for path in glob.glob(os.path.join(build_dir, "**", "*"), recursive=True):
        if "CMakeFiles" in path or not os.path.isfile(path) or not os.access(path, os.X_OK):
            continue
        with open(path, "rb") as binary:
            if binary.read(4) != b"\x7fELF":
                continue
        result = subprocess.run(["ldd", path], capture_output=True, text=True)
        for match in re.finditer(r"=> (/\S+)|^\s*(/\S+) \(", result.stdout, re.MULTILINE):
            files.add(match.group(1) or match.group(2))
    return files


def sanitizer_runtimes(compiler):
    """The files clang links into a program built with each sanitizer of scripts/build.sh."""
    files = set()
    with tempfile.TemporaryDirectory() as scratch:
        source = os.path.join(scratch, "probe.cpp")
        with open(source, "w") as probe:
            probe.write("#include <cstddef>\n#include <cstdint>\n"
                        "extern \"C\" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }\n"
                        "#ifndef FUZZER\nint main() {}\n#endif\n")
        for flags in SANITIZER_LINKS:
            defines = ["-DFUZZER"] if "fuzzer" in flags[0] else []
            output = run([compiler, *flags, *defines, source, "-o", os.path.join(scratch, "probe"),
                          "-Wl,--trace"])
            for line in output.splitlines():
                path = re.sub(r"^\((.*)\)\S*$", r"\1", line.strip())  # "(archive)member" -> archive
                if path.startswith("/") and os.path.isfile(path):
                    files.add(os.path.normpath(path))
    return files


def main():
    if len(sys.argv) != 5:
        fail(__doc__.strip().splitlines()[-1])
    source_dir, build_dir, ninja, compiler = (os.path.realpath(a) if a.startswith("/") else a for a in sys.argv[1:])
    listed = run([os.path.join(source_dir, "scripts", "setup.sh"), "--list"]).split()
    if not listed:
        fail("scripts/setup.sh --list printed no package")

    packages = installed_packages()
    not_installed = [name for name in listed if name not in packages and name not in ("nodejs", "npm")]
    if not_installed:
        fail("scripts/setup.sh lists packages that are not installed here: " + ", ".join(not_installed)
             + " (run scripts/setup.sh)")
    required = {name for name, fields in packages.items()
                if fields.get("Priority") == "required" or fields.get("Essential") == "yes"}
    provided = closure(listed, packages) | closure(required, packages)

    used = named_files(build_dir) | headers_read(build_dir, ninja) | shared_libraries(build_dir) \
        | sanitizer_runtimes(compiler)
    ours = (source_dir + "/", os.path.realpath(build_dir) + "/")
    used = {path for path in used if not os.path.realpath(path).startswith(ours)}

    owners = file_owners()
    missing, unowned = {}, []
    for path in sorted(used):
        owning = owners_of(path, owners)
        if not owning:
            unowned.append(path)
        elif not owning & provided:
            missing.setdefault(" or ".join(sorted(owning)), path)
    problems = [f"{path} belongs to {package}, which scripts/setup.sh does not install (nor anything it "
                f"lists depends on): add {package} to its packages" for package, path in sorted(missing.items())]
    problems += [f"{path} belongs to no Debian package: a new machine will not have it" for path in unowned]
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        fail(f"{len(problems)} file(s) the build uses would be missing on a new machine (above)")
    print(f"{len(used)} files the build uses, all from {len(listed)} listed packages, what they depend on, "
          f"or Debian's required packages")


if __name__ == "__main__":
    main()
