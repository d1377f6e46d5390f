"""audiotok.signals: a signal inside a deferred block waits for the block's end; the exit codes."""

import os
import signal

import pytest

from audiotok import signals


@pytest.fixture(autouse=True)
def handlers():
    previous = {number: signal.getsignal(number) for number in signals.EXIT_CODES}
    signals.install()
    yield
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
