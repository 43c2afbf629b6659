"""Topics and bounded subscriber queues: publishing never waits and never grows without bound.

Publishers (the job manager, the fleet) run on the hot path, so `publish` is a dict lookup
when nobody listens, encodes a message once for all its subscribers, and only appends to
in-memory queues. A subscriber whose queue is over its bound is cut off at once (marked
`overflowed` and removed from every topic); its socket writer notices and closes the
connection, and the client resynchronises on reconnect. A slow reader therefore costs the
publisher nothing and can never hold memory beyond its bound.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

import orjson

MAX_QUEUE_MESSAGES = 4096
MAX_QUEUE_BYTES = 8 << 20


def encode(message: dict[str, Any]) -> str:
    return orjson.dumps(message, default=str).decode()


class Subscriber:
    """One client's end of the bus: the topics it follows and its outbox of encoded frames."""

    def __init__(self, principal: Any, *, max_messages: int = MAX_QUEUE_MESSAGES,
                 max_bytes: int = MAX_QUEUE_BYTES) -> None:
        self.principal = principal  # re-read by the endpoint while the socket lives
        self.topics: set[str] = set()
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.outbox: deque[str] = deque()
        self.outbox_bytes = 0
        self.overflowed = False
        self.ready = asyncio.Event()

    def offer(self, text: str) -> bool:
        """Queue one frame; False (and `overflowed` set) when the bound is reached."""
        if self.overflowed:
            return False
        if len(self.outbox) >= self.max_messages or self.outbox_bytes + len(text) > self.max_bytes:
            self.overflowed = True
            self.outbox.clear()
            self.outbox_bytes = 0
            self.ready.set()
            return False
        self.outbox.append(text)
        self.outbox_bytes += len(text)
        self.ready.set()
        return True

    def send(self, message: dict[str, Any]) -> bool:
        return self.offer(encode(message))

    async def next(self, idle: float) -> str | None:
        """The next frame, or None after `idle` seconds of silence (or once overflowed)."""
        if not self.outbox and not self.overflowed:
            self.ready.clear()
            try:
                async with asyncio.timeout(idle):
                    await self.ready.wait()
            except TimeoutError:
                return None
        if self.overflowed or not self.outbox:
            return None
        text = self.outbox.popleft()
        self.outbox_bytes -= len(text)
        return text


Allow = Callable[[Any], bool]


class LiveBus:
    """Topic name → subscribers. Everything runs on the event loop's thread."""

    def __init__(self) -> None:
        self.topics: dict[str, set[Subscriber]] = {}
        self.dropped = 0  # subscribers cut off for being too slow, since start

    def listened(self, topic: str) -> bool:
        return topic in self.topics

    def subscribe(self, sub: Subscriber, topic: str) -> None:
        self.topics.setdefault(topic, set()).add(sub)
        sub.topics.add(topic)

    def unsubscribe(self, sub: Subscriber, topic: str) -> None:
        sub.topics.discard(topic)
        subs = self.topics.get(topic)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self.topics[topic]

    def drop(self, sub: Subscriber) -> None:
        """Remove a subscriber from every topic (its socket closed or it fell behind)."""
        for topic in list(sub.topics):
            self.unsubscribe(sub, topic)

    def publish(self, topic: str, message: dict[str, Any], allow: Allow | None = None) -> int:
        """Queue `message` for the topic's subscribers that `allow` admits; returns how many got it."""
        subs = self.topics.get(topic)
        if not subs:
            return 0
        text: str | None = None
        sent = 0
        for sub in tuple(subs):
            if allow is not None and not allow(sub.principal):
                continue
            if text is None:
                text = encode(message)
            if sub.offer(text):
                sent += 1
            else:
                self.dropped += 1
                self.drop(sub)
        return sent

    def end_topic(self, topic: str) -> None:
        """Nothing more will be published on `topic` (a job ended): forget its subscriptions."""
        for sub in tuple(self.topics.get(topic, ())):
            self.unsubscribe(sub, topic)
