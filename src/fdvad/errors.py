"""Errors a user can cause. The CLI prints them as one line and exits non-zero."""


class FdvadError(Exception):
    """Base class for every error caused by input, configuration or environment, not by a bug."""

    exit_code = 1


class AudioError(FdvadError):
    """The input media cannot be turned into usable audio."""


class MediaNotFoundError(AudioError):
    """The path does not exist or is not a file."""


class NotMediaError(AudioError):
    """The file exists but no decoder understands it (text, truncated garbage, ...)."""


class NoAudioStreamError(AudioError):
    """A media file with no audio track (e.g. a silent video)."""


class EmptyAudioError(AudioError):
    """The audio track decodes to zero samples."""


class InvalidAudioError(AudioError):
    """Decoded samples are unusable (NaN or infinite values, wrong shape, bad sample rate)."""


class ConfigError(FdvadError):
    """A bad option value, config file or recipe."""

    exit_code = 2


class CheckpointError(FdvadError):
    """A model file that cannot be read or does not match the architecture."""


class OutputExistsError(FdvadError):
    """Refusing to overwrite a file the user already has (pass --overwrite to allow it)."""
