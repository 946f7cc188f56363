"""A small client for the sandbox's control API, for tests, the demo and benchmarks."""

from __future__ import annotations

from typing import Any

import httpx


class SandboxClient:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=10)

    def platform_url(self, platform: str) -> str:
        return f"{self.url}/{platform}"

    def media_url(self, name: str = "image.png") -> str:
        return f"{self.url}/_sandbox/media/{name}"

    def records(self, platform: str | None = None) -> list[dict[str, Any]]:
        params = {"platform": platform} if platform else {}
        return list(self._get("/_sandbox/records", params))

    def requests(self, platform: str | None = None) -> list[dict[str, Any]]:
        params = {"platform": platform} if platform else {}
        return list(self._get("/_sandbox/requests", params))

    def waiting(self) -> int:
        """Platform requests that arrived and are held in the configured latency right now."""
        return int(self._get("/_sandbox/waiting", {})["waiting"])

    def reset(self) -> None:
        self._http.post("/_sandbox/reset").raise_for_status()

    def configure(self, **values: Any) -> dict[str, Any]:
        response = self._http.post("/_sandbox/config", json=values)
        response.raise_for_status()
        return dict(response.json())

    def inject(self, kind: str, platform: str | None = None, **fields: Any) -> None:
        response = self._http.post(
            "/_sandbox/faults", json={"kind": kind, "platform": platform, **fields}
        )
        response.raise_for_status()

    def revoke(self, token: str) -> None:
        self._http.post("/_sandbox/tokens/revoke", json={"token": token}).raise_for_status()

    def issue_token(
        self,
        platform: str,
        subject: str = "sandbox-user",
        *,
        expires_in: float | None = None,
        refresh: bool = True,
        refresh_expires_in: float | None = None,
    ) -> dict[str, Any]:
        """Tokens the sandbox tracks (expiry, rotation), as the platform's grant gives them."""
        response = self._http.post(
            "/_sandbox/tokens/issue",
            json={
                "platform": platform,
                "subject": subject,
                "expires_in": expires_in,
                "refresh": refresh,
                "refresh_expires_in": refresh_expires_in,
            },
        )
        response.raise_for_status()
        return dict(response.json())

    def expire_token(self, token: str) -> None:
        self._http.post("/_sandbox/tokens/expire", json={"token": token}).raise_for_status()

    def close(self) -> None:
        self._http.close()

    def _get(self, path: str, params: dict[str, str]) -> Any:
        response = self._http.get(path, params=params)
        response.raise_for_status()
        return response.json()
