"""The GeoIP lookup of Vector's `geoip` enrichment table, in Python, over the same mmdb.

Vector's table flattens a City record into these fields (src/enrichment_tables/geoip.rs):
city_name, continent_code, country_code, country_name, region_code, region_name (the *last*
subdivision), metro_code, latitude, longitude, postal_code, timezone, network. This shim
returns exactly that shape, so that vector/geoip.vrl maps the same input here and in Vector.
It is the only mapping allowed outside VRL.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import maxminddb

VECTOR_FIELDS = ("city_name", "continent_code", "country_code", "country_name", "region_code", "region_name",
                 "metro_code", "latitude", "longitude", "postal_code", "timezone", "network")


class GeoIpError(Exception):
    """The database cannot be opened or is not a City database."""


class GeoIpTable:
    def __init__(self, path: Path, locale: str = "en"):
        try:
            self._reader = maxminddb.open_database(str(path))
        except (OSError, ValueError, maxminddb.InvalidDatabaseError) as error:
            raise GeoIpError(f"{path}: cannot open the GeoIP database ({error})") from None
        kind = self._reader.metadata().database_type
        if "City" not in kind:
            raise GeoIpError(f"{path}: a {kind} database; Vector's geoip table and this lookup need a City database")
        self.locale = locale

    def lookup(self, ip: str) -> dict[str, Any] | None:
        """Vector's row for `ip`, or None where Vector finds no row (private, unknown, invalid)."""
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return None
        record, prefix = self._reader.get_with_prefix_len(address)
        if not isinstance(record, dict):
            return None
        city = record.get("city") or {}
        continent = record.get("continent") or {}
        country = record.get("country") or {}
        location = record.get("location") or {}
        subdivisions = record.get("subdivisions") or [{}]
        last_subdivision = subdivisions[-1]
        network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
        return {
            "city_name": (city.get("names") or {}).get(self.locale),
            "continent_code": continent.get("code"),
            "country_code": country.get("iso_code"),
            "country_name": (country.get("names") or {}).get(self.locale),
            "region_code": last_subdivision.get("iso_code"),
            "region_name": (last_subdivision.get("names") or {}).get(self.locale),
            "metro_code": location.get("metro_code"),
            "latitude": location.get("latitude"),
            "longitude": location.get("longitude"),
            "postal_code": (record.get("postal") or {}).get("code"),
            "timezone": location.get("time_zone"),
            "network": str(network),
        }

    def close(self) -> None:
        self._reader.close()
