"""Every ```python block of the Markdown docs runs as written.

Each block runs in a fresh process, in an empty folder, with the current
`KERAS_BACKEND` and Keras's default configuration. That process is forked
from one that has imported Keras and nothing else (not keras_prelu), so that
the backend's import, most of a short block's time, is paid once per test
session; the block itself starts from fresh globals and Keras's default
state, as `python -c` would. A block that needs particular backends says so
on its first line, `# backend: tensorflow` or `# backends: jax, torch`, and
is skipped on the others. Fragments, signatures and output use a ```text
fence, commands a ```bash fence; a fence without a language is refused, so no
example can hide from this test.
"""

import json
import os
import re
import subprocess
import sys
import textwrap

import keras
import pytest

from tests.helpers import ROOT

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


# The process the blocks are forked from. It reads one JSON request a line:
# the block's file, its folder and where its output goes; forks; runs the
# block in the child as `python -c` would (`__name__ == "__main__"`, the
# folder as the current directory and as sys.path[0]); and answers with the
# child's exit status, killing it after `timeout` seconds.
BLOCK_SERVER = textwrap.dedent(
    """
    import json, os, signal, sys, time, traceback

    import keras  # the backend, imported once; nothing of keras_prelu

    def run(request):
        os.chdir(request["cwd"])
        os.environ["KERAS_HOME"] = request["keras_home"]
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)  # not the server's requests
        for fd, name in ((1, "stdout"), (2, "stderr")):
            with open(request[name], "wb") as file:
                os.dup2(file.fileno(), fd)
        with open(request["code"], encoding="utf-8") as file:
            code = compile(file.read(), "<string>", "exec")
        try:
            exec(code, {"__name__": "__main__", "__builtins__": __builtins__})
            status = 0
        except SystemExit as exit:
            if exit.code is None or isinstance(exit.code, int):
                status = exit.code or 0
            else:
                print(exit.code, file=sys.stderr)
                status = 1
        except BaseException:
            traceback.print_exc()
            status = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(int(status))

    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            run(request)
        deadline = time.monotonic() + request["timeout"]
        timed_out = False
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                _, status = os.waitpid(pid, 0)
                timed_out = True
                break
            time.sleep(0.02)
        answer = {"status": os.waitstatus_to_exitcode(status), "timed_out": timed_out}
        print(json.dumps(answer), flush=True)
    """
)


class BlockRunner:
    """Runs code blocks, each in a process forked from a `BLOCK_SERVER`."""

    def __init__(self, backend, directory):
        self.directory = directory
        self.log = directory / "server.log"
        env = dict(
            os.environ,
            KERAS_BACKEND=backend,
            # Keras's defaults, whatever the keras.json of the machine says
            # (the CI runs the suite once under a channels_first one; the
            # docs assume none).
            KERAS_HOME=str(directory / ".keras"),
            PYTHONPATH=str(ROOT),
        )
        with open(self.log, "wb") as log:
            self.server = subprocess.Popen(
                [sys.executable, "-c", BLOCK_SERVER],
                cwd=directory,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )

    def run(self, code, directory, timeout=TIMEOUT_SECONDS):
        """Runs `code` in the empty folder `directory`; returns its exit status
        (None if it timed out), stdout and stderr."""
        (directory / "block.py").write_text(code, encoding="utf-8")
        request = {
            "code": str(directory / "block.py"),
            "cwd": str(directory / "cwd"),
            "keras_home": str(directory / ".keras"),
            "stdout": str(directory / "stdout"),
            "stderr": str(directory / "stderr"),
            "timeout": timeout,
        }
        (directory / "cwd").mkdir()
        self.server.stdin.write(json.dumps(request) + "\n")
        self.server.stdin.flush()
        line = self.server.stdout.readline()
        if not line:
            raise RuntimeError(f"The block server died:\n{self.log.read_text()[-6000:]}")
        answer = json.loads(line)
        status = None if answer["timed_out"] else answer["status"]
        read = lambda name: (directory / name).read_text(errors="replace")  # noqa: E731
        return status, read("stdout"), read("stderr")

    def close(self):
        # Nothing to flush: no need to wait for the backend's own shutdown.
        self.server.stdin.close()
        self.server.kill()
        self.server.wait()


@pytest.fixture(scope="module")
def block_runner(tmp_path_factory):
    runner = BlockRunner(keras.backend.backend(), tmp_path_factory.mktemp("block_server"))
    yield runner
    runner.close()


def test_block_runner_isolates_blocks(block_runner, tmp_path_factory):
    """Each block starts as `python -c` would: a folder of its own, fresh
    globals, nothing of keras_prelu imported, Keras's default configuration;
    a failure, an exit status and a hung block are reported."""

    def run(code, **kwargs):
        return block_runner.run(code, tmp_path_factory.mktemp("block"), **kwargs)

    status, out, err = run(
        "import os, sys\n"
        "import keras\n"
        "assert os.listdir() == [], os.listdir()\n"
        "open('left_behind', 'w').close()\n"
        "assert 'keras_prelu' not in sys.modules\n"
        "import keras_prelu\n"
        "assert keras.config.image_data_format() == 'channels_last'\n"
        "keras.config.set_image_data_format('channels_first')\n"
        "print('ran', __name__)\n"
        "value = 1\n"
    )
    assert (status, out) == (0, "ran __main__\n"), err
    status, _, err = run(
        "import os, sys\n"
        "import keras\n"
        "assert os.listdir() == [], os.listdir()\n"
        "assert 'keras_prelu' not in sys.modules\n"
        "assert keras.config.image_data_format() == 'channels_last'\n"
        "assert 'value' not in globals()\n"
    )
    assert status == 0, err
    status, _, err = run("raise ValueError('a broken example')\n")
    assert status == 1 and "ValueError: a broken example" in err
    assert run("import sys\nsys.exit(3)\n")[0] == 3
    assert run("import time\ntime.sleep(60)\n", timeout=1)[0] is None


@pytest.mark.parametrize("code", PYTHON_BLOCKS)
def test_python_block_runs_as_written(code, block_runner, tmp_path):
    backend = keras.backend.backend()
    if backend not in block_backends(code):
        pytest.skip(f"block is for {block_backends(code)}")
    status, stdout, stderr = block_runner.run(code, tmp_path)
    assert status == 0, (
        f"exit status {status} (None: timed out after {TIMEOUT_SECONDS} s)\n"
        f"stdout:\n{stdout[-3000:]}\nstderr:\n{stderr[-6000:]}"
    )
