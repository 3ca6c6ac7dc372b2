"""The command line reports the project's own errors in one line and lets a bug show its traceback."""
from __future__ import annotations

import pytest

from xigsnr_naslib.cli import app
from xigsnr_naslib.data.data_root import DataRootError, MissingDataError
from xigsnr_naslib.errors import DataError, UsageError, XiGSNRError
from xigsnr_naslib.registry import UnknownChoiceError
from xigsnr_naslib.scoring.results import StoreBusyError, StoreNotWritableError


def _raising(exc):
    def handler(args):
        raise exc
    return handler


@pytest.mark.parametrize("exc, status", [
    (UsageError("--first: expected a whole number, got 'x'"), app.USAGE_ERROR),
    (UnknownChoiceError("unknown proxy 'bogus'; choose one of: a, b"), app.USAGE_ERROR),
    (DataRootError("no data root: give --data-root"), app.USAGE_ERROR),
    (MissingDataError("NAS-Bench-201 file not found under /x"), app.DATA_ERROR),
    (StoreNotWritableError("results.jsonl is not writable"), app.DATA_ERROR),
    (StoreBusyError("another run is writing results.jsonl"), app.USAGE_ERROR),
])
def test_project_errors_are_one_line_with_their_status(monkeypatch, capsys, exc, status):
    monkeypatch.setitem(app._COMMANDS, "proxies", _raising(exc))
    assert app.main(["proxies"]) == status
    err = capsys.readouterr().err
    assert err == f"xigsnr-naslib proxies: error: {exc}\n"


@pytest.mark.parametrize("exc", [KeyError("bug"), TypeError("bug"), ValueError("bug"), OSError("bug"),
                                 AttributeError("bug"), ZeroDivisionError("bug")])
def test_a_bug_shows_its_traceback(monkeypatch, exc):
    """Builtin errors are not the project's: the command does not turn them into a usage error."""
    monkeypatch.setitem(app._COMMANDS, "proxies", _raising(exc))
    with pytest.raises(type(exc)):
        app.main(["proxies"])


def test_every_project_error_is_also_the_builtin_callers_may_catch():
    assert issubclass(UsageError, ValueError) and issubclass(DataError, OSError)
    for cls in (UnknownChoiceError, StoreBusyError, DataRootError):
        assert issubclass(cls, UsageError)
    for cls in (MissingDataError, StoreNotWritableError):
        assert issubclass(cls, DataError)
    assert all(issubclass(c, XiGSNRError) for c in (UsageError, DataError))


def test_an_output_that_cannot_be_written_is_refused_before_any_work(tmp_path):
    from xigsnr_naslib.data.outputs import check_output

    blocked = tmp_path / "a_file"
    blocked.write_text("not a folder")
    with pytest.raises(DataError, match=f"cannot write report {blocked}/deep/r.json: {blocked} is a file, not a folder"):
        check_output(blocked / "deep" / "r.json", "report")
    with pytest.raises(DataError, match="it is a folder"):
        check_output(tmp_path, "report")
    with pytest.raises(DataError, match="it is a file, not a folder"):
        check_output(blocked, "leaderboard", folder=True)
    check_output(tmp_path / "new" / "r.json", "report")          # a folder to create: fine
    check_output(tmp_path / "board", "leaderboard", folder=True)
    assert not (tmp_path / "new").exists()                        # nothing is created by the check


def test_correlate_refuses_an_unwritable_report_before_scoring(tmp_path, capsys):
    blocked = tmp_path / "a_file"
    blocked.write_text("x")
    code = app.main(["correlate", "--first", "2", "--data-root", str(tmp_path / "no-root"),
                     "--results", str(tmp_path / "r.jsonl"), "--report", str(blocked / "r.json")])
    err = capsys.readouterr().err
    assert code == app.DATA_ERROR and f"{blocked} is a file, not a folder" in err
    assert not (tmp_path / "r.jsonl").exists()
