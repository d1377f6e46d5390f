"""audiotok.signals: a signal inside a deferred block waits for the block's end; the exit codes."""

import builtins
import os
import signal
import sys

import pytest

from audiotok import signals


@pytest.fixture(autouse=True)
def handlers():
    previous = {number: signal.getsignal(number) for number in signals.EXIT_CODES}
    plain_import = builtins.__import__
    signals.install()
    yield
    builtins.__import__ = plain_import
    for number, handler in previous.items():
        signal.signal(number, handler)


def test_a_signal_in_a_deferred_block_is_raised_when_the_block_ends():
    reached = []
    with pytest.raises(KeyboardInterrupt):
        with signals.deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            with signals.deferred():  # nested: still held
                reached.append("inner")
            reached.append("after the signal")  # the block is not cut
    assert reached == ["inner", "after the signal"]
    assert signals.exit_code() == 143 and signals.stop_message() == "error: terminated"


def test_outside_a_block_a_signal_stops_at_once_and_after_finishing_never():
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        signal.pthread_sigmask(signal.SIG_BLOCK, [])  # a bytecode boundary: the handler has run
    assert signals.exit_code() == 130 and signals.stop_message() == "error: interrupted"
    signals.finishing()
    os.kill(os.getpid(), signal.SIGTERM)  # the work is settled: nothing is raised
    assert signals.received() == signal.SIGINT  # the first signal decides the exit code


def test_a_held_package_imports_whole_and_the_signal_stops_after(tmp_path, monkeypatch):
    # Stands for torch: a package whose import must not be cut (its C++ start-up calls Python).
    (tmp_path / "heldpkg.py").write_text(
        "import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\nsignal.pthread_sigmask(signal.SIG_BLOCK, [])  # the handler has run by now\nCOMPLETE = True\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(signals, "HELD_IMPORTS", signals.HELD_IMPORTS | {"heldpkg"})
    monkeypatch.delitem(sys.modules, "heldpkg", raising=False)
    with pytest.raises(KeyboardInterrupt):
        import heldpkg  # noqa: F401
    assert sys.modules["heldpkg"].COMPLETE
    assert signals.exit_code() == 143


def test_a_signal_as_the_command_ends_keeps_its_exit_code(monkeypatch, capsys):
    """The signal handler runs when a function is entered, so a signal that comes as the command
    ends is raised on entering finishing(), before its flag is set: the finished run still exits 0."""
    from audiotok import cli

    real = signals.finishing
    calls = []

    def struck_on_entry():
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt  # what _on_signal raises at that moment
        real()

    monkeypatch.setattr(cli, "_dispatch", lambda args: 0)
    monkeypatch.setattr(signals, "finishing", struck_on_entry)
    monkeypatch.setattr(sys, "argv", ["audiotok", "info"])
    with pytest.raises(SystemExit) as exited:  # the autouse fixture restores the handlers main() installs
        cli.main()
    assert exited.value.code == 0 and len(calls) == 2
    assert "error:" not in capsys.readouterr().err
