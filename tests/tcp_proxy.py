"""A small TCP proxy for the fault tests: it forwards a loopback port to another, and can
cut every connection and refuse new ones until it is restored (a network fault between a
client and its server). With an SSL context it also terminates TLS, so a plain server
can stand behind a client that speaks TLS."""

from __future__ import annotations

import contextlib
import selectors
import socket
import ssl
import threading
from types import TracebackType

from onestop.streams.broker import free_port


class TcpProxy:
    def __init__(self, target_port: int, port: int | None = None,
                 tls: ssl.SSLContext | None = None) -> None:
        self.target_port = target_port
        self.port = port or free_port()
        self.tls = tls
        self.connected = threading.Event()  # open: links are passed on; cleared: cut
        self.connected.set()
        self.links: list[tuple[socket.socket, socket.socket]] = []
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", self.port))
        self.listener.settimeout(0.2)
        self.stopping = threading.Event()
        self.accepted = 0
        self.thread = threading.Thread(target=self._accept, name="tcp-proxy", daemon=True)

    def __enter__(self) -> TcpProxy:
        self.thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stopping.set()
        self.thread.join()
        self.listener.close()
        self._close_links()

    def cut(self) -> None:
        """Drop every connection; new ones are closed as soon as they are accepted."""
        self.connected.clear()
        self._close_links()

    def restore(self) -> None:
        self.connected.set()

    def _close_links(self) -> None:
        with self.lock:
            links, self.links = self.links, []
        for pair in links:
            for side in pair:
                with contextlib.suppress(OSError):
                    side.shutdown(socket.SHUT_RDWR)
                side.close()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            if not self.connected.is_set():
                client.close()
                continue
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            if self.tls is not None:
                client.settimeout(10)
                client = self.tls.wrap_socket(client, server_side=True)
                client.settimeout(None)
            server = socket.create_connection(("127.0.0.1", self.target_port))
        except (OSError, ssl.SSLError):
            client.close()
            return
        with self.lock:
            self.links.append((client, server))
            self.accepted += 1
        self._pump(client, server)

    def _pump(self, client: socket.socket, server: socket.socket) -> None:
        peers = {client: server, server: client}
        with selectors.DefaultSelector() as selector:
            for side in peers:
                selector.register(side, selectors.EVENT_READ)
            try:
                while self.connected.is_set() and not self.stopping.is_set():
                    # A TLS socket may hold decrypted bytes the selector cannot see.
                    ready = [key.fileobj for key, _ in selector.select(0.2)]
                    if isinstance(client, ssl.SSLSocket) and client.pending():
                        ready.append(client)
                    for side in set(ready):
                        data = side.recv(65536)  # type: ignore[union-attr]
                        if not data:
                            return
                        peers[side].sendall(data)  # type: ignore[index]
            except OSError:
                return
            finally:
                for side in peers:
                    side.close()
