"""The one error type bngraph raises for bad input: the CLI prints it as one line, exit 2."""


class BngraphError(ValueError):
    """Bad input or usage. Its message is one clear line for a person."""


def one_line(text) -> str:
    """``text`` (an exception, say) with its white space, newlines included, folded to single spaces.

    >>> one_line(ValueError("a\\n  b"))
    'a b'
    """
    return " ".join(str(text).split())
