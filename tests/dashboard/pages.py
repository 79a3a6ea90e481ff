"""Driving the dashboard through the Flask test client: sign in, read CSRF tokens, post forms."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

from tests.conftest import PASSWORD

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf(html: str) -> str:
    found = TOKEN.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def sign_in(client: FlaskClient, email: str, password: str = PASSWORD):
    page = client.get("/dashboard/login")
    return client.post(
        "/dashboard/login",
        data={"email": email, "password": password, "csrf_token": csrf(page.get_data(as_text=True))},
    )


def post_form(client: FlaskClient, page_path: str, action: str, **fields: str):
    """Post to `action` with the CSRF token of the page at `page_path`, as the browser would."""
    html = client.get(page_path).get_data(as_text=True)
    return client.post(action, data={"csrf_token": csrf(html), **fields})
