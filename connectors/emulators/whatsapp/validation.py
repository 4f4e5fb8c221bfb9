"""Send bodies checked the way the Cloud API checks them.

Codes: 100 (invalid parameter: wrong type, unknown field, unsupported value of
an enum), 131008 (a required parameter is missing), 131009 (a parameter's
value is not valid: too long, empty, unknown media id, bad URL). Unknown
top-level fields are ignored; unknown fields inside a typed object are refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..meta.media import is_http_url
from .config import CAPTION_LIMIT_CHARS, TEXT_LIMIT_CHARS
from .errors import invalid_parameter, invalid_value, missing_parameter

TYPES = ("text", "template", "image", "document", "audio", "video", "sticker")
MEDIA_TYPES = ("image", "document", "audio", "video", "sticker")
_TEMPLATE_COMPONENTS = ("header", "body", "footer", "button")
_TEMPLATE_PARAMETERS = ("text", "currency", "date_time", "image", "document", "video", "location", "payload",
                        "coupon_code", "action")
_LANGUAGE = re.compile(r"[a-z]{2,3}(_[A-Z]{2})?")
_PHONE_PUNCTUATION = re.compile(r"[\s\-().+]")


@dataclass
class SendRequest:
    recipient_type: str  # "individual" or "group"
    to: str  # as given
    recipient: str  # wa_id (digits) or group id
    type: str
    content: dict[str, Any]
    media_link: str | None = None
    media_id: str | None = None

    @property
    def is_template(self) -> bool:
        return self.type == "template"


def _string(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise invalid_parameter(f"Param {name} must be a string.")
    return value


def _no_unknown(content: dict[str, Any], allowed: tuple[str, ...], name: str) -> None:
    for key in content:
        if key not in allowed:
            raise invalid_parameter(f"Param {name}['{key}'] is not a valid parameter.")


def _recipient(params: dict[str, Any], recipient_type: str) -> tuple[str, str]:
    to = params.get("to")
    if to is None or to == "":
        raise missing_parameter("The parameter to is required.")
    if isinstance(to, int) and not isinstance(to, bool):
        to = str(to)
    to = _string(to, "to")
    if recipient_type == "group":
        return to, to
    wa_id = _PHONE_PUNCTUATION.sub("", to)
    if not wa_id.isdigit() or not 5 <= len(wa_id) <= 15:
        raise invalid_parameter(f'Param to must be a phone number in international format - got "{to}".')
    return to, wa_id


def validate_send(params: dict[str, Any], media_exists: Callable[[str], bool]) -> SendRequest:
    product = params.get("messaging_product")
    if product is None:
        raise invalid_parameter("The parameter messaging_product is required.")
    if product != "whatsapp":
        raise invalid_parameter(f'Param messaging_product must be one of {{WHATSAPP}} - got "{product}".')
    recipient_type = params.get("recipient_type", "individual")
    if recipient_type not in ("individual", "group"):
        raise invalid_parameter(f'Param recipient_type must be one of {{INDIVIDUAL, GROUP}} - got "{recipient_type}".')
    to, recipient = _recipient(params, recipient_type)
    kind = params.get("type", "text")
    if kind not in TYPES:
        names = ", ".join(sorted(t.upper() for t in TYPES))
        raise invalid_parameter(f'Param type must be one of {{{names}}} - got "{kind}".')
    content = params.get(kind)
    if content is None:
        raise missing_parameter(f"The parameter {kind} is required for messages of type {kind}.")
    if not isinstance(content, dict):
        raise invalid_parameter(f"Param {kind} must be a JSON object.")
    request = SendRequest(recipient_type, to, recipient, kind, content)
    if kind == "text":
        _check_text(content)
    elif kind == "template":
        _check_template(content)
    else:
        _check_media(request, media_exists)
    return request


def _check_text(text: dict[str, Any]) -> None:
    _no_unknown(text, ("body", "preview_url"), "text")
    if "body" not in text:
        raise missing_parameter("The parameter text['body'] is required.")
    body = _string(text["body"], "text['body']")
    if not body.strip():
        raise invalid_value("Param text['body'] must not be empty.")
    if len(body) > TEXT_LIMIT_CHARS:
        raise invalid_value(f"Param text['body'] must be at most {TEXT_LIMIT_CHARS} characters long.")
    if "preview_url" in text and not isinstance(text["preview_url"], bool):
        raise invalid_parameter("Param text['preview_url'] must be a boolean.")


def _check_template(template: dict[str, Any]) -> None:
    _no_unknown(template, ("name", "language", "components", "namespace"), "template")
    if not template.get("name"):
        raise missing_parameter("The parameter template['name'] is required.")
    _string(template["name"], "template['name']")
    language = template.get("language")
    if not isinstance(language, dict) or not language.get("code"):
        raise missing_parameter("The parameter template['language']['code'] is required.")
    code = _string(language["code"], "template['language']['code']")
    if not _LANGUAGE.fullmatch(code):
        raise invalid_value(f"Param template['language']['code'] is not a language code (like en or en_US) - "
                            f'got "{code}".')
    components = template.get("components", [])
    if not isinstance(components, list):
        raise invalid_parameter("Param template['components'] must be an array.")
    for n, component in enumerate(components):
        name = f"template['components'][{n}]"
        if not isinstance(component, dict) or "type" not in component:
            raise missing_parameter(f"The parameter {name}['type'] is required.")
        if component["type"] not in _TEMPLATE_COMPONENTS:
            raise invalid_value(f"Param {name}['type'] must be one of header, body, footer, button - "
                                f'got "{component["type"]}".')
        parameters = component.get("parameters", [])
        if not isinstance(parameters, list):
            raise invalid_parameter(f"Param {name}['parameters'] must be an array.")
        for m, parameter in enumerate(parameters):
            pname = f"{name}['parameters'][{m}]"
            if not isinstance(parameter, dict) or "type" not in parameter:
                raise missing_parameter(f"The parameter {pname}['type'] is required.")
            if parameter["type"] not in _TEMPLATE_PARAMETERS:
                raise invalid_value(f'Param {pname}[\'type\'] is not a template parameter type - got '
                                    f'"{parameter["type"]}".')
            if parameter["type"] == "text":
                if "text" not in parameter:
                    raise missing_parameter(f"The parameter {pname}['text'] is required.")
                if not _string(parameter["text"], f"{pname}['text']"):
                    raise invalid_value(f"Param {pname}['text'] must not be empty.")


def _check_media(request: SendRequest, media_exists: Callable[[str], bool]) -> None:
    kind, media = request.type, request.content
    allowed = ["link", "id"]
    if kind not in ("audio", "sticker"):
        allowed.append("caption")
    if kind == "document":
        allowed.append("filename")
    for key in media:
        if key not in allowed:
            if key in ("caption", "filename"):
                raise invalid_parameter(f"Param {kind}['{key}'] is not a valid parameter: {kind} messages "
                                        f"take no {key}.")
            raise invalid_parameter(f"Param {kind}['{key}'] is not a valid parameter.")
    link, media_id = media.get("link"), media.get("id")
    if link is None and media_id is None:
        raise missing_parameter(f"The parameter {kind}['link'] or {kind}['id'] is required.")
    if link is not None and media_id is not None:
        raise invalid_parameter(f"Param {kind} must have either 'id' or 'link', not both.")
    if link is not None:
        if not is_http_url(_string(link, f"{kind}['link']")):
            raise invalid_value(f"Param {kind}['link'] must be an http or https URL.")
        request.media_link = link
    else:
        if isinstance(media_id, int) and not isinstance(media_id, bool):
            media_id = str(media_id)
        media_id = _string(media_id, f"{kind}['id']")
        if not media_exists(media_id):
            raise invalid_value(f"Param {kind}['id'] is not a valid media id: {media_id} was never uploaded, "
                                "was deleted or has expired.")
        request.media_id = media_id
    if "caption" in media:
        caption = _string(media["caption"], f"{kind}['caption']")
        if len(caption) > CAPTION_LIMIT_CHARS:
            raise invalid_value(f"Param {kind}['caption'] must be at most {CAPTION_LIMIT_CHARS} characters long.")
    if "filename" in media:
        _string(media["filename"], f"{kind}['filename']")
