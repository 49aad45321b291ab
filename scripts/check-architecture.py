#!/usr/bin/env python3
"""Keeps docs/ARCHITECTURE.md's module diagram true to Package.swift.

The diagram is the Mermaid block between the markers `<!-- modules:begin -->` and
`<!-- modules:end -->`, generated from the targets and dependencies in Package.swift (test
targets left out). `--write` regenerates it; without it the script exits 1 and shows the
difference when the file is out of date (CI and `make lint` run it that way). It also checks that
every target has a row in the module table that follows the diagram.
"""

import difflib
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "Package.swift"
DOC = ROOT / "docs" / "ARCHITECTURE.md"
BEGIN, END = "<!-- modules:begin -->", "<!-- modules:end -->"


def targets():
    """(name, kind, [dependencies]) for every non-test target, in Package.swift order."""
    text = PACKAGE.read_text()
    found = []
    for match in re.finditer(r"\.(target|executableTarget|systemLibrary|testTarget)\(\s*name:\s*\"([^\"]+)\"", text):
        kind, name = match.group(1), match.group(2)
        # The call's text up to its closing parenthesis at the same depth.
        depth, index = 0, match.end() - 1
        while index < len(text):
            if text[index] == "(":
                depth += 1
            elif text[index] == ")":
                depth -= 1
                if depth == 0:
                    break
            index += 1
        call = text[match.start():index]
        deps = re.search(r"dependencies:\s*\[([^\]]*)\]", call)
        names = re.findall(r"\"([^\"]+)\"", deps.group(1)) if deps else []
        if kind != "testTarget":
            found.append((name, kind, names))
    return found


def diagram(found):
    lines = ["```mermaid", "flowchart LR"]
    for name, kind, _ in found:
        shape = f"{name}[[{name}]]" if kind == "systemLibrary" or name.startswith("C") else f"{name}[{name}]"
        lines.append(f"    {shape}")
    for name, _, deps in found:
        for dep in deps:
            lines.append(f"    {dep} --> {name}")
    lines.append("```")
    return "\n".join(lines)


def main():
    found = targets()
    text = DOC.read_text()
    if BEGIN not in text or END not in text:
        sys.exit(f"{DOC}: the markers {BEGIN} and {END} are missing around the module diagram")
    head, rest = text.split(BEGIN, 1)
    current, tail = rest.split(END, 1)
    wanted = "\n" + diagram(found) + "\n"
    problems = []
    table = tail.split("\n## ", 1)[0]
    for name, _, _ in found:
        if f"| `{name}` |" not in table:
            problems.append(f"the module table has no row for `{name}`")
    if "--write" in sys.argv:
        DOC.write_text(head + BEGIN + wanted + END + tail)
        current = wanted
    elif current != wanted:
        diff = difflib.unified_diff(current.splitlines(), wanted.splitlines(), "ARCHITECTURE.md", "from Package.swift", lineterm="")
        problems.append("the module diagram differs from Package.swift (run `python3 scripts/check-architecture.py --write`):\n" + "\n".join(diff))
    for problem in problems:
        print(f"docs/ARCHITECTURE.md: {problem}", file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"docs/ARCHITECTURE.md: module diagram matches Package.swift ({len(found)} targets)")


if __name__ == "__main__":
    main()
