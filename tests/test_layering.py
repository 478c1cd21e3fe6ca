"""The shape of the package: imports point down the layers, never up or sideways.

    7  cli                                         the command line
    6  bench, trainer                              built on the pipeline: benchmarks, the Trainer path
    5  pipeline                                    the experiment
    4  results, heads                              result files and reports; how a model does a task
    3  sources, translation, tasks, pretrained, baselines, testing
    2  core, languages, methods                    the adapter; language codes; the method table
    1  io, weights, errors, environment, lazy,     files, safetensors, errors, versions, lazy exports,
       heap                                        the C heap given back

A module may import its own package and any lower layer; an import of the same layer from
another package is allowed only where listed in SIDEWAYS; imports inside functions count too.
"""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "flare"
LAYERS = {
    "cli": 7, "bench": 6, "trainer": 6,
    "pipeline": 5,
    "results": 4, "heads": 4,
    "sources": 3, "translation": 3, "tasks": 3, "pretrained": 3, "baselines": 3, "testing": 3,
    "core": 2, "languages": 2, "methods": 2,
    "io": 1, "weights": 1, "errors": 1, "environment": 1, "lazy": 1, "heap": 1,
}
SIDEWAYS = {("io", "errors"), ("weights", "errors"), ("weights", "io"), ("environment", "errors"),
            ("heap", "errors")}


def package_of(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return parts[0]


def imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("flare."):
            yield node.module, node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("flare."):
                    yield alias.name, node.lineno


def test_every_package_has_a_layer():
    packages = {package_of(p) for p in SRC.rglob("*.py")} - {"__init__"}
    assert packages <= set(LAYERS), f"give these a layer: {sorted(packages - set(LAYERS))}"


def test_imports_point_down():
    wrong = []
    for path in sorted(SRC.rglob("*.py")):
        source = package_of(path)
        if source == "__init__":
            continue
        for module, line in imports(path):
            target = module.split(".")[1]
            if target == source or (source, target) in SIDEWAYS:
                continue
            if LAYERS[target] >= LAYERS[source]:
                wrong.append(f"{path.relative_to(SRC)}:{line} imports {module} "
                             f"(layer {LAYERS[source]} -> {LAYERS[target]})")
    assert not wrong, "imports that point up or sideways:\n" + "\n".join(wrong)
