"""The one error type bngraph raises for bad input: the CLI prints it as one line, exit 2."""


class BngraphError(ValueError):
    """Bad input or usage. Its message is one clear line for a person."""
