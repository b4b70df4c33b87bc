"""`ecgfusion models …`: what models there are, how big they are and what they take."""

from __future__ import annotations

import typer
from rich import box
from rich.table import Table

from ecgfusion.cli.common import console

models_app = typer.Typer(help="The paper's models.", no_args_is_help=True)


def _shape(shape: tuple) -> str:
    return "[" + ", ".join(str(s) for s in shape) + "]"


@models_app.command("list")
def list_command() -> None:
    """Every registered model with its parameter count and input/output shapes."""
    from ecgfusion.models import describe_model, list_models

    infos = [describe_model(name) for name in list_models()]
    settings = {}
    for info in infos:
        s = info.setting
        settings.setdefault(
            f"{s['n_classes']} classes, {s['n_samples']} samples at {s['sampling_rate']:g} Hz", []
        ).append(info.name)
    table = Table(
        title="ecgfusion models (B = batch)",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        caption="; ".join(f"{', '.join(names)}: {text}" for text, names in settings.items()),
    )
    for column in ("model", "params", "trained", "input", "scores", "features"):
        numeric = column in ("params", "trained")
        table.add_column(column, justify="right" if numeric else "left", no_wrap=True)
    for info in infos:
        inputs = [f"{k} {_shape(v)}" for k, v in info.inputs.items()]
        inputs += [f"{k} {'x'.join(map(str, v))}" for k, v in info.internal.items()]
        inputs = [i.replace("spectrogram ", "image ") for i in inputs]
        table.add_row(
            info.name,
            f"{info.parameters:,}",
            f"{info.trainable:,}",
            "\n".join(inputs),
            _shape(info.output),
            _shape(info.features),
        )
    console.print(table)
    console.print(
        "params counts every parameter, trained only those with requires_grad: a fusion model's "
        "frozen backbones (freeze=true, the default) are not trained. cnn_2d (and the fusions) "
        "compute the 3x128x128 spectrogram image inside from the raw beat x."
    )


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
