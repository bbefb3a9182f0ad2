"""The ``faceprint`` command line (Typer + Rich).

Results go to stdout (a table, or JSON with ``--json``); diagnostics to stderr. Exit codes:
0 success / match, 1 no match (verify: different people; identify: nobody known), 2 bad input
or any other faceprint error, always as a one-line message, never a traceback.

One module per command group; this module only builds the Typer app and registers the
commands in the order ``faceprint --help`` lists them.
"""

from __future__ import annotations

import sys

import typer

from . import dataset, evaluate, gallery, liveness, models, recognize, train
from .common import Command, Group, err

__all__ = ["app", "main"]

app = typer.Typer(
    name="faceprint",
    cls=Group,
    help="Offline face recognition: detect, verify, enroll, identify, evaluate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
gallery_app = typer.Typer(help="Manage the persistent gallery.", no_args_is_help=True, cls=Group)
evaluate_app = typer.Typer(help="Evaluate models on standard protocols.", no_args_is_help=True, cls=Group)
dataset_app = typer.Typer(help="Inspect face data sets.", no_args_is_help=True, cls=Group)
app.add_typer(gallery_app, name="gallery")
app.add_typer(evaluate_app, name="evaluate")
app.add_typer(dataset_app, name="dataset")
# `faceprint train`: the command module imports torch only when the command runs
app.command("train", cls=Command)(train.train)
app.command(cls=Command)(recognize.detect)
app.command(cls=Command)(recognize.verify)
app.command(cls=Command)(recognize.enroll)
app.command(cls=Command)(recognize.identify)
gallery_app.command("list", cls=Command)(gallery.gallery_list)
gallery_app.command("remove", cls=Command)(gallery.gallery_remove)
gallery_app.command("rename", cls=Command)(gallery.gallery_rename)
evaluate_app.command("lfw", cls=Command)(evaluate.evaluate_lfw)
evaluate_app.command("bias", cls=Command)(evaluate.evaluate_bias_cmd)
evaluate_app.command("identification", cls=Command)(evaluate.evaluate_identification_cmd)
evaluate_app.command("liveness", cls=Command)(evaluate.evaluate_liveness_cmd)
app.command(cls=Command)(recognize.cluster)
dataset_app.command("stats", cls=Command)(dataset.dataset_stats_cmd)
app.command(cls=Command)(liveness.liveness)
app.command("challenge", cls=Command)(liveness.new_challenge)
app.command(cls=Command)(models.models)
app.command(cls=Command)(recognize.demo)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
