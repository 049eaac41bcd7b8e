"""Responses go through the metering seam: admitted once, settled once, headers attached."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from fastapi.testclient import TestClient

from serverroom.metering import Admission, Ticket, Usage


@dataclass
class RecordingTicket:
    settled: list[Usage] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=lambda: {"x-ratelimit-test": "1"})

    async def settle(self, usage: Usage) -> None:
        self.settled.append(usage)


@dataclass
class RecordingMetering:
    admitted: list[tuple[str, int, int]] = field(default_factory=list)
    tickets: list[RecordingTicket] = field(default_factory=list)

    async def admit(self, admission: Admission) -> Ticket:
        self.admitted.append(
            (admission.endpoint, admission.prompt_tokens, admission.max_output_tokens)
        )
        ticket = RecordingTicket()
        self.tickets.append(ticket)
        return ticket


def install(client: TestClient) -> RecordingMetering:
    metering = RecordingMetering()
    client.app.state.context.metering = metering  # type: ignore[attr-defined]
    return metering


def test_plain_and_streamed(client: TestClient) -> None:
    metering = install(client)
    reply = client.post(
        "/v1/responses", json={"model": "gpt-4.1", "input": "hi", "max_output_tokens": 7}
    )
    assert reply.headers["x-ratelimit-test"] == "1"
    body = reply.json()
    assert metering.admitted == [("/v1/responses", body["usage"]["input_tokens"], 7)]
    assert metering.tickets[0].settled == [Usage(body["usage"]["input_tokens"], 0, 7)]
    with client.stream(
        "POST", "/v1/responses", json={"model": "gpt-4.1", "input": "hi", "stream": True}
    ) as stream:
        assert stream.headers["x-ratelimit-test"] == "1"
        stream.read()
    assert len(metering.tickets) == 2 and len(metering.tickets[1].settled) == 1
    assert metering.tickets[1].settled[0].output_tokens > 0


def test_background_settles_once(client: TestClient) -> None:
    metering = install(client)
    reply = client.post(
        "/v1/responses", json={"model": "gpt-4.1", "input": "hi", "background": True}
    )
    assert reply.headers["x-ratelimit-test"] == "1"
    deadline = time.monotonic() + 10
    while not metering.tickets[0].settled and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.1)
    assert len(metering.tickets[0].settled) == 1
    assert metering.tickets[0].settled[0].output_tokens > 0


def test_rejected_request_is_not_admitted(client: TestClient) -> None:
    metering = install(client)
    reply = client.post("/v1/responses", json={"model": "gpt-4.1", "input": "x" * 9000})
    assert reply.status_code == 400
    assert metering.admitted == []


def test_invalid_echo_field_is_not_admitted(client: TestClient) -> None:
    """A 400 found while building the Response (e.g. a bad tool) must not reserve tokens."""
    metering = install(client)
    reply = client.post(
        "/v1/responses",
        json={"model": "gpt-4.1", "input": "hi", "tools": [{"type": "no_such_tool"}]},
    )
    assert reply.status_code == 400
    assert metering.admitted == []
