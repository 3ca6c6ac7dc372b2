"""MkDocs hook: the checked-in results under ``evaluation/`` become part of the site.

The results pages link to the reports, tables and figures that the evaluation scripts wrote
(``evaluation/leaderboard/*/leaderboard.md``, ``*.png``, ``*.csv``, ...). They live beside the
scripts, not under ``docs/``, so this hook adds them to the site at the same path
(``evaluation/...``) instead of copying them: a link from ``docs/results/x.md`` reads
``../evaluation/...``, and ``mkdocs build --strict`` checks it like any other link.
"""
from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File

#: what the evaluation scripts write that a reader opens (scripts and logs stay out)
SUFFIXES = {".md", ".png", ".csv", ".json", ".txt"}


def on_files(files, config):
    root = Path(config.config_file_path).resolve().parent
    for path in sorted((root / "evaluation").rglob("*")):
        if path.is_file() and path.suffix in SUFFIXES:
            files.append(File(path.relative_to(root).as_posix(), str(root), config.site_dir,
                              config.use_directory_urls))
    return files
