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
from typer.core import TyperCommand

from . import audit, bulk, calibrate, dataset, evaluate, gallery, keys, liveness, models, recognize, serve, train, video
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
keys_app = typer.Typer(help="API keys of `faceprint serve`.", no_args_is_help=True, cls=Group)
app.add_typer(gallery_app, name="gallery")
app.add_typer(evaluate_app, name="evaluate")
app.add_typer(dataset_app, name="dataset")
app.add_typer(keys_app, name="keys")
# `faceprint train`: the command module imports torch only when the command runs
app.command("train")(train.train)
app.command()(recognize.detect)
app.command()(recognize.verify)
app.command()(recognize.enroll)
app.command()(recognize.identify)
app.command()(video.watch)
app.command("enroll-dir")(bulk.enroll_dir)
gallery_app.command("list")(gallery.gallery_list)
gallery_app.command("remove")(gallery.gallery_remove)
gallery_app.command("rename")(gallery.gallery_rename)
gallery_app.command("purge")(gallery.gallery_purge)
gallery_app.command("export")(gallery.gallery_export)
gallery_app.command("import")(gallery.gallery_import)
evaluate_app.command("lfw")(evaluate.evaluate_lfw)
evaluate_app.command("bias")(evaluate.evaluate_bias_cmd)
evaluate_app.command("identification")(evaluate.evaluate_identification_cmd)
evaluate_app.command("liveness")(evaluate.evaluate_liveness_cmd)
app.command()(recognize.cluster)
app.command()(calibrate.calibrate)
dataset_app.command("stats")(dataset.dataset_stats_cmd)
app.command()(liveness.liveness)
app.command("challenge")(liveness.new_challenge)
app.command()(models.models)
app.command()(serve.serve)
keys_app.command("create")(keys.keys_create)
keys_app.command("list")(keys.keys_list)
keys_app.command("revoke")(keys.keys_revoke)
app.command("audit")(audit.audit)
app.command()(recognize.demo)

# every command, registered above or later: flags show no <bool> in --help (common.Command)
for _typer in (app, gallery_app, evaluate_app, dataset_app, keys_app):
    for _info in _typer.registered_commands:
        if _info.cls in (None, TyperCommand):  # Typer's default: ours instead
            _info.cls = Command


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
