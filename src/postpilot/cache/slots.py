"""Per-account send slots shared by every worker process, so an account's cap (how many sends
its platform tolerates at once) holds across processes and machines, not only within a pass.

A pass asks for a slot before it starts a delivery and gives it back once the delivery is
decided. Asks and returns go together, in one call per batch (`AccountSlots.exchange`):

- `RedisAccountSlots` (REDIS_URL set): one sorted set per account under `<prefix>inflight:<id>`,
  its holders scored by when they expire; one Lua script drops expired holders, removes the
  returned ones, renews the ones still held and admits each ask while the account is below its
  cap, for every account of the batch in one round trip. A holder lives a lease's length and
  the pass renews what it holds every third of that (`renew_seconds`; the renewal goes with an
  exchange), so a send of any length keeps its slot, and the slots of a killed process or of a
  cancelled pass come back about when their deliveries may be taken over, not minutes later.
  A slot is taken on the machine first (below), so when Redis becomes unreachable the
  machine's sends already in flight still count, and its cap holds from the first moment (the
  rest of the cache's rule: warn once, go on locally).
- `MachineAccountSlots` (no Redis): one lock file per slot of an account, taken with flock, in
  a directory every worker of the database on this machine shares. The kernel drops a dead
  process's locks, so nothing waits for an expiry. Machines do not see each other's files.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from postpilot.cache.link import RedisLink, Unavailable

log = logging.getLogger(__name__)

# The keys' part after the prefix: `<prefix>inflight:<account id>`. Not a cache: what is in
# flight now, so `cache clear` leaves these.
SLOTS_KEY = "inflight"


@dataclass(frozen=True, slots=True)
class Slot:
    """One send to `account`, by `holder` (unique: the pass and the delivery), under `cap`."""

    account: str
    holder: str
    cap: int


class AccountSlots(Protocol):
    @property
    def renew_seconds(self) -> float | None:
        """How often a process holding slots must exchange (with nothing, if need be) to keep
        them; None when they are held for as long as the process lives."""
        ...

    async def exchange(
        self, returned: Sequence[Slot], asked: Sequence[Slot], renewed: Sequence[Slot] = ()
    ) -> list[bool]:
        """Give back `returned`, keep `renewed` (held) for another lifetime, then take what may
        be taken of `asked`: one flag per ask."""
        ...

    def close(self) -> None:
        """Drop whatever this process still holds."""
        ...


# Drops the returned holders, renews the kept ones, then drops an account's expired holders and
# admits while it is below its cap; the server's clock, so machines' clocks need not agree. A set
# lives as long as its longest-lived holder (processes may run with other lease lengths).
# KEYS: the returned slots' accounts, the renewed ones', then the asked ones'. ARGV: holder ttl
# ms, number returned, their holders, number renewed, their holders, then holder and cap per ask.
_EXCHANGE = """
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local ttl = tonumber(ARGV[1])
local function live_as_its_last_holder(key)
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if last[2] then
    redis.call('PEXPIREAT', key, math.floor(tonumber(last[2])))
  end
end
local returned = tonumber(ARGV[2])
for i = 1, returned do
  redis.call('ZREM', KEYS[i], ARGV[2 + i])
end
local renewed = tonumber(ARGV[3 + returned])
for i = 1, renewed do
  local key = KEYS[returned + i]
  if redis.call('ZADD', key, 'XX', 'CH', now + ttl, ARGV[3 + returned + i]) == 1 then
    live_as_its_last_holder(key)
  end
end
local granted = {}
local arg = 4 + returned + renewed
for i = returned + renewed + 1, #KEYS do
  local key = KEYS[i]
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if redis.call('ZCARD', key) < tonumber(ARGV[arg + 1]) then
    redis.call('ZADD', key, now + ttl, ARGV[arg])
    live_as_its_last_holder(key)
    granted[#granted + 1] = 1
  else
    granted[#granted + 1] = 0
  end
  arg = arg + 2
end
return granted
"""


class RedisAccountSlots:
    """Slots held in Redis, each taken first in `machine` (when given), which alone answers
    while Redis is unreachable (without it: every ask, the pass's own cap still holds)."""

    def __init__(
        self,
        link: RedisLink,
        *,
        holder_seconds: float,
        machine: AccountSlots | None = None,
    ) -> None:
        self.link = link
        self.machine = machine
        self._ttl_ms = max(1, int(holder_seconds * 1000))
        self._script = link.client.register_script(_EXCHANGE)

    @property
    def renew_seconds(self) -> float:
        return self._ttl_ms / 3000

    def key(self, account: str) -> str:
        return self.link.key(SLOTS_KEY, account)

    async def exchange(
        self, returned: Sequence[Slot], asked: Sequence[Slot], renewed: Sequence[Slot] = ()
    ) -> list[bool]:
        local = [True] * len(asked)
        if self.machine is not None:
            local = await self.machine.exchange(returned, asked)
        candidates = [slot for slot, free in zip(asked, local, strict=True) if free]
        keys = [self.key(slot.account) for slot in (*returned, *renewed, *candidates)]
        args: list[Any] = [self._ttl_ms, len(returned), *(slot.holder for slot in returned)]
        args += [len(renewed), *(slot.holder for slot in renewed)]
        for slot in candidates:
            args += [slot.holder, slot.cap]
        try:
            shared = await self.link.call(
                lambda client: self._script(keys=keys, args=args, client=client)
            )
        except Unavailable:
            return local
        answers = iter(shared)
        granted = [free and bool(next(answers)) for free in local]
        refused = [
            slot for slot, free, ok in zip(asked, local, granted, strict=True) if free and not ok
        ]
        if refused and self.machine is not None:
            await self.machine.exchange(refused, ())  # taken here, refused by the others
        return granted

    def close(self) -> None:
        # Redis holders of a closing process expire; the machine's locks go now.
        if self.machine is not None:
            self.machine.close()


# Unlocked lock files kept open for their next take, least recently used closed first: more than
# a worker's accounts in flight at once, far below a process's descriptor limit.
IDLE_DESCRIPTORS = 256


@functools.lru_cache(maxsize=4096)
def lock_files(account: str, cap: int) -> tuple[str, ...]:
    """The names of `account`'s lock files under `cap`, one per slot (a fixed length whatever the
    account id holds); remembered, since every take asks."""
    stem = hashlib.sha256(account.encode()).hexdigest()[:32]
    return tuple(f"{stem}.{number}" for number in range(max(1, cap)))


class MachineAccountSlots:
    """Slots as flock'd files in `directory`: `<sha256(account)[:32]>.<n>` for n below the cap.
    A lock is per open file, so two holders in one process exclude each other too: a descriptor
    serves one holder at a time. Between holders a file stays open, unlocked, for the next take
    (up to `idle_limit` of them); the files are never deleted, so every process locks the same."""

    def __init__(self, directory: Path, *, idle_limit: int = IDLE_DESCRIPTORS) -> None:
        self.directory = directory
        self.idle_limit = idle_limit
        self._held: dict[str, str] = {}  # holder -> the name of the file it holds
        self._locked: dict[str, int] = {}  # file name -> its descriptor, locked by a holder
        self._idle: dict[str, int] = {}  # file name -> its unlocked descriptor, oldest use first
        self._made = False
        self._broken = False  # the directory cannot be used: the pass's own cap only

    @property
    def renew_seconds(self) -> None:
        return None  # the kernel holds a lock until the process lets go or dies

    async def exchange(
        self, returned: Sequence[Slot], asked: Sequence[Slot], renewed: Sequence[Slot] = ()
    ) -> list[bool]:
        for slot in returned:
            self._drop(slot.holder)
        return [self._take_or_grant(slot) for slot in asked]

    def close(self) -> None:
        for handle in (*self._locked.values(), *self._idle.values()):
            os.close(handle)  # closing the last descriptor drops its lock
        self._held.clear()
        self._locked.clear()
        self._idle.clear()

    def _drop(self, holder: str) -> None:
        name = self._held.pop(holder, None)
        if name is None:
            return
        handle = self._locked.pop(name)
        try:
            fcntl.flock(handle, fcntl.LOCK_UN)
        except OSError:
            os.close(handle)  # which drops the lock all the same
            return
        self._keep_idle(name, handle)

    def _keep_idle(self, name: str, handle: int) -> None:
        self._idle[name] = handle
        while len(self._idle) > self.idle_limit:
            os.close(self._idle.pop(next(iter(self._idle))))

    def _take_or_grant(self, slot: Slot) -> bool:
        if self._broken:
            return True
        try:
            return self._take(slot)
        except OSError as exc:
            self._broken = True
            log.warning(
                "account slots directory unusable: caps hold per process only",
                extra={"directory": str(self.directory), "error": type(exc).__name__},
            )
            return True

    def _take(self, slot: Slot) -> bool:
        if slot.holder in self._held:
            return True
        for name in lock_files(slot.account, slot.cap):
            if name in self._locked:
                continue  # another holder of this process has it
            handle = self._idle.pop(name, None)
            if handle is None:
                handle = self._open(name)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self._keep_idle(name, handle)  # another process holds it
                continue
            except BaseException:
                os.close(handle)
                raise
            self._held[slot.holder] = name
            self._locked[name] = handle
            return True
        return False

    def _open(self, name: str) -> int:
        if not self._made:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._made = True
        return os.open(self.directory / name, os.O_RDWR | os.O_CREAT, 0o600)
