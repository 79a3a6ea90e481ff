def test_healthz(api):
    r = api.get("/healthz")
    assert r.status_code == 200
    assert r.get_json() == {"status": "ok"}


def test_readyz(api):
    # No worker or beat in this process: the servers are fine, readiness says what is missing.
    r = api.get("/readyz")
    assert r.status_code == 503, r.get_json()
    checks = r.get_json()["checks"]
    assert checks == {"postgresql": "ok", "redis": "ok", "worker": "missing", "beat": "missing"}


def test_register_and_me(register):
    member = register()
    r = member.get("/me")
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["timezone"] == "America/New_York"
