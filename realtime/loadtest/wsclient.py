"""A minimal WebSocket client for the load test: cheap enough not to be what is measured.

With the ``websockets`` library a client process spends about 150 µs a message, so 100
clients in one process add ~15 ms to the median latency of every event, for the bare
server as much as for ours. This client is an ``asyncio.Protocol`` that does the opening
handshake, reads unmasked server frames, answers pings and hands each text message's
bytes to a callback, undecoded: a few microseconds a message.
"""

import asyncio
import base64
import os
import struct
from urllib.parse import urlsplit


class HandshakeError(Exception):
    pass


def _mask(payload: bytes) -> bytes:
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return key + masked


class WebSocketClientProtocol(asyncio.Protocol):
    def __init__(self, request: bytes, on_message, on_close):
        self.request = request
        self.on_message = on_message
        self.on_close = on_close
        self.transport = None
        self.buffer = bytearray()
        self.handshake = asyncio.get_running_loop().create_future()
        self.open = False
        self.fragments: list[bytes] = []
        self.close_code: int | None = None

    def connection_made(self, transport):
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data):
        self.buffer += data
        if not self.open:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end])
            del self.buffer[: end + 4]
            if not head.startswith(b"HTTP/1.1 101"):
                status = head.split(b"\r\n", 1)[0].decode("latin-1")
                if not self.handshake.done():
                    self.handshake.set_exception(HandshakeError(status))
                self.transport.close()
                return
            self.open = True
            if not self.handshake.done():
                self.handshake.set_result(True)
        self._frames()

    def _frames(self):
        buffer = self.buffer
        while True:
            if len(buffer) < 2:
                return
            first, second = buffer[0], buffer[1]
            length = second & 0x7F
            offset = 2
            if length == 126:
                if len(buffer) < 4:
                    return
                length = struct.unpack_from("!H", buffer, 2)[0]
                offset = 4
            elif length == 127:
                if len(buffer) < 10:
                    return
                length = struct.unpack_from("!Q", buffer, 2)[0]
                offset = 10
            if len(buffer) < offset + length:
                return
            payload = bytes(buffer[offset : offset + length])
            del buffer[: offset + length]
            opcode = first & 0x0F
            final = first & 0x80
            if opcode in (0x1, 0x2, 0x0):
                if not final:
                    self.fragments.append(payload)
                    continue
                if self.fragments:
                    payload = b"".join([*self.fragments, payload])
                    self.fragments = []
                self.on_message(payload)
            elif opcode == 0x9:  # ping
                self._send(0xA, payload)
            elif opcode == 0x8:  # close
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                self._send(0x8, payload[:2])
                self.transport.close()
                return

    def _send(self, opcode: int, payload: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        header = bytes([0x80 | opcode, 0x80 | len(payload)])
        self.transport.write(header + _mask(payload))

    def close(self, code: int = 1000) -> None:
        self._send(0x8, struct.pack("!H", code))

    def connection_lost(self, exc):
        if not self.handshake.done():
            self.handshake.set_exception(exc or HandshakeError("connection closed during the handshake"))
        self.on_close(self.close_code)


async def connect(url: str, headers: list[tuple[str, str]], on_message, on_close) -> WebSocketClientProtocol:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or 80
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        *(f"{name}: {value}" for name, value in headers),
    ]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    loop = asyncio.get_running_loop()
    _transport, protocol = await loop.create_connection(
        lambda: WebSocketClientProtocol(request, on_message, on_close), host, port
    )
    await protocol.handshake
    return protocol
