def test_healthz(api):
    r = api.get("/healthz")
    assert r.status_code == 200
    assert r.get_json() == {"status": "ok"}


def test_readyz(api):
    r = api.get("/readyz")
    assert r.status_code == 200, r.get_json()


def test_register_and_me(register):
    member = register()
    r = member.get("/me")
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["timezone"] == "America/New_York"
