"""Every ```python block of the Markdown docs runs as written.

Each block runs in a fresh process, in an empty folder, with the current
`KERAS_BACKEND` and Keras's default configuration. A block that needs
particular backends says so on its first line, `# backend: tensorflow` or
`# backends: jax, torch`, and is skipped on the others. Fragments,
signatures and output use a ```text fence, commands a ```bash fence; a fence
without a language is refused, so no example can hide from this test.
"""

import os
import pathlib
import re
import subprocess
import sys

import keras
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOC_FILES = sorted(
    [ROOT / "README.md"]
    + [
        path
        for folder in ("docs", "examples", "benchmarks", "saved_models")
        for path in (ROOT / folder).rglob("*.md")
    ]
)
LANGUAGES = ("python", "bash", "text", "json", "toml")
BACKENDS = ("tensorflow", "jax", "torch")
FENCE = re.compile(r"^```(\S*)\s*$")
BACKEND_LINE = re.compile(r"#\s*backends?:\s*(.+)")
TIMEOUT_SECONDS = 300


def code_blocks(path):
    """Yields `(first_line_number, language, code)` for each fenced block."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = language = None
    for number, line in enumerate(lines, start=1):
        match = FENCE.match(line.strip())
        if match is None:
            continue
        if start is None:
            start, language = number, match.group(1)
        else:
            yield start, language, "\n".join(lines[start : number - 1]) + "\n"
            start = None
    if start is not None:
        raise ValueError(f"{path}:{start}: a code fence is never closed.")


def block_backends(code):
    """The backends a block runs on, from its `# backend(s):` first line."""
    first = code.lstrip().splitlines()[0] if code.strip() else ""
    match = BACKEND_LINE.fullmatch(first.strip())
    if match is None:
        return BACKENDS
    names = tuple(name.strip() for name in match.group(1).split(","))
    unknown = [name for name in names if name not in BACKENDS]
    if unknown:
        raise ValueError(f"Unknown backend(s) {unknown} in {first!r}; use {BACKENDS}.")
    return names


def _python_blocks():
    for path in DOC_FILES:
        for line, language, code in code_blocks(path):
            if language == "python":
                yield pytest.param(code, id=f"{path.relative_to(ROOT)}:{line}")


PYTHON_BLOCKS = list(_python_blocks())


def test_docs_have_python_blocks_and_only_known_fences():
    assert len(PYTHON_BLOCKS) >= 5
    for path in DOC_FILES:
        for line, language, _ in code_blocks(path):
            where = f"{path.relative_to(ROOT)}:{line}"
            assert language in LANGUAGES, f"{where}: fence language {language!r} not in {LANGUAGES}"


@pytest.mark.parametrize("code", PYTHON_BLOCKS)
def test_python_block_runs_as_written(code, tmp_path):
    backend = keras.backend.backend()
    if backend not in block_backends(code):
        pytest.skip(f"block is for {block_backends(code)}")
    # Keras's defaults, whatever the keras.json of the machine says (the CI
    # runs the suite once under a channels_first one; the docs assume none).
    env = dict(
        os.environ,
        KERAS_BACKEND=backend,
        KERAS_HOME=str(tmp_path / ".keras"),
        PYTHONPATH=str(ROOT),
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
    )
    assert result.returncode == 0, (
        f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-6000:]}"
    )
