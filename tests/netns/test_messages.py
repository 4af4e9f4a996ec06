"""The message bus between real --no-tun nodes three hops apart, driven by the CLI."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import time

import pytest

from netns.harness import MYCELIUM, Network, NodeProcess

pytestmark = pytest.mark.netns


def line_without_tun(net: Network, count: int, loss_percent: float = 0) -> list[NodeProcess]:
    names = [net.ns(f"m{i}") for i in range(count)]
    nodes = []
    for i, ns in enumerate(names):
        peers = []
        if i:
            ifa, ifb, left, _ = net.link(names[i - 1], ns)
            peers = [f"tcp://[{left}]:9651"]
            if loss_percent:
                # Lossy wires: 5% of the frames on every hop vanish (each direction).
                for where, ifname in ((names[i - 1], ifa), (ns, ifb)):
                    net.exec(
                        where, "tc", "qdisc", "add", "dev", ifname, "root", "netem",
                        "loss", f"{loss_percent}%",
                    )  # fmt: skip
        nodes.append(net.start_node(ns, peers, "--no-tun", "--disable-peer-discovery"))
    for node in nodes:
        net.wait_listening(node)
        net.wait_listening(node, port=8989)
    return nodes


_GET = "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())"


def message_state(net: Network, node: NodeProcess, message_id: str) -> object:
    """The ``state`` of a sent message, from the node's REST API inside its namespace."""
    url = f"http://127.0.0.1:8989/api/v1/messages/status/{message_id}"
    return json.loads(net.exec(node.ns, sys.executable, "-c", _GET, url).stdout)["state"]


def cli(net: Network, node: NodeProcess, *args: str, timeout: float = 60):
    return net.exec(node.ns, MYCELIUM, *args, timeout=timeout, check=False)


def netem_available(net: Network) -> bool:
    """Some kernels lack sch_netem; the lossy variant is then skipped, not failed. Probed on the
    loopback of a throwaway namespace, never the host's."""
    ns = net.ns("probe")
    probe = net.exec(
        ns, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "loss", "0%", check=False
    )
    return probe.returncode == 0


def test_one_megabyte_over_three_hops_and_a_reply(net: Network) -> None:
    megabyte_and_reply(net, loss_percent=0)


def test_one_megabyte_over_three_lossy_hops_and_a_reply(net: Network) -> None:
    if not netem_available(net):
        pytest.skip("kernel without the netem qdisc")
    megabyte_and_reply(net, loss_percent=5)


def megabyte_and_reply(net: Network, loss_percent: float) -> None:
    first, *_, last = line_without_tun(net, 4, loss_percent=loss_percent)
    blob = os.urandom(1 << 20)
    src = net.workdir / "blob.bin"
    src.write_bytes(blob)
    dst = net.workdir / "received.bin"
    receiver = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            last.ns,
            MYCELIUM,
            "message",
            "receive",
            "--timeout",
            "90",
            "--msg-path",
            str(dst),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    sent = None
    while time.monotonic() < deadline:
        sent = cli(net, first, "message", "send", last.address, "--msg-path", str(src))
        if sent.returncode == 0:
            break
        time.sleep(1)
    assert sent is not None and sent.returncode == 0, sent.stderr
    out, _ = receiver.communicate(timeout=120)
    assert receiver.returncode == 0
    assert hashlib.sha256(dst.read_bytes()).hexdigest() == hashlib.sha256(blob).hexdigest()
    assert json.loads(out)["srcIp"] == first.address

    message_id = json.loads(sent.stdout)["id"]
    assert message_state(net, first, message_id) in ("received", "read")

    # Request and reply across the same three hops, both ends through the CLI.
    asker = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            first.ns,
            MYCELIUM,
            "message",
            "send",
            last.address,
            "question",
            "-t",
            "ask",
            "--wait",
            "--timeout",
            "60",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    question = json.loads(
        cli(net, last, "message", "receive", "--timeout", "60", "-t", "ask").stdout
    )
    assert question["payload"] == "question" and question["topic"] == "ask"
    replied = cli(
        net, last, "message", "send", first.address, "answer", "--reply-to", question["id"]
    )
    assert replied.returncode == 0, replied.stderr
    out, _ = asker.communicate(timeout=90)
    assert json.loads(out)["payload"] == "answer"


def test_topic_forwarded_to_a_unix_socket_is_answered(net: Network) -> None:
    """A topic configured with a forward socket: the socket gets the payload, its answer comes
    back to the waiting sender as the reply (real processes, one hop)."""
    import socket
    import threading

    sock_path = net.workdir / "echo.sock"
    config = net.workdir / "topics.toml"
    config.write_text(
        f'default = "Reject"\necho = {{ subnets = ["400::/7"], forward_socket = "{sock_path}" }}\n'
    )
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(sock_path))
    server.listen()
    server.settimeout(60)
    seen: list[bytes] = []

    def answer() -> None:
        with contextlib.suppress(OSError):
            conn, _ = server.accept()
            with conn:
                data = b""
                while chunk := conn.recv(65536):
                    data += chunk
                seen.append(data)
                conn.sendall(b"echo:" + data)

    worker = threading.Thread(target=answer, daemon=True)
    worker.start()
    try:
        a, b = net.ns("s0"), net.ns("s1")
        _, _, left, _ = net.link(a, b)
        first = net.start_node(a, [], "--no-tun", "--disable-peer-discovery")
        net.wait_listening(first)
        last = net.start_node(
            b,
            [f"tcp://[{left}]:9651"],
            "--no-tun",
            "--disable-peer-discovery",
            "--topic-config",
            str(config),
        )
        net.wait_listening(last, port=8989)
        net.wait_listening(first, port=8989)
        deadline = time.monotonic() + 60
        sent = None
        while time.monotonic() < deadline and not seen:
            sent = cli(
                net, first, "message", "send", last.address, "hello", "-t", "echo",
                "--wait", "--timeout", "20",
            )  # fmt: skip
            if sent.returncode == 0 and sent.stdout.strip():
                break
            time.sleep(1)
        assert sent is not None and sent.returncode == 0, sent.stderr
        assert seen == [b"hello"]
        assert json.loads(sent.stdout)["payload"] == "echo:hello"
        # Answered by the socket, so nothing waits in the receiver's inbox.
        left_over = cli(net, last, "message", "receive", "--timeout", "0")
        assert left_over.stdout.strip() == ""
        # A topic the config does not list is rejected by default.
        cli(net, first, "message", "send", last.address, "other", "-t", "nope")
        assert cli(net, last, "message", "receive", "--timeout", "2").stdout.strip() == ""
    finally:
        server.close()
        worker.join(timeout=5)


@pytest.mark.timeout(420)
def test_message_to_an_unreachable_node_is_aborted_at_its_deadline(net: Network) -> None:
    """The reference's send window is 5 minutes: this test waits that long on purpose."""
    first, _second = line_without_tun(net, 2)
    nobody = "5ff:1:2:3:4:5:6:7"  # inside 400::/7, owned by no node here
    sent = cli(net, first, "message", "send", nobody, "lost in space")
    assert sent.returncode == 0, sent.stderr
    message_id = json.loads(sent.stdout)["id"]

    assert message_state(net, first, message_id) == "pending"
    started = time.monotonic()
    while message_state(net, first, message_id) != "aborted":
        assert time.monotonic() - started < 330, "not aborted within the 5-minute window"
        time.sleep(5)
    assert time.monotonic() - started > 280  # not before its deadline either
