import json

from django import template

register = template.Library()


@register.filter
def pct(value) -> str:
    """0.913 -> '91.3%'; None -> '–'."""
    if value is None or value == "":
        return "–"
    return f"{100 * float(value):.1f}%"


@register.filter
def jsonify(value) -> str:
    return json.dumps(value)
