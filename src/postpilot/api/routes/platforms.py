"""/api/platforms: what an account of each platform holds, from the publishers' declarations."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from postpilot.api.deps import current_workspace
from postpilot.api.schemas import AccountFieldPublic, PlatformPublic
from postpilot.publishers import catalog
from postpilot.publishers.fields import AccountFields, Kind

router = APIRouter(
    prefix="/api/platforms", tags=["platforms"], dependencies=[Depends(current_workspace)]
)


def public(platform: str, declared: AccountFields) -> PlatformPublic:
    def listed(kind: Kind) -> list[AccountFieldPublic]:
        return [
            AccountFieldPublic(
                name=f.name, description=f.description, required=f.required, secret=f.secret
            )
            for f in declared.of(kind)
        ]

    return PlatformPublic(
        platform=platform,
        base_url_required=declared.needs_base_url,
        base_url=declared.base_url,
        credentials=listed(Kind.CREDENTIAL),
        options=listed(Kind.OPTION),
        credential_sets=[list(group) for group in declared.credential_sets],
    )


@router.get("", response_model=list[PlatformPublic])
async def list_platforms() -> list[PlatformPublic]:
    """Each supported platform's credentials and options: names, which are required or secret,
    what each is for, and whether the account needs a `base_url`."""
    return [public(platform, declared) for platform, declared in catalog.declarations().items()]
