"""A real PostgreSQL 15 for tests and benchmarks: ``initdb`` + ``postgres`` in a temp dir.

The server listens on a free loopback port (and on a unix socket in its own
directory), with password authentication over TCP, so the URLs the tests use
are the ones an operator writes. PostgreSQL refuses to run as root: when the
tests run as root, ``initdb`` and ``postgres`` run as the ``postgres`` system
user (Debian's package creates it) or else ``nobody``, in a directory created
for them outside pytest's root-only temp tree.

``durable=False`` (the test default) turns fsync off: tests check logic, not
power-loss durability. Benchmarks pass ``durable=True`` so that a commit costs
what it costs in production.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from tests.servers import free_port

PG_ROOT = Path("/usr/lib/postgresql")  # Debian: one <version>/bin per installed server
USER = "logbot"
PASSWORD = "logbot-test-pw"


def find_bin(name: str) -> str:
    """Locate a PostgreSQL server binary (Debian keeps them off PATH)."""
    versions = sorted(PG_ROOT.glob("*/bin"), key=lambda d: d.parent.name.zfill(4), reverse=True)
    for d in versions:
        if (d / name).is_file():
            return str(d / name)
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found: apt-get install -y postgresql (scripts/test does)")
    return found


def _run_as() -> pwd.struct_passwd | None:
    """Return the unprivileged account to run the server as (None: we are not root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("running as root and neither 'postgres' nor 'nobody' exists")


class PostgresServer:
    """One PostgreSQL cluster on 127.0.0.1:``port``; ``url(db)`` names a database in it."""

    def __init__(self, port: int | None = None, *, durable: bool = False) -> None:
        self.port = port or free_port()
        self.durable = durable
        self.account = _run_as()
        self.workdir = Path(tempfile.mkdtemp(prefix="logbot-pg-"))
        self.data = self.workdir / "data"
        self.proc: subprocess.Popen[bytes] | None = None
        if self.account is not None:
            os.chown(self.workdir, self.account.pw_uid, self.account.pw_gid)

    def url(self, database: str = "postgres", *, password: bool = True) -> str:
        """Return ``postgresql://`` for ``database`` (without the password if asked)."""
        secret = f":{PASSWORD}" if password else ""
        return f"postgresql://{USER}{secret}@127.0.0.1:{self.port}/{database}"

    def _popen(self, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            if self.account is None:
                return subprocess.Popen(
                    argv, stdout=out, stderr=subprocess.STDOUT, cwd=self.workdir
                )
            return subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                user=self.account.pw_uid,
                group=self.account.pw_gid,
                extra_groups=[],
                env={"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8"},
            )

    def _own(self, path: Path) -> None:
        if self.account is not None:
            os.chown(path, self.account.pw_uid, self.account.pw_gid)

    def init(self) -> None:
        """Create the cluster (``initdb``) with the test role and its password."""
        pwfile = self.workdir / "pwfile"
        pwfile.write_text(PASSWORD + "\n")
        self._own(pwfile)
        log = self.workdir / "initdb.log"
        argv = [
            find_bin("initdb"), "-D", str(self.data), "-U", USER, f"--pwfile={pwfile}",
            "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8",
            "--locale=C", "--no-sync",
        ]  # fmt: skip
        proc = self._popen(argv, log)
        if proc.wait(120) != 0:
            raise RuntimeError(f"initdb failed: {log.read_text(errors='replace')[-2000:]}")
        pwfile.unlink()

    def start(self, timeout: float = 30.0) -> None:
        """Start ``postgres`` and wait (bounded) until it accepts connections."""
        if self.proc is not None and self.proc.poll() is None:
            return
        if not (self.data / "PG_VERSION").exists():
            self.init()
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.workdir),
            "max_connections": "200",
            "shared_buffers": "128MB",
            "fsync": "on" if self.durable else "off",
            "synchronous_commit": "on" if self.durable else "off",
            "full_page_writes": "on" if self.durable else "off",
            "log_min_messages": "warning",
        }
        argv = [find_bin("postgres"), "-D", str(self.data)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        self.proc = self._popen(argv, self.workdir / "server.log")
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                psycopg.connect(self.url(), connect_timeout=2).close()
            except psycopg.OperationalError as exc:
                last = exc
                time.sleep(0.05)
            else:
                return
        self.stop()
        raise TimeoutError(
            f"postgres did not accept connections: {last}; {self.log_text()[-2000:]}"
        )

    def stop(self) -> None:
        """Stop the server (fast shutdown: SIGINT), killing it if it lingers."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def destroy(self) -> None:
        """Stop the server and delete its directory."""
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def log_text(self) -> str:
        path = self.workdir / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def execute(self, sql: str) -> None:
        """Run one statement outside a transaction (CREATE/DROP DATABASE) as the admin role."""
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(sql.encode())

    def create_database(self, name: str, *, template: str | None = None) -> str:
        """Create database ``name`` (a copy of ``template`` if given); return its URL."""
        copy = f" TEMPLATE {template} STRATEGY FILE_COPY" if template else ""
        self.execute(f'CREATE DATABASE "{name}"{copy}')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name``, closing whatever is still connected to it."""
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
