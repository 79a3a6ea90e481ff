"""The coach's view of members (API.md "Coach"): caseload, profile and summary, timeline, chart series."""
