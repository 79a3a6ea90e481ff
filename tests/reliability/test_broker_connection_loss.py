"""A worker survives losing Redis while it holds an unacknowledged message and a BRPOP is in flight.

Celery 5.7's consumer handles a lost broker by `collect()`ing its connection and then `close()`ing it
(`Consumer.on_connection_error_after_connected`). With kombu's own Redis channel the close then raised
AttributeError ('NoneType' object has no attribute 'hostname') and the worker exited: one CI run in five
lost its worker in tests/nudges/test_worker_reliability.py. `companion.broker.RedisChannel` turns it
into the connection error it is, which the consumer retries.
"""

from __future__ import annotations

import contextlib
import socket
import time
from pathlib import Path

import pytest
from kombu import Connection, Consumer, Exchange, Queue
from kombu.common import ignore_errors

from companion.broker import RedisChannel
from companion.runtime import celery_broker_url
from tests.nudges.processes import PrivateRedis


@pytest.fixture
def private_redis(tmp_path: Path):
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


def test_closing_a_collected_connection_after_redis_went_away_is_a_connection_error(private_redis):
    connection = Connection(celery_broker_url(private_redis.url), transport_options={"socket_timeout": 2})
    queue = Queue("loss", Exchange("loss", type="direct"), routing_key="loss")
    received = []
    with connection.Producer() as producer:
        producer.publish({"n": 1}, exchange=queue.exchange, routing_key="loss", declare=[queue])
    connection.Consumer(queue, callbacks=[lambda body, message: received.append(message)]).consume()
    # A second channel listening on a fanout exchange, as the worker's remote-control mailbox does.
    mailbox = Queue("loss.mailbox", Exchange("loss.mailbox", type="fanout"), auto_delete=True)
    Consumer(connection.channel(), [mailbox], callbacks=[lambda body, message: None], no_ack=True).consume()
    deadline = time.monotonic() + 5
    while not received and time.monotonic() < deadline:
        with contextlib.suppress(socket.timeout):
            connection.drain_events(timeout=1)
    assert [m.payload for m in received] == [{"n": 1}]  # delivered, not acknowledged
    with contextlib.suppress(socket.timeout):
        connection.drain_events(timeout=0.3)  # leaves a BRPOP in flight, as the worker's loop does
    assert isinstance(connection.default_channel, RedisChannel)

    private_redis.stop()

    # What the consumer does on a connection error (celery/worker/consumer/consumer.py).
    with contextlib.suppress(Exception):  # the consumer ignores every error of collect()
        connection.collect(socket_timeout=1)
    ignore_errors(connection, connection.close)  # raised AttributeError with kombu's own channel
    assert connection.connected is False
