"""A Synapse deployment with workers (main process + generic workers), for tests.

Workers need PostgreSQL and Redis (both run on this machine). Each deployment
has its own server name, so deployments sharing the Redis server do not hear
each other's replication traffic.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml
from harness import RunningHomeserver, client_listener

from lgwan_chat.homeserver import child_env, free_port
from lgwan_chat.templates import render


def main_with_workers(data_dir: Path, modules: list | None = None) -> RunningHomeserver:
    internet, lgwan, replication = free_port(), free_port(), free_port()
    extra = {
        "listeners": [client_listener(internet, "internet"), client_listener(lgwan, "lgwan"),
                      {"port": replication, "bind_addresses": ["127.0.0.1"], "type": "http",
                       "resources": [{"names": ["replication"]}]}],
        "instance_map": {"main": {"host": "127.0.0.1", "port": replication}},
        "redis": {"enabled": True, "host": "127.0.0.1", "port": 6379},
    }
    return RunningHomeserver(data_dir, "postgres", modules=modules, extra=extra,
                             spec={"server_name": f"workers-{secrets.token_hex(3)}.test",
                                   "internet_port": internet, "lgwan_port": lgwan})


class Worker:
    """A generic worker of ``main`` serving the client API on one zone-tagged listener."""

    def __init__(self, main: RunningHomeserver, name: str, zone: str):
        self.main = main
        self.name = name
        self.zone = zone
        self.port = free_port()
        data = Path(main.hs.data_dir)
        self.log_path = data / "logs" / f"{name}.log"
        render("log.template.yaml", data / f"{name}.log.config",
               {"log_file": str(self.log_path), "access_log_level": "INFO"})
        self.config = data / f"{name}.yaml"
        self.config.write_text(yaml.safe_dump({
            "worker_app": "synapse.app.generic_worker",
            "worker_name": name,
            "worker_listeners": [client_listener(self.port, zone)],
            "worker_log_config": str(data / f"{name}.log.config"),
        }), encoding="utf-8")
        self.process: subprocess.Popen | None = None

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        args = [sys.executable, "-m", "synapse.app.generic_worker"]
        for path in [*self.main.hs.config_files, self.config]:
            args += ["-c", str(path)]
        with open(self.log_path.with_suffix(".console.log"), "ab") as out:
            self.process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            env=child_env(), start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited: {self.log_path}")
            try:
                with urllib.request.urlopen(self.url() + "/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker {self.name} not healthy after {timeout}s")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class WorkerFront:
    """``via=`` for ``RunningHomeserver.login``: each zone's traffic goes to that zone's worker."""

    def __init__(self, workers: list[Worker]):
        self._by_zone = {w.zone: w for w in workers}

    def url(self, zone: str) -> str:
        return self._by_zone[zone].url()
