"""The error a body-model backend raises when the user's model files cannot be used."""

from core.errors import InputError


class BodyModelError(InputError):
    """A body model's files are missing, unreadable or not the model they claim to be.

    The message names the file (or folder) and what is wrong with it, e.g. a missing array or one of the
    wrong shape, so that the person who supplied the files can fix them.
    """
