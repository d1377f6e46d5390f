"""`python -m audiotok` and the `audiotok` script: the signal handlers first, then the command line."""

import sys

from audiotok import signals


def run() -> None:
    signals.install()  # before the heavy imports, so Ctrl-C during start-up stops quietly too
    try:
        from audiotok.cli import main

        main()  # handles its own signals once inside; one that comes as main is entered lands below
    except KeyboardInterrupt:
        signals.finishing()
        print(signals.stop_message(), file=sys.stderr)
        sys.exit(signals.exit_code())


if __name__ == "__main__":
    run()
