"""The `audiotok` command: one module a verb, registered here.

Command modules import only typer at module level; numpy, soundfile, torch
and the rest are imported inside the command, so `audiotok --help` is instant.
"""

import contextlib
import importlib
import os
import sys

import typer

from audiotok import __version__

# Command modules under audiotok/cli/, in the order `audiotok --help` lists them; one a line.
COMMANDS = (
    "resample",
    "trim",
    "normalize",
    "wav_to_duration",
    "info",
    "extract_feats",
    "fit_kmeans",
    "import_centroids",
    "quantize",
    "copy_feats",
    "feat_info",
    "tokenize",
    "stream",
    "report",
    "abx",
    "sweep_table",
    "interleave",
    "deinterleave",
    "export",
    "s3_extract",
    "bsq_train",
    "bsq_encode",
    "bsq_decode",
    "bsq_eval",
    "tokenize_shards",
    "check_shard_tokens",
    "bicodec_extract",
    "taste_extract",
    "taste_train",
    "taste_encode",
    "model",
)

app = typer.Typer(
    name="audiotok",
    help="Turn speech corpora into discrete tokens with small composable commands.\n\n"
    "Tables go through files and pipes (Kaldi data dirs, scp:/ark: specifiers, tar shards); "
    "data goes to stdout, logs to stderr. Exit codes: 0 ok, 1 failure, 2 usage error.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

for module in (importlib.import_module(f"audiotok.cli.{name}") for name in COMMANDS):
    if hasattr(module, "app"):  # a command group: `audiotok model list`
        app.add_typer(module.app, name=module.NAME, help=module.__doc__)
    else:
        app.command(module.NAME, help=module.__doc__, no_args_is_help=True)(module.command)


def _version(value: bool) -> None:
    if value:
        print(f"audiotok {__version__}")
        raise typer.Exit()


@app.callback()
def _global_options(
    verbose: int = typer.Option(0, "-v", "--verbose", count=True, help="More logging (-v debug)."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="Only warnings and errors on stderr."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    from audiotok.log import command_line, setup_logging

    setup_logging(-1 if quiet else verbose)
    if not {"-h", "--help"} & set(sys.argv[1:]):
        import logging

        logging.getLogger("audiotok").info(command_line())


def main() -> None:
    """Entry point: one handler turns known errors into `error: what (hint: how)`; a signal ends
    the run with `error: interrupted` (130) or `error: terminated` (143), never a traceback."""
    from audiotok import signals

    signals.install()  # again, for callers that import main() without audiotok.__main__
    try:
        code = _dispatch(sys.argv[1:])
    except KeyboardInterrupt:  # a signal while a handler below was reporting another error
        code = _stopped()
    # A signal is handled when a function is entered: one that arrives as the command ends is raised
    # on entering finishing(), before it sets its flag. The run's work and exit code are settled by then.
    try:
        signals.finishing()
    except KeyboardInterrupt:
        signals.finishing()
    with contextlib.suppress(BrokenPipeError):
        sys.stdout.flush()
    sys.exit(code)


def _stopped() -> int:
    from audiotok import signals

    signals.finishing()
    print(signals.stop_message(), file=sys.stderr)
    return signals.exit_code()


def _dispatch(args: list[str]) -> int:
    from audiotok.errors import AlreadyDone, AudiotokError

    command = typer.main.get_command(app)
    try:
        code = command.main(args=args, prog_name="audiotok", standalone_mode=False)
        if code == 130:  # click turns a KeyboardInterrupt into Abort, and typer that into 130
            raise KeyboardInterrupt
    except AlreadyDone as done:
        import logging

        logging.getLogger("audiotok").info("%s is already done by a run with the same arguments (--force redoes it)", done.output)
        code = 0
    except AudiotokError as err:
        print(err.one_line(), file=sys.stderr)
        code = err.exit_code
    except typer.Exit as err:
        code = err.exit_code
    except (typer.Abort, KeyboardInterrupt):
        code = _stopped()
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 141
    except Exception as err:  # noqa: BLE001 - the one place unknown errors become one line
        if hasattr(err, "show") and hasattr(err, "exit_code"):  # a usage error from typer's click
            err.show(file=sys.stderr)
            return err.exit_code
        if os.environ.get("AUDIOTOK_DEBUG"):
            raise
        print(f"error: {type(err).__name__}: {err} (hint: AUDIOTOK_DEBUG=1 shows the traceback)", file=sys.stderr)
        code = 1
    return code if isinstance(code, int) else 0
