"""JSON out: numbers stay numbers (Decimal as a JSON number), instants stay ISO 8601."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from flask.json.provider import DefaultJSONProvider


class CompanionJSONProvider(DefaultJSONProvider):
    sort_keys = False

    @staticmethod
    def default(o: Any) -> Any:
        if isinstance(o, Decimal):
            return int(o) if o == o.to_integral_value() and o.as_tuple().exponent >= 0 else float(o)
        if isinstance(o, datetime | date | time):
            return o.isoformat()
        if isinstance(o, uuid.UUID):
            return str(o)
        return DefaultJSONProvider.default(o)

    def response_body(self, obj: Any) -> bytes:
        """The body `response(obj)` answers with, without building the response (the write lane's)."""
        if (self.compact is None and self._app.debug) or self.compact is False:
            text = self.dumps(obj, indent=2)
        else:
            text = self.dumps(obj, separators=(",", ":"))
        return f"{text}\n".encode()
