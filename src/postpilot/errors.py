"""The root of the errors postpilot raises on purpose.

Every exception class in postpilot derives from `PostpilotError`, so a caller can handle what
the code expects to go wrong in one place and still see any other exception for what it is: a
bug. Each class lives beside the code that raises it; its message says what happened in words a
person can act on, and its docstring is the message when none is given.

* PostpilotError
  + InvalidValue - a value from a person or a client that cannot be used (also a ValueError,
  |                so validators and parsers report it as one)
  | - InvalidTimeZone, OutOfRange, LocalTimeError   (core.timezones)
  | - InvalidDuration                                (core.durations)
  | - InvalidChange                                  (scheduler.control)
  | - UnusableUrl                                    (publishers.urls)
  | - BadJson                                        (api.text)
  | - InvalidSlots, QueueTooLong                     (core.queue_slots)
  | - InvalidRule                                    (core.recurrence)
  - SettingsError                                    (settings)
  - MissingSecretKey                                 (runtime)
  - CredentialsError                                 (crypto)
  - SchemaOutOfDate                                  (store.schema)
  - ScratchUnavailable                               (store.scratch)
  - SqliteFileError                                  (store.sqlite_files)
  - BadPoolerOption                                  (store.database)
  + KeyRefused                                       (store.api_keys)
  | - KeyNotFound, KeyRevoked, LastActiveKey
  + KeyConflict                                      (store.idempotency)
  | - KeyReused, KeyInProgress
  - NotEditable                                      (store.posts)
  - QueueRefusal                                     (store.queues)
  + PeopleRefused                                    (store.users)
  | - InvalidEmail, EmailTaken, NotAMember, AlreadyMember, LastOwner
  - Refused                                          (web.auth)
  - Refusal                                          (web.accounts_page)
  - CsvRefused                                       (bulk.columns)
  - ApiError                                         (api.errors)
  - BodyTooLarge                                     (api.guard)
  - MediaError                                       (publishers.media)
  - NotAnImage, TooManyPixels, CannotNormalise       (media.images)
  - MediaRefused                                     (media.library)
  - NotPublicAddress (also an httpx.ConnectError)    (publishers.transport)
  - Stop                                             (publishers.flow)
  - OutcomesNotWritten                               (scheduler.passes)
  - Unavailable                                      (cache.link)
  - SharedCacheUnreachable                           (cache.clear)
  - Retryable                                        (monitor.webhooks)
  - BackupError                                      (tools.backup)
  - CompareError                                     (tools.compare)
  - NothingDue                                       (tools.workload)
  - ConnectRefused, AppNotConfigured                 (connect.base)
  + ConnectError                                     (connect.outcomes)
  | - UnsupportedPlatform, InvalidInput, InvalidState, FlowNotFound, NotChoosing,
  |   PlatformUnreachable
  - DemoConnectFailed                                (tools.demo)

Classes named with a leading underscore are signals caught inside their own module.
"""

from __future__ import annotations


class PostpilotError(Exception):
    """A failure postpilot foresaw; the message says what happened."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or " ".join((self.__doc__ or "").split()))


class InvalidValue(PostpilotError, ValueError):
    """A value that cannot be used; the message says what to give instead."""
