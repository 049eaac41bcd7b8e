"""The ``serverroom`` command line.

``serverroom serve`` takes its flags from ``Settings`` itself (``--port 9000``,
``--engine.slots 8``), so every environment variable has a flag of the same name.
"""

from __future__ import annotations

import typer
from pydantic_settings import CliApp

from serverroom.settings import Settings

app = typer.Typer(help="serverroom: a self-hosted OpenAI API platform.", no_args_is_help=True)

_PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}


def load_settings(args: list[str]) -> Settings:
    """Settings from the environment, overridden by command-line flags."""
    return CliApp.run(Settings, cli_args=args, cli_prog_name="serverroom serve")


@app.command(context_settings=_PASS_THROUGH)
def serve(ctx: typer.Context) -> None:
    """Start the API server (flags: every Settings field, see --help)."""
    import faulthandler

    import uvicorn

    from serverroom.app import create_app
    from serverroom.observability.logs import configure_logging
    from serverroom.server_protocol import http_protocol

    # A native fault (in llama.cpp, say) prints every thread's Python stack before the process
    # dies with the signal: a non-zero exit a supervisor restarts, never a silent death.
    faulthandler.enable()
    settings = load_settings(list(ctx.args))
    configure_logging(settings.log_level, settings.log_format)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        # JSON logs: uvicorn's own loggers (access lines included) go through the root handler
        log_config=None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG,
        http=http_protocol(settings.requests.header_timeout),
        timeout_graceful_shutdown=10,
    )


@app.command(context_settings=_PASS_THROUGH)
def doctor(
    ctx: typer.Context,
    probe: bool = typer.Option(True, help="Probe llama.cpp now if no verdict is kept yet."),
) -> None:
    """Report the machine, llama.cpp build and settings, storage and model files (for bug
    reports). Takes the same settings flags as serve."""
    import sys

    from serverroom.doctor import diagnose

    settings = load_settings(list(ctx.args))
    report = diagnose(settings, probe=probe, say=lambda text: print(text, file=sys.stderr))
    print(report.render())
    raise typer.Exit(1 if report.problems else 0)


@app.command()
def models() -> None:
    """List the model catalog."""
    from rich.console import Console
    from rich.table import Table

    from serverroom.catalog import Catalog

    settings = Settings()
    table = Table("id", "runs", "context", "$/1M in", "$/1M cached", "$/1M out")
    for entry in Catalog.load(settings.catalog_file).entries():
        p = entry.pricing
        table.add_row(
            entry.id,
            entry.target,
            str(entry.context_length),
            f"{p.input:g}",
            f"{p.cached_input:g}",
            f"{p.output:g}",
        )
    Console().print(table)


from serverroom.accounts.cli import register as _register_accounts  # noqa: E402

_register_accounts(app)


def _add_batch_commands() -> None:
    from serverroom.api.batches.cli import batch_app

    app.add_typer(batch_app, name="batch")


_add_batch_commands()


def main() -> None:
    app()
