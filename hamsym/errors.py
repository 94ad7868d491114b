"""The errors a declaration can raise: a leaf module, so that every stage can raise them
without importing the expression graph."""


class DeclarationError(ValueError):
    """A network declaration that cannot be derived; the message names the culprit."""


class ShapeError(DeclarationError):
    """Operands whose shapes do not fit the operation."""
