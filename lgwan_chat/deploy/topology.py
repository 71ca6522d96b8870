"""The Synapse processes of a deployment and the loopback ports they listen on.

``single``: the main process, one listener per zone. ``workers`` (Synapse's own scaling,
PostgreSQL + Redis): the main process (replication listener; stream writer of everything but
events), per zone ``N`` tagged client workers, an event persister, a federation sender, a
pusher, a media repository worker with one listener per zone (so the zone module sees every
upload's zone, and the LGWAN gate still sees every LGWAN media request through nginx), and the
background-tasks worker (Synapse's and the suite's periodic jobs).
"""

from __future__ import annotations

import attrs

from .answers import ZONES, Answers

LOOPBACK = "127.0.0.1"


@attrs.frozen
class Listener:
    port: int
    #: ``internet`` / ``lgwan`` for a client listener (the zone module reads the tag), or None.
    zone: str | None
    resources: tuple[str, ...]


@attrs.frozen
class Process:
    name: str  # "main" or the worker_name
    #: What the process is for, in the unit's description and the docs.
    role: str
    listeners: tuple[Listener, ...] = ()
    #: Its HTTP replication listener (main and the stream writers: in ``instance_map``).
    replication_port: int | None = None
    #: Its own loopback Prometheus listener (``type: metrics``), never routed by nginx.
    metrics_port: int | None = None

    @property
    def is_main(self) -> bool:
        return self.name == "main"

    def port(self, zone: str) -> int | None:
        return next((lst.port for lst in self.listeners if lst.zone == zone), None)


@attrs.frozen
class Topology:
    processes: tuple[Process, ...]
    upload_page_port: int

    @property
    def main(self) -> Process:
        return self.processes[0]

    @property
    def workers(self) -> tuple[Process, ...]:
        return self.processes[1:]

    def named(self, name: str) -> Process:
        return next(p for p in self.processes if p.name == name)

    def pool(self, zone: str, pool: str) -> list[str]:
        """host:port of the processes serving ``pool`` (main, client, media) on ``zone``."""
        if not self.workers or pool == "main":
            members = [self.main]
        elif pool == "client":
            members = [p for p in self.processes if p.role == f"client_{zone}"]
        else:
            members = [self.named("media_repository")]
        return [f"{LOOPBACK}:{p.port(zone)}" for p in members]


def _zone_resources(zone: str) -> tuple[str, ...]:
    # Federation reaches the suite over LGWAN only.
    return ("client", "federation") if zone == "lgwan" else ("client",)


def build(answers: Answers) -> Topology:
    ports = iter(range(answers.first_internal_port, answers.first_internal_port + 1000))
    upload_page = next(ports)
    main_listeners = tuple(Listener(next(ports), zone, _zone_resources(zone)) for zone in ZONES)
    if answers.size == "single":
        return Topology((Process("main", "main", main_listeners, metrics_port=next(ports)),), upload_page)
    processes = [Process("main", "main", main_listeners, replication_port=next(ports))]
    for zone in ZONES:
        for n in range(1, answers.workers[zone] + 1):
            processes.append(Process(f"client_{zone}_{n}", f"client_{zone}",
                                     (Listener(next(ports), zone, _zone_resources(zone)),)))
    # A worker without client traffic still gets a loopback /health listener: what a monitor
    # (and the tests) ask to know it is up.
    processes += [
        Process("event_persister", "event_persister", (Listener(next(ports), None, ("health",)),),
                replication_port=next(ports)),
        Process("federation_sender", "federation_sender", (Listener(next(ports), None, ("health",)),)),
        Process("pusher", "pusher", (Listener(next(ports), None, ("health",)),)),
        Process("media_repository", "media_repository",
                tuple(Listener(next(ports), zone, ("media",)) for zone in ZONES)),
        Process("background_worker", "background_worker", (Listener(next(ports), None, ("health",)),)),
    ]
    # Metrics ports last: the other ports stay where earlier deployments put them.
    return Topology(tuple(attrs.evolve(p, metrics_port=next(ports)) for p in processes), upload_page)
