"""A table's `where:` filter as text: checked when the pipeline file is read, and added to
every read as one parenthesised term (common/source/probes.check_filter runs it once on the
server before anything is queued).

The expression goes into statements as it is written (it is the user's own SQL against the
user's own source), so what keeps it from widening a range is its shape: parentheses that
balance outside quotes, no statement separator, no comment that could hide the closing
parenthesis. Every read then says `WHERE (range) AND (filter)`: nothing the filter says can
reach outside its own parentheses.
"""
from __future__ import annotations


_QUOTES = {"'", '"', "`"}


def check_expression(text: str) -> str:
    """The expression, stripped, or ValueError saying what makes it unsafe to compose."""
    expr = text.strip()
    if not expr:
        raise ValueError("where: is empty; remove it to copy every row")
    depth, i, quote = 0, 0, None
    while i < len(expr):
        ch = expr[i]
        if quote:
            if ch == "\\" and quote != "`":
                i += 2
                continue
            if ch == quote:
                if expr[i + 1:i + 2] == quote:  # a doubled quote stays inside
                    i += 2
                    continue
                quote = None
        elif ch in _QUOTES:
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise ValueError(f"where: a ')' at character {i + 1} closes a parenthesis it did not open")
        elif ch == ";":
            raise ValueError(f"where: a ';' at character {i + 1}: one expression, not statements")
        elif ch == "#" or expr.startswith(("--", "/*"), i):
            raise ValueError(f"where: a comment at character {i + 1}; write the expression without one")
        i += 1
    if quote:
        raise ValueError(f"where: a {quote} quote is never closed")
    if depth:
        raise ValueError(f"where: {depth} parenthesis(es) never closed")
    protect(expr)  # ValueError for the one spelling it cannot keep
    return expr


def protect(expr: str) -> str:
    """The expression with no '%s' left, meaning the same to MySQL: the driver replaces every
    '%s' of a statement that has parameters, wherever it is, and has no escape for it. In a
    quoted string the literal is split there ('50%s' -> '50%' 's': MySQL joins adjacent
    strings); outside one a space goes between (a % s). In a `quoted` name it cannot be kept."""
    out, i, quote = [], 0, None
    while i < len(expr):
        ch = expr[i]
        if quote:
            if ch == "\\" and quote != "`":
                out.append(expr[i:i + 2])
                i += 2
                continue
            if ch == quote:
                if expr[i + 1:i + 2] == quote:
                    out.append(expr[i:i + 2])
                    i += 2
                    continue
                quote = None
            elif ch == "%" and expr[i + 1:i + 2] == "s":
                if quote == "`":
                    raise ValueError("where: a `quoted` name holds '%s', which the MySQL driver would read as a "
                                     "parameter")
                out.append(f"%{quote} {quote}")
                i += 1
                continue
        elif ch in _QUOTES:
            quote = ch
        elif ch == "%" and expr[i + 1:i + 2] == "s":
            out.append("% ")
            i += 1
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def term(where: str | None) -> str:
    """The filter as one term of a WHERE clause ('' without one), safe beside parameters."""
    return f"({protect(where)})" if where else ""

