"""The coach dashboard: server-rendered pages over the coach services (API.md "Coach", issue 6)."""
