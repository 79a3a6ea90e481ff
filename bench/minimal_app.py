"""The baseline the member-write benchmark compares with: the least a Flask + psycopg service can do for a
write. Any POST/PUT under /api/v1 parses the JSON body and inserts it as one row (one statement, one
commit on a per-thread connection), answering 201 with a small JSON body. No auth, validation, rate
limit, sync number or ORM: everything the real app does beyond this is the cost being measured.

    BENCH_MIN_DB=postgresql://... gunicorn bench.minimal_app:app
"""

from __future__ import annotations

import os
import threading

import psycopg
from flask import Flask, jsonify, request
from psycopg.types.json import Jsonb

TABLE_SQL = """
CREATE TABLE IF NOT EXISTS bench_min_writes (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    path text NOT NULL,
    body jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
)
"""

app = Flask(__name__)
_local = threading.local()


def _conn() -> psycopg.Connection:
    conn = getattr(_local, "conn", None)
    if conn is None or conn.closed:
        conn = _local.conn = psycopg.connect(os.environ["BENCH_MIN_DB"])
    return conn


@app.get("/ready")
def ready():
    return jsonify(ok=True)


@app.route("/api/v1/<path:rest>", methods=["POST", "PUT"])
def write(rest: str):
    body = request.get_json()
    conn = _conn()
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO bench_min_writes (path, body) VALUES (%s, %s) RETURNING id, created_at",
            (rest, Jsonb(body)),
        ).fetchone()
    assert row is not None
    return jsonify(id=str(row[0]), created_at=row[1].isoformat()), 201
