"""Which units and regions a role may see, comment on, and where a user starts.

| role | sees |
|---|---|
| unit | its own unit (and, inside that page, its region and the nation for comparison) |
| region | every unit whose region is theirs, and the region's own results |
| national | every unit and region |
| admin | no unit data (users and the access log only), unless also given a data role |

Patient-level data (record ids) follows the same rule: whoever may see a unit's page.
"""

from __future__ import annotations

from typing import Callable

from reports.portal.identity import Identity

RegionOf = Callable[[str, str], "str | None"]


def may_see_unit(who: Identity, level: str, code: str, region_of: RegionOf) -> bool:
    if who.role == "unit":
        return who.unit == f"{level}:{code}"
    if who.role == "region":
        return who.region is not None and region_of(level, code) == who.region
    return who.role == "national"


def may_see_region(who: Identity, region: str) -> bool:
    if who.role == "region":
        return who.region == region
    return who.role == "national"


def may_comment(who: Identity, unit_key: str, region_of: RegionOf) -> bool:
    """Unit users on their unit; region users on their region and its units."""
    level, _, code = unit_key.partition(":")
    if who.role == "unit":
        return who.unit == unit_key
    if who.role == "region":
        return (level == "region" and code == who.region) or (
            level != "region" and region_of(level, code) == who.region)
    return False


def may_read_comments(who: Identity, unit_key: str, region_of: RegionOf) -> bool:
    """The unit, its region and national users."""
    level, _, code = unit_key.partition(":")
    if level == "region":
        return may_see_region(who, code)
    return may_see_unit(who, level, code, region_of)


def start_page(who: Identity) -> str:
    if who.role == "unit" and who.unit:
        level, _, code = who.unit.partition(":")
        return f"/units/{level}/{code}"
    if who.role == "region" and who.region:
        return f"/regions/{who.region}"
    if who.role == "national":
        return "/national"
    return "/admin"
