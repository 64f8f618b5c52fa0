"""Exceptions a user can cause (bad paths, bad files, bad arguments).

The CLI prints them as one line without a traceback. They subclass the built-in exception
a Python caller would expect (``FileNotFoundError``, ``ValueError``, ...), so library users
can catch either.
"""

from __future__ import annotations


class UserError(Exception):
    """Base class: an error caused by the user's input, reported without a traceback."""


class CheckpointError(UserError, ValueError):
    """A file is not a usable checkpoint (corrupt, truncated, wrong architecture)."""


class WeightsNotFoundError(UserError, FileNotFoundError):
    """A weights file does not exist."""


class InputError(UserError, ValueError):
    """An input (image, video, URL, argument) cannot be used."""


class BackendUnavailableError(UserError, ImportError):
    """A backend, ONNX Runtime provider or device cannot run here (a package or the GPU is
    missing); the message names what to install or which option to use instead."""


class WeightsDownloadError(UserError, OSError):
    """Named weights could not be downloaded (offline, server error, incomplete or wrong file).

    The message says where to download the file by hand and where to put it.
    """


class WeightsVerificationError(CheckpointError):
    """A cached weights file fails its check (SHA-256 record or checkpoint contents)."""
