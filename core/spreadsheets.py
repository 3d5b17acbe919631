"""Text bound for spreadsheets (CSV exports people open in Excel or LibreOffice)."""

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: str) -> str:
    """Defuse spreadsheet formula injection (OWASP): prefix a quote to a formula start."""
    if value and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value
