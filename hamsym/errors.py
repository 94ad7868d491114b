"""The errors hamsym raises for what a user gives it: a leaf module, so that every stage
can raise them without importing the expression graph. Each message names the user's
own declaration, file, line, row or argument."""


class DeclarationError(ValueError):
    """A network declaration that cannot be derived; the message names the culprit."""


class ShapeError(DeclarationError):
    """Operands whose shapes do not fit the operation."""


class InputError(ValueError):
    """An argument, file or stream that hamsym refuses; the message names it. Refused
    before anything is written."""


class StreamError(InputError):
    """A stream file that cannot be read as a stream (missing, not a regular file, empty,
    truncated, of the wrong width or type, a cell that is not a number).

    path: the file; row: the data row at fault, counted from 0 over the file's data rows
    (None when the file as a whole is at fault); line: for a .csv, the row's line in the
    file, counted from 1 as editors do."""

    def __init__(self, message, *, path=None, row=None, line=None):
        super().__init__(message)
        self.path, self.row, self.line = path, row, line


class BadRowError(StreamError):
    """A data row holding NaN or inf, met with on_bad_row="stop" (the default).

    The stream has yielded every row before it (those are applied, if the consumer
    learned them) and stops there: a runner that catches this error can save a
    checkpoint of exactly the rows before `row`, then report the message (it names the
    file, the row, the line for a .csv, and the column) and exit with status 2.
    column: the offending column of the row, counted from 0."""

    def __init__(self, message, *, path, row, line=None, column=None):
        super().__init__(message, path=path, row=row, line=line)
        self.column = column
