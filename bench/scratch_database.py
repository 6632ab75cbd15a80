"""A fresh, throwaway database for one bench run."""

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _postgres_admin(url: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(statement)


@contextmanager
def scratch_database(name: str) -> Iterator[Path]:
    """Point DATABASE_URL at a new database and drop it afterwards: `name` on the PostgreSQL
    server DATABASE_URL names, or else a SQLite file. Yields a temporary folder for the run."""
    url = os.environ.get("DATABASE_URL", "")
    with tempfile.TemporaryDirectory() as tmp:
        if url.startswith("postgres"):
            server, _, _ = url.rpartition("/")
            _postgres_admin(url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            _postgres_admin(url, f"CREATE DATABASE {name}")
            os.environ["DATABASE_URL"] = f"{server}/{name}"
        else:
            os.environ["DATABASE_URL"] = f"sqlite:///{tmp}/bench.sqlite3"
        try:
            yield Path(tmp)
        finally:
            if url.startswith("postgres"):
                _postgres_admin(url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
