"""Every command example of the README and of the documentation site, parsed and run.

The examples are the ``xigsnr-naslib ...``, ``.venv/bin/xigsnr-naslib ...`` and
``python -m xigsnr_naslib...`` commands of the ```` ```bash ```` blocks of ``README.md`` and
``docs/**/*.md`` (a line continued with ``\\`` is one command; ``bash .ci/setup-env && CMD``
contributes ``CMD``). An example that needs data absent from the reference data ends with a
comment ``# needs: WHAT``; it is parsed, and its run is skipped with that reason.

- ``test_every_example_parses`` (fast): each example's arguments go through the command's
  real parser (``xigsnr_naslib.cli.app.build_parser``, the NASLib launcher's parser), so a flag
  that was renamed or removed, a bad value or a missing argument in the docs fails here.
- ``test_example_runs`` (slow): each example runs in a fresh interpreter from the repository
  root, at small sizes, and must exit 0. The sizes shrink through the command's own flags
  where its parser has them (``--n-batches 2 --batch-size 16``, three to five architectures,
  a small population, ``--workers 0``, ``--no-progress``), and every output (``--results``,
  ``--report``, ``--out``, ``--output``, ``--checkpoint``, ``--out-dir``) goes to a temporary
  folder, so that no example writes into the checkout. The data root is the test's.
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

#: the command forms an example may take, and the module each runs as
_PROGRAMS = {"xigsnr-naslib": "xigsnr_naslib.cli", ".venv/bin/xigsnr-naslib": "xigsnr_naslib.cli"}
_NEEDS = re.compile(r"#\s*needs:\s*(?P<what>.+?)\s*$")


@dataclass(frozen=True)
class Example:
    """One command of the docs: where it is, the module it runs and its arguments."""

    where: str           # "docs/guides/search.md:69"
    module: str          # "xigsnr_naslib.cli" or "xigsnr_naslib.naslib"
    args: tuple          # the arguments after the program
    needs: str | None    # the data it needs that the reference data lacks, or None

    def __str__(self) -> str:
        return self.where


def _bash_commands(path: Path):
    """(line number, command) of every command in the file's ```bash blocks, continuations joined."""
    in_bash, pending, start = False, "", 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("```"):
            in_bash = not in_bash and stripped[3:].strip() == "bash"
            pending = ""
            continue
        if not in_bash:
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        yield start, pending + stripped
        pending = ""


def _example(where: str, command: str) -> Example | None:
    """The example in one shell command line, or None when it runs no command of this package."""
    needs = _NEEDS.search(command)
    words = shlex.split(command, comments=True)
    for i, word in enumerate(words):       # bash .ci/setup-env && .venv/bin/xigsnr-naslib ...
        if word in _PROGRAMS and (i == 0 or words[i - 1] == "&&"):
            return Example(where, _PROGRAMS[word], tuple(words[i + 1:]), needs and needs["what"])
        if word in ("python", "python3", ".venv/bin/python") and words[i + 1:i + 2] == ["-m"] \
                and i + 2 < len(words) and words[i + 2].startswith("xigsnr_naslib"):
            return Example(where, words[i + 2], tuple(words[i + 3:]), needs and needs["what"])
    return None


def doc_examples() -> list[Example]:
    found = []
    for path in DOC_FILES:
        for number, command in _bash_commands(path):
            example = _example(f"{path.relative_to(ROOT)}:{number}", command)
            if example is not None:
                found.append(example)
    return found


EXAMPLES = doc_examples()


def _parser(module: str) -> argparse.ArgumentParser:
    if module == "xigsnr_naslib.cli":
        from xigsnr_naslib.cli.app import build_parser

        return build_parser()
    if module == "xigsnr_naslib.naslib":
        from xigsnr_naslib.cli.naslib import build_launcher_parser

        return build_launcher_parser()
    raise AssertionError(f"no parser known for python -m {module}: add it to test_doc_examples.py")


def test_the_docs_have_examples():
    """The extraction finds the README's main job and examples of every command the docs show."""
    commands = {(e.module, e.args[0]) for e in EXAMPLES}
    for command in ("correlate", "score", "proxies", "spaces", "leaderboard", "search", "naslib-run",
                    "cifar10-layout", "predictor-eval"):
        assert ("xigsnr_naslib.cli", command) in commands, command
    assert ("xigsnr_naslib.naslib", "run") in commands
    main_job = [e for e in EXAMPLES if e.where.startswith("README.md") and e.args[:1] == ("correlate",)
                and "200" in e.args]
    assert main_job, "the README's main job was not found among its examples"


@pytest.mark.parametrize("example", EXAMPLES, ids=str)
def test_every_example_parses(example: Example):
    try:
        _parser(example.module).parse_args(list(example.args))
    except SystemExit as exc:
        pytest.fail(f"{example.where}: the parser rejects {shlex.join(example.args)!r} (exit {exc.code})")


# ---------------------------------------------------------------------------------------------
# running them, small


def _data_root() -> str:
    return os.environ.get("XIGSNR_DATA_ROOT") or str(ROOT.parent / "shared" / "data")


def _options(module: str, command: str) -> set[str]:
    """The option strings the example's (sub)command accepts, read from its parser."""
    parser = _parser(module)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(sub.choices[command]._option_string_actions)


class _Args:
    """An argument list edited flag by flag (``--flag value`` pairs and lone switches)."""

    def __init__(self, args, options: set[str]):
        self.args, self.options = list(args), options

    def get(self, flag: str) -> str | None:
        return self.args[self.args.index(flag) + 1] if flag in self.args else None

    def drop(self, flag: str, takes_value: bool = True) -> None:
        while flag in self.args:
            i = self.args.index(flag)
            del self.args[i:i + 1 + takes_value]

    def set(self, flag: str, value: str | None = None) -> None:
        """``flag value`` in place of any there, where the command accepts ``flag``."""
        if flag not in self.options:
            return
        self.drop(flag, value is not None)
        self.args += [flag] if value is None else [flag, value]

    def at_most(self, flag: str, value: int, add: bool = True) -> None:
        """``flag`` no larger than ``value`` (added when absent and ``add``)."""
        given = self.get(flag)
        if given is not None and int(given) <= value:
            return
        if given is not None or add:
            self.set(flag, str(value))


def _small_config(config: str, tmp: Path) -> str:
    """A copy of a NASLib zero-cost config scoring 3 architectures on 2 x 16 images."""
    import yaml

    settings = yaml.safe_load((ROOT / config).read_text(encoding="utf-8"))
    settings.update(test_size=3, batch_size=32, out_dir=str(tmp / "naslib-run"))
    settings.setdefault("xigsnr", {}).update(n_batches=2, batch_size=16)
    small = tmp / Path(config).name
    small.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return str(small)


def _first_lines(path: str, n: int, tmp: Path) -> str:
    indices = (ROOT / path).read_text(encoding="utf-8").replace(",", " ").split()[:n]
    small = tmp / "archs.txt"
    small.write_text("\n".join(indices) + "\n", encoding="utf-8")
    return str(small)


def small_args(example: Example, tmp: Path) -> list[str]:
    """The example's arguments at small sizes, every output under ``tmp``."""
    if example.module != "xigsnr_naslib.cli":
        return list(example.args)
    command = example.args[0]
    a = _Args(example.args, _options(example.module, command))
    a.set("--data-root", _data_root())   # ../shared/data, DATA_ROOT: the test's data root
    for flag in ("--n-batches", "--batch-size"):
        a.at_most(flag, {"--n-batches": 2, "--batch-size": 16}[flag])
    a.set("--workers", "0")
    a.set("--no-progress")
    if command == "correlate":
        for flag in ("--archs", "--sample"):
            a.drop(flag)
        a.set("--first", "3")
        a.set("--results", str(tmp / "results.jsonl"))
        a.set("--report", str(tmp / "report.json"))
    elif command == "score":
        a.set("--results", str(tmp / "results.jsonl"))
    elif command == "leaderboard":
        if a.get("--archs-file") is not None:
            a.set("--archs-file", _first_lines(a.get("--archs-file"), 5, tmp))
        else:
            a.drop("--all", takes_value=False)
            a.set("--sample", "5")
        a.set("--results", str(tmp / "scores.jsonl"))
        a.set("--out", str(tmp / "board"))
        a.set("--n-boot", "10")
        a.set("--no-figures")
    elif command == "search":
        from xigsnr_naslib.search.zero_shot import ALGORITHM_FLAGS

        # only the algorithm's own flags: the command refuses another algorithm's
        algorithm = a.get("--algorithm") or "evolution"
        small = {"samples": 3, "population": 3, "steps": 2, "sample_size": 2, "repeats": 1}
        for name, value in small.items():
            if name in ALGORITHM_FLAGS[algorithm]:
                a.at_most("--" + name.replace("_", "-"), value)
        if a.get("--space") == "darts" and algorithm == "prune":   # 2 channels, 3 cells, 2 operations
            a.args += ["--supernet-option", "width=2", "--supernet-option", "depth=3",
                       "--supernet-option", 'operations=["skip_connect","sep_conv_3x3"]']
        a.set("--results", str(tmp / "results.jsonl"))
        a.set("--checkpoint", str(tmp / "checkpoint.json"))
        a.set("--output", str(tmp / "best.json"))
    elif command == "naslib-run":
        a.set("--config", _small_config(a.get("--config"), tmp))
        a.set("--out-dir", str(tmp / "naslib-run"))
    elif command == "predictor-eval":
        a.at_most("--train", 20)
        a.at_most("--test", 50)
    elif command == "cifar10-layout":
        a.set("--out", str(tmp / "naslib-data"))
    return a.args


def _distinct(examples: list[Example]) -> list[Example]:
    """One example per distinct command (the README and the docs repeat a few): the first."""
    seen, distinct = set(), []
    for example in examples:
        if (example.module, example.args) not in seen:
            seen.add((example.module, example.args))
            distinct.append(example)
    return distinct


@pytest.mark.slow
@pytest.mark.parametrize("example", _distinct(EXAMPLES), ids=str)
def test_example_runs(example: Example, tmp_path: Path):
    if example.needs:
        pytest.skip(f"{example.where} needs {example.needs}")
    args = small_args(example, tmp_path)
    env = dict(os.environ, XIGSNR_DATA_ROOT=_data_root(), OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    run = subprocess.run([sys.executable, "-m", example.module, *args], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, (f"{example.where}: {shlex.join(args)} exited {run.returncode}\n"
                                 f"{run.stderr[-3000:]}")
