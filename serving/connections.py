"""Connection limits uvicorn does not set itself: a deadline on each request's headers and a cap on open connections.

uvicorn times out an idle keep-alive connection (`timeout_keep_alive`) but not a client that sends its headers a
byte at a time, nor one that connects and sends nothing; its `limit_concurrency` answers 503 only once a request's
headers are in. `guarded_protocol` is uvicorn's httptools protocol with both: the headers of every request (the
first, and each one after a keep-alive answer) must be in within `header_timeout_s` (else 408 and the connection
closed), and a connection past `max_connections` open ones gets 503 and is closed at once. The request body has
its own deadline in the request guard (`RequestGuard._buffer_body`).
"""

from __future__ import annotations

import json

HEADER_TIMEOUT_S = 10.0
MAX_CONNECTIONS = 512
KEEP_ALIVE_S = 5.0  # uvicorn's default


def _reply(status: int, reason: str, message: str) -> bytes:
    body = json.dumps({"error": message}).encode()
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\nconnection: close\r\n"
            f"content-length: {len(body)}\r\n\r\n").encode() + body


from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol  # noqa: E402 - the `serve` extra


class GuardedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header deadline and a connection cap (`uvicorn.run(http=...)`); a class
    of this module, so that uvicorn's worker processes can import it, set with `guarded_protocol`."""

    header_timeout_s = HEADER_TIMEOUT_S
    max_connections = MAX_CONNECTIONS

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._headers_timer = None
        if len(self.connections) > self.max_connections:
            transport.write(_reply(503, "Service Unavailable", f"the server holds its limit of {self.max_connections} "
                                   "open connections; try again shortly"))
            transport.close()
            return
        self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._headers_timer = self.loop.call_later(self.header_timeout_s, self._headers_late)

    def _disarm(self) -> None:
        if getattr(self, "_headers_timer", None) is not None:
            self._headers_timer.cancel()
            self._headers_timer = None

    def _headers_late(self) -> None:
        self._headers_timer = None
        if not self.transport.is_closing():
            self.transport.write(_reply(408, "Request Timeout",
                                        f"the request headers did not arrive within {self.header_timeout_s:g} s"))
            self.transport.close()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        pipelined = bool(self.pipeline)  # the next request's headers are already in: it starts now, deadline met
        super().on_response_complete()
        if not pipelined and not self.transport.is_closing():
            self._arm()  # the next request on this connection has the same deadline

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)


def guarded_protocol(header_timeout_s: float = HEADER_TIMEOUT_S, max_connections: int = MAX_CONNECTIONS) -> type:
    """`GuardedHttpTools` set to these limits (in this process: a worker process calls it again with its config)."""
    GuardedHttpTools.header_timeout_s, GuardedHttpTools.max_connections = header_timeout_s, max_connections
    return GuardedHttpTools
