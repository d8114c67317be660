"""Generated extracts for tests that need more rows than the committed samples."""

from __future__ import annotations

from pathlib import Path

import polars as pl


def write_extract(path: Path, n: int, *, prefix: str = "GEN", version: int = 0) -> Path:
    """Write ``n`` valid canonical rows (persons, companies) as CSV; ``version`` alters phones."""
    rows = []
    for i in range(n):
        company = i % 5 == 0
        rows.append(
            {
                "external_id": f"{prefix}-{i:06d}",
                "status": "active",
                "first_name": None if company else f"Ann{i % 97}",
                "last_name": None if company else f"Smith{i % 89}",
                "company_name": f"Acme {i} B.V." if company else None,
                "email": f"user{i}.{prefix.lower()}@example.com",
                "phone": f"+31 6 {10000000 + i + version}",
                "billing_city": "Amsterdam",
                "billing_postal_code": f"{1000 + i % 9000:04d}AB",
                "billing_country_code": "NL",
            }
        )
    pl.DataFrame(rows, schema={k: pl.String for k in rows[0]}).write_csv(path)
    return path
