"""Domain errors. Adapters turn SDK failures into these at their boundary; ``http_errors``
maps each to its status code and JSON body, once, for every handler."""

from __future__ import annotations


class SmartStreamError(Exception):
    """Base of every error the app raises on purpose. ``code`` is the machine word."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequestError(SmartStreamError):
    code = "bad_request"


class InvalidFilenameError(BadRequestError):
    code = "invalid_filename"


class InvalidQueryError(BadRequestError):
    code = "invalid_query"


class UnauthorizedError(SmartStreamError):
    code = "unauthorized"


class ForbiddenError(SmartStreamError):
    code = "forbidden"


class NotFoundError(SmartStreamError):
    code = "not_found"


class AudioNotFoundError(NotFoundError):
    code = "audio_not_found"

    def __init__(self, filename: str) -> None:
        super().__init__(f"No audio file named {filename!r}.")
        self.filename = filename


class ConflictError(SmartStreamError):
    code = "conflict"


class AudioExistsError(ConflictError):
    code = "audio_exists"

    def __init__(self, filename: str) -> None:
        super().__init__(
            f"An audio file named {filename!r} already exists; add ?overwrite=true to replace it."
        )
        self.filename = filename


class PayloadTooLargeError(SmartStreamError):
    code = "too_large"


class UnsupportedMediaTypeError(SmartStreamError):
    code = "unsupported_media_type"


class NotMp3Error(UnsupportedMediaTypeError):
    code = "not_mp3"


class RangeNotSatisfiableError(SmartStreamError):
    code = "range_not_satisfiable"

    def __init__(self, size: int) -> None:
        super().__init__(f"The requested range starts past the end of the {size}-byte file.")
        self.size = size


class PreconditionFailedError(SmartStreamError):
    code = "precondition_failed"


class UnprocessableError(SmartStreamError):
    code = "invalid_value"


class ObjectChangedError(SmartStreamError):
    """The stored object is no longer the version the caller expected (ETag moved)."""

    code = "object_changed"


class ServiceUnavailableError(SmartStreamError):
    code = "service_unavailable"


class BadGatewayError(SmartStreamError):
    code = "bad_gateway"


# Queues --------------------------------------------------------------------------------------


class QueueNotFoundError(NotFoundError):
    code = "queue_not_found"

    def __init__(self, name: str) -> None:
        super().__init__(f"No queue named {name!r}.")


class QueueEmptyError(NotFoundError):
    code = "queue_empty"


class FilesNotFoundError(NotFoundError):
    code = "audio_not_found"

    def __init__(self, missing: list[str]) -> None:
        super().__init__(
            "These files are not in the library: " + ", ".join(repr(m) for m in missing) + "."
        )
        self.missing = missing


class InvalidQueueNameError(BadRequestError):
    code = "invalid_queue_name"


class QueueHasCardError(ConflictError):
    code = "queue_has_card"


class AudioInUseError(ConflictError):
    code = "audio_in_use"

    def __init__(self, filename: str, queues: list[str]) -> None:
        super().__init__(
            f"{filename!r} is in the queue(s) {', '.join(queues)}; "
            "remove it from them first, or add ?force=true to delete it and leave those queues."
        )
        self.queues = queues


# Yoto ----------------------------------------------------------------------------------------


class YotoSignInNeededError(UnauthorizedError):
    code = "yoto_sign_in_needed"

    def __init__(self, why: str = "") -> None:
        super().__init__(
            (why + " " if why else "")
            + "Sign in to Yoto: the page's Sign in with Yoto (POST /api/yoto/authorize)."
        )


class YotoFailedError(BadGatewayError):
    code = "yoto_failed"


class NoPublicUrlError(ConflictError):
    code = "no_public_url"


class YotoNotConfiguredError(ConflictError):
    code = "yoto_not_configured"


class NoCardError(NotFoundError):
    code = "no_card"


# Any audio in ---------------------------------------------------------------------------------


class UnsupportedAudioError(UnsupportedMediaTypeError):
    """Not audio in a format Smart Stream takes (or no audio at all); the message names the
    accepted formats."""

    code = "unsupported_audio"


class ConversionError(SmartStreamError):
    """A conversion to the house MP3 that cannot be done. ``reason`` says why in words (a
    record's ``status_reason``); ``kind`` is the machine word: "corrupt", "no_audio",
    "unsupported_codec", "unsupported_format", "too_long" or "failed"."""

    code = "conversion_failed"

    def __init__(self, reason: str, *, kind: str = "failed") -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind
