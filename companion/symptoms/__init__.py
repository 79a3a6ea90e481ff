"""Symptom reports (API.md "Tracking", issue 19): symptoms a member reports at any time, with or without a
plan in force, which feed the same safety rules as side effects reported on a dose check-in."""
