"""Where the server may send requests on a client's behalf (image URLs, webhook endpoints):
hosts that resolve to public addresses only, unless the operator allows private ones."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from serverroom.errors import InvalidRequestError


async def check_public_host(url: str, param: str, code: str) -> None:
    """A 400 (``code``) for a URL whose host does not resolve, or resolves to a loopback,
    private, link-local or otherwise non-public address."""
    host = urlsplit(url).hostname or ""
    try:
        found = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise InvalidRequestError(
            f"Invalid '{param}': the host '{host}' could not be resolved.", param=param, code=code
        ) from exc
    for *_, address in found:
        if not ipaddress.ip_address(address[0]).is_global:
            raise InvalidRequestError(
                f"Invalid '{param}': this server sends requests to public addresses only.",
                param=param,
                code=code,
            )
