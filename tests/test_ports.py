"""Ports for the servers tests start: never the same port to two processes picking at once
(pytest-xdist workers, a benchmark, the demo), and free again when the reserver is gone."""

from __future__ import annotations

import multiprocessing
import socket
import subprocess
import sys
import textwrap

from lgwan_chat.ports import _port_range, free_port, reserve_port

PICKS = 300


def _pick_ports(start, queue, finish) -> None:  # in a child process
    start.wait()
    queue.put([free_port() for _ in range(PICKS)])
    finish.wait(120)  # a reservation ends with its process: all must hold theirs until compared


def test_processes_picking_ports_at_once_never_get_the_same_port():
    ctx = multiprocessing.get_context("spawn")  # fresh processes, as xdist workers are
    start, queue, finish = ctx.Event(), ctx.Queue(), ctx.Event()
    children = [ctx.Process(target=_pick_ports, args=(start, queue, finish)) for _ in range(4)]
    for child in children:
        child.start()
    start.set()
    picked = [queue.get(timeout=120) for _ in children]
    finish.set()
    for child in children:
        child.join(60)
    everything = [port for ports in picked for port in ports]
    assert len(everything) == 4 * PICKS
    assert len(set(everything)) == len(everything), "a port was handed to two processes"


def test_a_port_is_below_the_ephemeral_range_and_bindable():
    low, high = _port_range()
    port = free_port()
    assert low <= port < high
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # what the server started next does


def test_a_port_reserved_by_a_live_process_is_refused_then_free_when_it_exits():
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import sys
        from lgwan_chat.ports import free_port
        print(free_port(), flush=True)
        sys.stdin.read()  # holds the reservation until the test closes stdin
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdin is not None
    try:
        port = int(child.stdout.readline())
        assert not reserve_port(port)
    finally:
        child.stdin.close()
        child.wait(30)
    assert reserve_port(port)
    assert not reserve_port(port)  # and never twice in one process


def test_a_port_a_server_listens_on_is_never_handed_out():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        assert not reserve_port(server.getsockname()[1])
