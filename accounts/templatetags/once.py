"""`{% once_field %}`: the one-time token of a form that changes something (keyportal.once)."""

from __future__ import annotations

from django import template
from django.utils.html import format_html

from keyportal.once import FIELD, new_token

register = template.Library()


@register.simple_tag(takes_context=True)
def once_field(context) -> str:
    """Render the hidden token; a form re-rendered with errors keeps the one it was sent with."""
    request = context.get("request")
    sent = request.POST.get(FIELD, "") if request is not None and request.method == "POST" else ""
    return format_html('<input type="hidden" name="{}" value="{}">', FIELD, sent or new_token())
