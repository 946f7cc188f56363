"""Matrix: the person names their homeserver (or server name: `/.well-known/matrix/client` says
where its API is) and signs in with user and password (password login asking for a refresh
token, as a device of its own) or gives an access token. The rooms to post to are the joined
rooms where the user's power level allows `m.room.message`; a `room` input (id or alias) is
joined first and becomes the only target. Disconnecting logs the device out.

The password is kept only when the homeserver gives an expiring token without a refresh token,
the one case where signing in again is the only way to keep posting."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar
from urllib.parse import quote

from authlib.common.security import generate_token

from postpilot.connect.base import (
    ConnectContext,
    ConnectRefused,
    Identity,
    Input,
    Method,
    Target,
)
from postpilot.connect.platforms._calls import call, json_object, server_url

CLIENT = "/_matrix/client/v3"
HOMESERVER = "inputs.homeserver"
ROOM = "inputs.room"
TOKEN_FIELD = "credentials.access_token"
MAX_ROOMS = 50  # joined rooms examined for the choice


def _room_path(room: str) -> str:
    return quote(room, safe="")


def _errcode(body: Mapping[str, Any], status: int) -> str:
    code = body.get("errcode") or f"HTTP {status}"
    return f"{code}: {body.get('error')}" if body.get("error") else str(code)


class MatrixConnector:
    platform: ClassVar[str] = "matrix"
    methods: ClassVar[tuple[Method, ...]] = (Method.DIRECT,)
    start_inputs: ClassVar[tuple[Input, ...]] = ()
    direct_inputs: ClassVar[tuple[Input, ...]] = (
        Input("homeserver", "Your homeserver or server name, e.g. matrix.org."),
        Input("user", "Your user name or id (@alice:matrix.org), with password.", required=False),
        Input("password", "Your password (or give an access token).", secret=True, required=False),
        Input(
            "access_token",
            "An access token, instead of user and password.",
            secret=True,
            required=False,
        ),
        Input("room", "A room to join and post to (!id or #alias); else pick one.", required=False),
    )
    needs_app: ClassVar[bool] = False
    scopes: ClassVar[tuple[str, ...]] = ()

    async def sign_in(self, ctx: ConnectContext, inputs: Mapping[str, str]) -> list[Target]:
        user = (inputs.get("user") or "").strip()
        password = inputs.get("password") or ""
        given_token = (inputs.get("access_token") or "").strip()
        if not given_token and not (user and password):
            field = "inputs.password" if user else "inputs.user"
            raise ConnectRefused("Give user and password, or an access token", field)
        base = await self._homeserver(ctx, inputs.get("homeserver"))
        credentials: dict[str, Any]
        if given_token:
            credentials = {"access_token": given_token}
            me = await self._whoami(ctx, base, given_token, "inputs.access_token")
            if me.get("device_id"):
                credentials["device_id"] = str(me["device_id"])
            user_id, expires = str(me["user_id"]), None
        else:
            login = await self._login(ctx, base, user, password)
            user_id = str(login["user_id"])
            credentials = {
                "access_token": str(login["access_token"]),
                "device_id": str(login.get("device_id") or ""),
            }
            if login.get("refresh_token"):
                credentials["refresh_token"] = str(login["refresh_token"])
            lifetime = login.get("expires_in_ms")
            expires = (
                ctx.now() + timedelta(milliseconds=float(lifetime))
                if isinstance(lifetime, int | float) and lifetime > 0
                else None
            )
            if expires is not None and "refresh_token" not in credentials:
                credentials |= {"user": user_id, "password": password}
        token = str(credentials["access_token"])
        if room := (inputs.get("room") or "").strip():
            rooms = [await self._join(ctx, base, token, room)]
        else:
            rooms = await self._joined(ctx, base, token)
        targets = []
        for room_id in rooms[:MAX_ROOMS]:
            if not await self._may_post(ctx, base, token, room_id, user_id):
                if room:
                    raise ConnectRefused(
                        f"{user_id} may not post in {room} (power level too low)", ROOM
                    )
                continue
            name = await self._room_name(ctx, base, token, room_id)
            targets.append(
                Target(
                    platform_id=f"{user_id}/{room_id}",
                    name=f"{name} ({user_id})",
                    handle=user_id,
                    credentials=dict(credentials),
                    options={"room_id": room_id},
                    base_url=base,
                    expires_at=expires,
                )
            )
        if not targets:
            raise ConnectRefused(
                f"{user_id} is in no room it may post to; name a room to join", ROOM
            )
        return targets

    async def verify(self, ctx: ConnectContext, target: Target) -> Identity:
        base = server_url(target.base_url, field="base_url", what="The homeserver")
        token = str(target.credentials.get("access_token") or "")
        me = await self._whoami(ctx, base, token, TOKEN_FIELD)
        user_id = str(me["user_id"])
        room_id = str(target.options.get("room_id") or "")
        if not await self._may_post(ctx, base, token, room_id, user_id):
            raise ConnectRefused(
                f"{user_id} may no longer post in {room_id} (power level too low)",
                "options.room_id",
            )
        return Identity(platform_id=f"{user_id}/{room_id}", handle=user_id)

    async def revoke(self, ctx: ConnectContext, credentials: Mapping[str, Any]) -> None:
        """Log the device out (the service passes the homeserver as `ctx.base_url`)."""
        base = server_url(ctx.base_url, field="base_url", what="The homeserver")
        token = str(credentials.get("access_token") or "")
        response = await call(
            ctx,
            "POST",
            f"{base}{CLIENT}/logout",
            who="The homeserver",
            headers={"Authorization": f"Bearer {token}"},
            json={},
        )
        body = json_object(response)
        if response.status_code != 200 and body.get("errcode") != "M_UNKNOWN_TOKEN":
            raise ConnectRefused(f"The homeserver did not log out ({_errcode(body, 0)})")

    async def _homeserver(self, ctx: ConnectContext, given: str | None) -> str:
        """The client API's base: the server's well-known delegation when it has one."""
        named = server_url(given, field=HOMESERVER, what="The homeserver")
        response = await call(
            ctx,
            "GET",
            f"{named}/.well-known/matrix/client",
            who=f"The homeserver {named}",
            field=HOMESERVER,
        )
        delegated = (json_object(response).get("m.homeserver") or {}).get("base_url")
        base = named
        if response.status_code == 200 and isinstance(delegated, str):
            base = server_url(delegated, field=HOMESERVER, what="The homeserver's base_url")
        versions = await call(
            ctx, "GET", f"{base}/_matrix/client/versions", who=f"{base}", field=HOMESERVER
        )
        if versions.status_code != 200 or not json_object(versions).get("versions"):
            raise ConnectRefused(f"{named} does not answer as a Matrix homeserver", HOMESERVER)
        return base

    async def _login(
        self, ctx: ConnectContext, base: str, user: str, password: str
    ) -> dict[str, Any]:
        response = await call(
            ctx,
            "POST",
            f"{base}{CLIENT}/login",
            who="The homeserver",
            json={
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": user},
                "password": password,
                "device_id": f"POSTPILOT{generate_token(8).upper()}",
                "initial_device_display_name": "postpilot",
                "refresh_token": True,
            },
        )
        body = json_object(response)
        if response.status_code == 200 and body.get("access_token") and body.get("user_id"):
            return body
        reason = _errcode(body, response.status_code)
        if body.get("errcode") == "M_FORBIDDEN":
            raise ConnectRefused(
                f"The homeserver refused the user name or password ({reason})", "inputs.password"
            )
        if body.get("errcode") == "M_USER_DEACTIVATED":
            raise ConnectRefused(f"This Matrix account is deactivated ({reason})", "inputs.user")
        if body.get("errcode") == "M_LIMIT_EXCEEDED":
            raise ConnectRefused(f"Too many sign-ins for now ({reason}); try later", "inputs.user")
        raise ConnectRefused(f"The homeserver refused the password login ({reason})", HOMESERVER)

    async def _get(
        self, ctx: ConnectContext, base: str, path: str, token: str, field: str
    ) -> tuple[int, dict[str, Any]]:
        response = await call(
            ctx,
            "GET",
            f"{base}{CLIENT}{path}",
            who="The homeserver",
            field=field,
            headers={"Authorization": f"Bearer {token}"},
        )
        body = json_object(response)
        if response.status_code == 401:
            raise ConnectRefused(
                f"The homeserver does not accept the access token ({_errcode(body, 401)}); "
                "sign in again",
                field,
            )
        return response.status_code, body

    async def _whoami(
        self, ctx: ConnectContext, base: str, token: str, field: str
    ) -> dict[str, Any]:
        status, body = await self._get(ctx, base, "/account/whoami", token, field)
        if status != 200 or not body.get("user_id"):
            raise ConnectRefused(
                f"The homeserver would not say who this is ({_errcode(body, status)})", field
            )
        return body

    async def _joined(self, ctx: ConnectContext, base: str, token: str) -> list[str]:
        status, body = await self._get(ctx, base, "/joined_rooms", token, TOKEN_FIELD)
        if status != 200:
            raise ConnectRefused(f"The homeserver would not list the rooms ({status})", ROOM)
        return [str(r) for r in body.get("joined_rooms") or [] if isinstance(r, str)]

    async def _join(self, ctx: ConnectContext, base: str, token: str, room: str) -> str:
        if not room.startswith(("!", "#")) or ":" not in room:
            raise ConnectRefused(
                "Name the room by its id (!abc:server) or alias (#name:server)", ROOM
            )
        response = await call(
            ctx,
            "POST",
            f"{base}{CLIENT}/join/{_room_path(room)}",
            who="The homeserver",
            field=ROOM,
            headers={"Authorization": f"Bearer {token}"},
            json={},
        )
        body = json_object(response)
        if response.status_code == 200 and body.get("room_id"):
            return str(body["room_id"])
        raise ConnectRefused(
            f"Could not join {room} ({_errcode(body, response.status_code)}): check the name, "
            "or ask for an invitation",
            ROOM,
        )

    async def _may_post(
        self, ctx: ConnectContext, base: str, token: str, room_id: str, user_id: str
    ) -> bool:
        """Whether the user's power level reaches what `m.room.message` needs."""
        path = f"/rooms/{_room_path(room_id)}/state/m.room.power_levels/"
        status, levels = await self._get(ctx, base, path, token, "options.room_id")
        if status == 404:
            return True  # no power levels: everyone is at 0 and so is sending
        if status != 200:
            return False  # not in the room (M_FORBIDDEN) or cannot see it
        users, events = levels.get("users"), levels.get("events")
        users = users if isinstance(users, dict) else {}
        events = events if isinstance(events, dict) else {}
        mine = _level(users.get(user_id), _level(levels.get("users_default"), 0))
        needed = _level(events.get("m.room.message"), _level(levels.get("events_default"), 0))
        return mine >= needed

    async def _room_name(self, ctx: ConnectContext, base: str, token: str, room_id: str) -> str:
        path = f"/rooms/{_room_path(room_id)}/state/m.room.name/"
        status, body = await self._get(ctx, base, path, token, "options.room_id")
        return str(body.get("name") or room_id) if status == 200 else room_id


def _level(value: object, default: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        return default
    try:
        return int(value)
    except ValueError:
        return default


CONNECTOR = MatrixConnector()
