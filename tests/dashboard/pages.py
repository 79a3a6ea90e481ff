"""Driving the dashboard through the Flask test client: sign in, read CSRF tokens, post forms."""

from __future__ import annotations

import re
from html.parser import HTMLParser

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


class _FormReader(HTMLParser):
    """The fields a browser would send from the form posting to `action`: inputs (checkboxes only when
    checked), selects (the selected option) and textareas, by name."""

    def __init__(self, action: str) -> None:
        super().__init__()
        self.action, self.inside, self.fields = action, False, {}
        self.select: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.inside = a.get("action") == self.action
        elif not self.inside:
            return
        elif tag == "input" and a.get("name"):
            if a.get("type") == "checkbox" and "checked" not in a:
                return
            self.fields[a["name"]] = a.get("value") or ""
        elif tag == "select":
            self.select = a.get("name")
            self.fields.setdefault(self.select, "")
        elif tag == "option" and self.select and "selected" in a:
            self.fields[self.select] = a.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self.select = None


def form_fields(html: str, action: str) -> dict[str, str]:
    reader = _FormReader(action)
    reader.feed(html)
    assert reader.fields, f"no form posting to {action}"
    return reader.fields


def submit(client: FlaskClient, page_path: str, action: str, **changes: str):
    """Fill in the form posting to `action` on the page as a coach would (the rest as shown) and send it."""
    fields = form_fields(client.get(page_path).get_data(as_text=True), action)
    fields.update(changes)
    return client.post(action, data=fields)
