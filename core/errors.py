"""The one error type the studio raises for bad input; every reader and stage subclasses it."""


class InputError(ValueError):
    """Input the studio cannot work with, explained for the person who gave it (naming the file if any)."""
