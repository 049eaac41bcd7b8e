"""``serverroom batch …``: submit a JSONL file to a running server and watch it finish.

Talks to the server through the official ``openai`` SDK (``--base-url`` / ``OPENAI_BASE_URL``,
``--api-key`` / ``OPENAI_API_KEY``), so it works against any OpenAI-compatible Batch API.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

batch_app = typer.Typer(help="Batch API jobs on a running server.", no_args_is_help=True)

TERMINAL = ("completed", "failed", "cancelled", "expired")
BaseUrl = Annotated[
    str, typer.Option("--base-url", envvar="OPENAI_BASE_URL", help="The server's /v1 URL.")
]
ApiKey = Annotated[
    str, typer.Option("--api-key", envvar="OPENAI_API_KEY", help="API key for the server.")
]


def output_paths(source: Path) -> tuple[Path, Path]:
    """Where results go: ``x.jsonl`` → ``x.output.jsonl`` and ``x.errors.jsonl``."""
    return (
        source.with_name(f"{source.stem}.output.jsonl"),
        source.with_name(f"{source.stem}.errors.jsonl"),
    )


@batch_app.command()
def submit(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Input JSONL.")],
    endpoint: Annotated[str, typer.Option(help="Endpoint every line calls.")] = (
        "/v1/chat/completions"
    ),
    completion_window: Annotated[str, typer.Option(help="Completion window.")] = "24h",
    watch: Annotated[bool, typer.Option(help="Show progress and download the results.")] = False,
    poll: Annotated[float, typer.Option(help="Seconds between status checks.")] = 1.0,
    base_url: BaseUrl = "http://127.0.0.1:8000/v1",
    api_key: ApiKey = "sk-local",
) -> None:
    """Upload FILE, create a batch, and (with --watch) wait and write the output file."""
    import openai
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console()
    client = openai.OpenAI(base_url=base_url, api_key=api_key)
    with file.open("rb") as handle:
        upload = client.files.create(file=(file.name, handle), purpose="batch")
    batch = client.batches.create(
        input_file_id=upload.id,
        endpoint=endpoint,  # type: ignore[arg-type]
        completion_window=completion_window,  # type: ignore[arg-type]
    )
    console.print(f"uploaded [bold]{upload.id}[/], created batch [bold]{batch.id}[/]")
    if not watch:
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("failed {task.fields[failed]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(batch.status, total=None, failed=0)
        while True:
            batch = client.batches.retrieve(batch.id)
            counts = batch.request_counts
            if counts is not None:
                progress.update(
                    task,
                    total=counts.total or None,
                    completed=counts.completed + counts.failed,
                    failed=counts.failed,
                )
            progress.update(task, description=batch.status)
            if batch.status in TERMINAL:
                break
            time.sleep(poll)
    out_path, err_path = output_paths(file)
    if batch.output_file_id:
        out_path.write_bytes(client.files.content(batch.output_file_id).content)
        console.print(f"output: {out_path}")
    if batch.error_file_id:
        err_path.write_bytes(client.files.content(batch.error_file_id).content)
        console.print(f"errors: {err_path}")
    for error in (batch.errors.data or []) if batch.errors else []:
        console.print(f"[red]line {error.line}: {error.code}: {error.message}[/]")
    console.print(f"batch {batch.id}: [bold]{batch.status}[/]")
    if batch.status != "completed":
        raise typer.Exit(1)


@batch_app.command()
def status(
    batch_id: str, base_url: BaseUrl = "http://127.0.0.1:8000/v1", api_key: ApiKey = "sk-local"
) -> None:
    """Print a batch as JSON."""
    import openai

    client = openai.OpenAI(base_url=base_url, api_key=api_key)
    typer.echo(client.batches.retrieve(batch_id).model_dump_json(indent=2))


@batch_app.command()
def cancel(
    batch_id: str, base_url: BaseUrl = "http://127.0.0.1:8000/v1", api_key: ApiKey = "sk-local"
) -> None:
    """Cancel a batch."""
    import openai

    client = openai.OpenAI(base_url=base_url, api_key=api_key)
    typer.echo(client.batches.cancel(batch_id).status)
