"""Would ruamel.yaml's round trip do engitor/recipe/yaml_doc.py's job? (issue 12)

Times yaml_doc.Document (PyYAML's libyaml composer + survey + comment scan) against ruamel.yaml
round trip (compose, which keeps comments on nodes; load into CommentedMap) on bench_yaml.py's
1,000-key fleet, median of 15 runs each; then checks the properties tests/test_yaml_safety.py
holds: billion laughs, tags, duplicate keys, the 1.2 core schema, positions.

Run: .venv/bin/pip install ruamel.yaml && .venv/bin/python bench/compare_ruamel.py
(ruamel.yaml is not a dependency: it was measured and not adopted; see yaml_doc.py.)
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable

from bench_yaml import fleet

from engitor.recipe.yaml_doc import Document

try:
    import ruamel.yaml
    from ruamel.yaml import YAML
except ImportError:
    sys.exit("ruamel.yaml is not installed: .venv/bin/pip install ruamel.yaml")


def median_ms(fn: Callable[[], object], runs: int = 15) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def ours(text: str) -> None:
    doc = Document(text, "fleet.yaml")
    doc.comments(doc.survey())


def laughs() -> str:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(8):
        prev, name = chr(97 + i), chr(98 + i)
        lines.append(f"{name}: &{name} [{', '.join(['*' + prev] * 10)}]")
    return "\n".join(lines) + "\n"


def main() -> None:
    text, images = fleet()
    print(f"fleet: {images} images, {len(text)} bytes; ruamel.yaml {ruamel.yaml.__version__}")
    cases = {
        "yaml_doc: parse + survey + comments": lambda: ours(text),
        "yaml_doc: parse alone": lambda: Document(text, "fleet.yaml"),
        "ruamel round trip: compose": lambda: YAML(typ="rt").compose(text),
        "ruamel round trip: load": lambda: YAML(typ="rt").load(text),
    }
    for name, fn in cases.items():
        print(f"  {name:40s} {median_ms(fn):8.1f} ms")

    t0 = time.perf_counter()
    data = YAML(typ="rt").load(laughs())
    print(f"billion laughs: loaded in {time.perf_counter() - t0:.3f} s, aliases shared: "
          f"{data['i'][0] is data['i'][1]}")
    for doc in ("x: !!python/object/apply:os.system [echo hi]\n", "x: !custom 1\n"):
        v = YAML(typ="rt").load(doc)["x"]
        print(f"tag {doc.strip()!r}: {type(v).__name__} {getattr(v, 'tag', None)}")
    try:
        YAML(typ="rt").load("a: 1\na: 2\n")
        print("duplicate keys: accepted")
    except ruamel.yaml.constructor.DuplicateKeyError:
        print("duplicate keys: refused")
    v = YAML(typ="rt").load("a: yes\nb: 22:22\nc: 2001-01-01\n")
    print("core schema:", {k: type(x).__name__ for k, x in v.items()})
    web = YAML(typ="rt").load("web:\n  port: 8080  # c\n")["web"]
    print("position of web.port:", web.lc.value("port"), "; on the scalar itself:",
          hasattr(web["port"], "lc"))


if __name__ == "__main__":
    main()
