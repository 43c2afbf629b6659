"""The conductor's listening socket: connections accepted from it send small replies at once.

asyncio turns Nagle's algorithm off (TCP_NODELAY) only on sockets that name their protocol;
a listener made with protocol 0 gave every reply on a kept-alive connection a ~40 ms wait.
"""

from __future__ import annotations

import asyncio
import socket

from sundial.server import bind_listener


def test_connections_accepted_from_the_listener_have_nagle_off() -> None:
    listener = bind_listener("127.0.0.1", 0)
    port = listener.getsockname()[1]
    seen: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, sock=listener)
        async with server:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            await reader.read()
            writer.close()

    asyncio.run(main())
    assert seen and seen[0] != 0
