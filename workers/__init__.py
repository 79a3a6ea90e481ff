"""The Celery worker and beat. `companion` sends tasks here by name; this package imports `companion`."""
