"""Formatted text: `parse_mode` parsing and the entities Telegram adds on its own.

The three parsers follow TDLib's (td/telegram/MessageEntity.cpp) byte for byte,
so markup the real server rejects is rejected here with the same description,
e.g. "can't parse entities: Character '.' is reserved and must be escaped with
the preceding '\\'". Entity offsets and lengths are in UTF-16 code units, as in
the Bot API. URL checking and the automatic entities (commands, mentions,
hashtags, URLs, e-mail addresses) are simplified.
"""

from __future__ import annotations

import re
from typing import Any

from .params import BotApiError, bad_request

_API_TYPES = {
    "Bold": "bold",
    "Italic": "italic",
    "Underline": "underline",
    "Strikethrough": "strikethrough",
    "Spoiler": "spoiler",
    "Code": "code",
    "Pre": "pre",
    "PreCode": "pre",
    "TextUrl": "text_link",
    "CustomEmoji": "custom_emoji",
    "BlockQuote": "blockquote",
    "ExpandableBlockQuote": "expandable_blockquote",
}

_HTML_TAGS = {
    "a", "b", "strong", "i", "em", "s", "strike", "del", "u", "ins",
    "tg-spoiler", "tg-emoji", "span", "pre", "code", "blockquote",
}
_SPACES = b" \t\r\n\x0b\x0c"
_URL_SCHEMES = ("http", "https", "tg", "ton", "tonsite", "ftp")
_CUSTOM_EMOJI_URL = re.compile(r"tg://emoji\?id=(\d+)$")


class ParseError(Exception):
    pass


class _Entity:
    __slots__ = ("type", "offset", "length", "argument")

    def __init__(self, type_: str, offset: int, length: int, argument: str = ""):
        self.type = type_
        self.offset = offset
        self.length = length
        self.argument = argument

    def api(self) -> dict[str, Any]:
        entity: dict[str, Any] = {"offset": self.offset, "length": self.length, "type": _API_TYPES[self.type]}
        if self.type == "PreCode":
            entity["language"] = self.argument
        elif self.type == "TextUrl":
            entity["url"] = self.argument
        elif self.type == "CustomEmoji":
            entity["custom_emoji_id"] = self.argument
        return entity


def _is_first_code_unit(c: int) -> bool:
    return (c & 0xC0) != 0x80


def _utf16_units(c: int) -> int:
    """UTF-16 units for the character whose UTF-8 encoding starts with byte c."""
    return 2 if c >= 0xF0 else 1


def _checked_link(url: str) -> str:
    """A simplified LinkManager::get_checked_link: '' when the URL is not acceptable."""
    url = url.strip()
    if not url or any(ch.isspace() for ch in url):
        return ""
    match = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://", url)
    if match:
        return url if match.group(1).lower() in _URL_SCHEMES else ""
    if re.match(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(:\d+)?([/?#].*)?$", url):
        return "http://" + url
    return ""


def _custom_emoji_id(url: str) -> str:
    match = _CUSTOM_EMOJI_URL.match(url)
    if not match or int(match.group(1)) == 0:
        raise ParseError("Invalid custom emoji identifier specified")
    return match.group(1)


def parse_markdown(source: str) -> tuple[str, list[_Entity]]:
    """The legacy `Markdown` mode."""
    text = source.encode()
    size = len(text)
    at = lambda k: text[k] if k < size else 0  # noqa: E731 - C strings end in NUL
    out = bytearray()
    entities: list[_Entity] = []
    utf16 = 0
    i = 0
    while i < size:
        c = text[i]
        if c == 0x5C and at(i + 1) in b"_*`[":
            i += 1
            out.append(text[i])
            utf16 += 1
            i += 1
            continue
        if c not in b"_*`[":
            if _is_first_code_unit(c):
                utf16 += _utf16_units(c)
            out.append(c)
            i += 1
            continue
        begin_pos = i
        end_character = ord("]") if c == ord("[") else c
        is_pre = False
        i += 1
        language = ""
        if c == ord("`") and at(i) == ord("`") and at(i + 1) == ord("`"):
            i += 2
            is_pre = True
            language_end = i
            while language_end < size and at(language_end) not in _SPACES and at(language_end) != ord("`"):
                language_end += 1
            if i != language_end and language_end < size and at(language_end) != ord("`"):
                language = text[i:language_end].decode(errors="replace")
                i = language_end
            if at(i) in (0x0A, 0x0D):
                if at(i + 1) in (0x0A, 0x0D) and at(i) != at(i + 1):
                    i += 2
                else:
                    i += 1
        entity_offset = utf16
        while i < size and (
            text[i] != end_character or (is_pre and not (at(i + 1) == ord("`") and at(i + 2) == ord("`")))
        ):
            if _is_first_code_unit(text[i]):
                utf16 += _utf16_units(text[i])
            out.append(text[i])
            i += 1
        if i == size:
            raise ParseError(f"Can't find end of the entity starting at byte offset {begin_pos}")
        if entity_offset != utf16:
            length = utf16 - entity_offset
            if c == ord("_"):
                entities.append(_Entity("Italic", entity_offset, length))
            elif c == ord("*"):
                entities.append(_Entity("Bold", entity_offset, length))
            elif c == ord("["):
                if at(i + 1) != ord("("):
                    url = text[begin_pos + 1 : i].decode(errors="replace")
                else:
                    i += 2
                    url_begin = i
                    while i < size and text[i] != ord(")"):
                        i += 1
                    url = text[url_begin:i].decode(errors="replace")
                url = _checked_link(url)
                if url:
                    entities.append(_Entity("TextUrl", entity_offset, length, url))
            elif is_pre:
                entities.append(_Entity("PreCode", entity_offset, length, language) if language
                                else _Entity("Pre", entity_offset, length))
            else:
                entities.append(_Entity("Code", entity_offset, length))
        if is_pre:
            i += 2
        i += 1
    return out.decode(errors="replace"), entities


def parse_markdown_v2(source: str) -> tuple[str, list[_Entity]]:
    text = source.encode()
    size = len(text)
    at = lambda k: text[k] if k < size else 0  # noqa: E731 - C strings end in NUL
    out = bytearray()
    entities: list[_Entity] = []
    utf16 = 0
    # [type, argument, utf16 offset, byte offset in the source, byte offset in out]
    nested: list[list[Any]] = []
    have_blockquote = False
    can_start_blockquote = True

    def reserved(ch: int) -> ParseError:
        return ParseError(f"Character '{chr(ch)}' is reserved and must be escaped with the preceding '\\'")

    def unclosed() -> ParseError:
        return ParseError(f"Can't find end of {nested[-1][0]} entity at byte offset {nested[-1][3]}")

    i = -1
    while True:
        i += 1
        if i >= size:
            break
        c = text[i]
        if c == 0x5C and 0 < at(i + 1) <= 126:
            i += 1
            utf16 += 1
            out.append(text[i])
            if text[i] != 0x0D:
                can_start_blockquote = text[i] == 0x0A
            continue

        reserved_characters = b"_*[]()~`>#+-=|{}.!\n"
        if nested and nested[-1][0] in ("Code", "Pre", "PreCode"):
            reserved_characters = b"`"
        if c not in reserved_characters:
            if _is_first_code_unit(c):
                utf16 += _utf16_units(c)
                if c != 0x0D:
                    can_start_blockquote = False
            out.append(c)
            continue

        is_end = False
        if nested:
            top = nested[-1][0]
            if have_blockquote and c == 0x0A and (i + 1 == size or text[i + 1] != ord(">")):
                is_end = True
            elif top == "Bold":
                is_end = c == ord("*")
            elif top == "Italic":
                is_end = c == ord("_") and at(i + 1) != ord("_")
            elif top == "Code":
                is_end = c == ord("`")
            elif top in ("Pre", "PreCode"):
                is_end = c == ord("`") and at(i + 1) == ord("`") and at(i + 2) == ord("`")
            elif top in ("TextUrl", "CustomEmoji"):
                is_end = c == ord("]")
            elif top == "Underline":
                is_end = c == ord("_") and at(i + 1) == ord("_")
            elif top == "Strikethrough":
                is_end = c == ord("~")
            elif top == "Spoiler":
                is_end = c == ord("|") and at(i + 1) == ord("|")

        if not is_end:
            argument = ""
            byte_offset = i
            kind: str | None
            if c == ord("_"):
                if at(i + 1) == ord("_"):
                    kind = "Underline"
                    i += 1
                else:
                    kind = "Italic"
            elif c == ord("*"):
                kind = "Bold"
            elif c == ord("~"):
                kind = "Strikethrough"
            elif c == ord("|"):
                if at(i + 1) != ord("|"):
                    raise reserved(c)
                i += 1
                kind = "Spoiler"
            elif c == ord("["):
                kind = "TextUrl"
            elif c == ord("`"):
                if at(i + 1) == ord("`") and at(i + 2) == ord("`"):
                    i += 3
                    kind = "Pre"
                    language_end = i
                    while language_end < size and at(language_end) not in _SPACES and at(language_end) != ord("`"):
                        language_end += 1
                    if i != language_end and language_end < size and at(language_end) != ord("`"):
                        kind = "PreCode"
                        argument = text[i:language_end].decode(errors="replace")
                        i = language_end
                    if at(i) in (0x0A, 0x0D):
                        if at(i + 1) in (0x0A, 0x0D) and at(i) != at(i + 1):
                            i += 2
                        else:
                            i += 1
                    i -= 1
                else:
                    kind = "Code"
            elif c == ord("!"):
                if at(i + 1) != ord("["):
                    raise reserved(c)
                i += 1
                kind = "CustomEmoji"
            elif c == 0x0A:
                utf16 += 1
                out.append(0x0A)
                can_start_blockquote = True
                kind = None
            elif c == ord(">"):
                if not can_start_blockquote:
                    raise reserved(c)
                if have_blockquote:
                    kind = None
                else:
                    kind = "BlockQuote"
                    have_blockquote = True
            else:
                raise reserved(c)
            if kind is None:
                continue
            nested.append([kind, argument, utf16, byte_offset, len(out)])
            continue

        # end of an entity
        kind = nested[-1][0]
        if c == 0x0A and kind != "BlockQuote":
            if kind != "Spoiler" or not (
                nested[-1][3] == i - 2 or (nested[-1][3] == i - 3 and out and out[-1] == 0x0D)
            ):
                raise unclosed()
            nested.pop()
            kind = nested[-1][0]
            if kind != "BlockQuote":
                raise unclosed()
            kind = "ExpandableBlockQuote"
        argument = nested[-1][1]
        skip_entity = utf16 == nested[-1][2]
        if kind in ("Underline", "Spoiler"):
            i += 1
        elif kind in ("Pre", "PreCode"):
            i += 2
        elif kind == "TextUrl":
            if at(i + 1) != ord("("):
                url = bytes(out[nested[-1][4] :]).decode(errors="replace")
            else:
                i += 2
                url_begin = i
                url_bytes = bytearray()
                while i < size and text[i] != ord(")"):
                    if text[i] == 0x5C and 0 < at(i + 1) <= 126:
                        url_bytes.append(text[i + 1])
                        i += 2
                        continue
                    url_bytes.append(text[i])
                    i += 1
                if at(i) != ord(")"):
                    raise ParseError(f"Can't find end of a URL at byte offset {url_begin}")
                url = url_bytes.decode(errors="replace")
            url = _checked_link(url)
            if url:
                argument = url
            else:
                skip_entity = True
        elif kind == "CustomEmoji":
            if at(i + 1) != ord("("):
                raise ParseError("Custom emoji entity must contain a tg://emoji URL")
            i += 2
            url_begin = i
            url_bytes = bytearray()
            while i < size and text[i] != ord(")"):
                if text[i] == 0x5C and 0 < at(i + 1) <= 126:
                    url_bytes.append(text[i + 1])
                    i += 2
                    continue
                url_bytes.append(text[i])
                i += 1
            if at(i) != ord(")"):
                raise ParseError(f"Can't find end of a custom emoji URL at byte offset {url_begin}")
            argument = _custom_emoji_id(url_bytes.decode(errors="replace"))
        elif kind in ("BlockQuote", "ExpandableBlockQuote"):
            have_blockquote = False
            out.append(text[i])
            can_start_blockquote = True
            utf16 += 1
            skip_entity = False
        if not skip_entity:
            offset = nested[-1][2]
            entities.append(_Entity(kind, offset, utf16 - offset, argument))
        nested.pop()

    if have_blockquote:
        kind = "BlockQuote"
        if nested and nested[-1][0] == "Spoiler" and nested[-1][3] == size - 2:
            nested.pop()
            kind = "ExpandableBlockQuote"
        if nested and nested[-1][0] == "BlockQuote":
            offset = nested[-1][2]
            if utf16 - offset != 0:
                entities.append(_Entity(kind, offset, utf16 - offset))
            nested.pop()
    if nested:
        raise unclosed()
    return out.decode(errors="replace"), entities


def _decode_html_entity(text: bytes, pos: int) -> tuple[int, int]:
    """(code point or 0, position after the reference); text[pos] is '&'."""
    size = len(text)
    at = lambda k: text[k] if k < size else 0  # noqa: E731
    end = pos + 1
    code = 0
    if at(pos + 1) == ord("#"):
        end += 1
        if at(pos + 2) == ord("x"):
            end += 1
            while chr(at(end)) in "0123456789abcdefABCDEF" and at(end):
                code = code * 16 + int(chr(at(end)), 16)
                end += 1
        else:
            while ord("0") <= at(end) <= ord("9"):
                code = code * 10 + at(end) - ord("0")
                end += 1
        if code == 0 or code >= 0x10FFFF or end - pos >= 10:
            return 0, pos
    else:
        while chr(at(end)).isascii() and chr(at(end)).isalpha():
            end += 1
        name = text[pos + 1 : end]
        code = {b"lt": ord("<"), b"gt": ord(">"), b"amp": ord("&"), b"quot": ord('"')}.get(name, 0)
        if code == 0:
            return 0, pos
    if at(end) == ord(";"):
        end += 1
    return code, end


def parse_html(source: str) -> tuple[str, list[_Entity]]:
    text = source.encode()
    size = len(text)
    at = lambda k: text[k] if k < size else 0  # noqa: E731
    out = bytearray()
    entities: list[_Entity] = []
    utf16 = 0
    # [tag name, argument, utf16 offset, byte offset in out]
    nested: list[list[Any]] = []
    i = 0
    while i < size:
        c = text[i]
        if c == ord("&"):
            code, end = _decode_html_entity(text, i)
            if code:
                utf16 += 2 if code > 0xFFFF else 1
                out += chr(code).encode("utf-8", "surrogatepass")
                i = end
                continue
        if c != ord("<"):
            if _is_first_code_unit(c):
                utf16 += _utf16_units(c)
            out.append(c)
            i += 1
            continue

        begin_pos = i
        i += 1
        if at(i) != ord("/"):
            while at(i) not in _SPACES and at(i) != ord(">") and at(i) != 0:
                i += 1
            if at(i) == 0:
                raise ParseError(f"Unclosed start tag at byte offset {begin_pos}")
            tag = text[begin_pos + 1 : i].decode(errors="replace").lower()
            if tag not in _HTML_TAGS:
                raise ParseError(f'Unsupported start tag "{tag}" at byte offset {begin_pos}')
            argument = ""
            while at(i) != ord(">"):
                while at(i) != 0 and at(i) in _SPACES:
                    i += 1
                if at(i) == ord(">"):
                    break
                attribute_begin = i
                while at(i) != 0 and at(i) not in _SPACES and at(i) not in b"=>/\"'":
                    i += 1
                attribute = text[attribute_begin:i]
                if not attribute:
                    raise ParseError(f'Empty attribute name in the tag "{tag}" at byte offset {begin_pos}')
                while at(i) != 0 and at(i) in _SPACES:
                    i += 1
                if at(i) != ord("="):
                    if at(i) == 0:
                        raise ParseError(f'Unclosed start tag "{tag}" at byte offset {begin_pos}')
                    if tag == "blockquote" and attribute == b"expandable":
                        argument = "1"
                    continue
                i += 1
                while at(i) != 0 and at(i) in _SPACES:
                    i += 1
                if at(i) == 0:
                    raise ParseError(f'Unclosed start tag "{tag}" at byte offset {begin_pos}')
                if at(i) not in (ord("'"), ord('"')):
                    token_begin = i
                    while at(i) != 0 and (chr(at(i)).isascii() and (chr(at(i)).isalnum() or chr(at(i)) in ".-")):
                        i += 1
                    value = text[token_begin:i].decode(errors="replace").lower()
                    if at(i) not in _SPACES and at(i) != ord(">"):
                        raise ParseError(f"Unexpected end of name token at byte offset {token_begin}")
                else:
                    quote = at(i)
                    i += 1
                    value_bytes = bytearray()
                    while at(i) != quote and at(i) != 0:
                        if at(i) == ord("&"):
                            code, end = _decode_html_entity(text, i)
                            if code:
                                value_bytes += chr(code).encode("utf-8", "surrogatepass")
                                i = end
                                continue
                        value_bytes.append(at(i))
                        i += 1
                    if at(i) == quote:
                        i += 1
                    value = value_bytes.decode(errors="replace")
                if at(i) == 0:
                    raise ParseError(f"Unclosed start tag at byte offset {begin_pos}")
                if tag == "a" and attribute == b"href":
                    argument = value
                elif tag == "code" and attribute == b"class" and value.startswith("language-"):
                    argument = value[9:]
                elif tag == "span" and attribute == b"class" and value.startswith("tg-"):
                    argument = value[3:]
                elif tag == "tg-emoji" and attribute == b"emoji-id":
                    argument = value
                elif tag == "blockquote" and attribute == b"expandable":
                    argument = "1"
            if tag == "span" and argument != "spoiler":
                raise ParseError(f'Tag "span" must have class "tg-spoiler" at byte offset {begin_pos}')
            nested.append([tag, argument, utf16, len(out)])
            i += 1
            continue

        # end tag
        if not nested:
            raise ParseError(f"Unexpected end tag at byte offset {begin_pos}")
        while at(i) != 0 and at(i) not in _SPACES and at(i) != ord(">"):
            i += 1
        end_tag = text[begin_pos + 2 : i].decode(errors="replace").lower()
        while at(i) != 0 and at(i) in _SPACES:
            i += 1
        if at(i) != ord(">"):
            raise ParseError(f"Unclosed end tag at byte offset {begin_pos}")
        tag, argument, offset, out_begin = nested[-1]
        if end_tag and end_tag != tag:
            raise ParseError(
                f'Unmatched end tag at byte offset {begin_pos}, expected "</{tag}>", found "</{end_tag}>"'
            )
        if utf16 > offset:
            length = utf16 - offset
            last = entities[-1] if entities else None
            if tag in ("i", "em"):
                entities.append(_Entity("Italic", offset, length))
            elif tag in ("b", "strong"):
                entities.append(_Entity("Bold", offset, length))
            elif tag in ("s", "strike", "del"):
                entities.append(_Entity("Strikethrough", offset, length))
            elif tag in ("u", "ins"):
                entities.append(_Entity("Underline", offset, length))
            elif tag in ("tg-spoiler", "span"):
                entities.append(_Entity("Spoiler", offset, length))
            elif tag == "tg-emoji":
                if not argument.isdigit() or int(argument) == 0:
                    raise ParseError("Invalid custom emoji identifier specified")
                entities.append(_Entity("CustomEmoji", offset, length, argument))
            elif tag == "a":
                url = argument or bytes(out[out_begin:]).decode(errors="replace")
                url = _checked_link(url)
                if url:
                    entities.append(_Entity("TextUrl", offset, length, url))
            elif tag == "pre":
                if last and last.type == "Code" and last.offset == offset and last.length == length and last.argument:
                    last.type = "PreCode"
                else:
                    entities.append(_Entity("Pre", offset, length))
            elif tag == "code":
                if last and last.type == "Pre" and last.offset == offset and last.length == length and argument:
                    last.type = "PreCode"
                    last.argument = argument
                else:
                    entities.append(_Entity("Code", offset, length, argument))
            elif tag == "blockquote":
                entities.append(_Entity("ExpandableBlockQuote" if argument else "BlockQuote", offset, length))
        nested.pop()
        i += 1
    if nested:
        raise ParseError(f'Can\'t find end tag corresponding to start tag "{nested[-1][0]}"')
    for entity in entities:
        if entity.type == "Code":
            entity.argument = ""
    try:
        return out.decode("utf-8"), entities
    except UnicodeDecodeError:
        raise ParseError(
            "Text contains invalid Unicode characters after decoding HTML entities, "
            "check for unmatched surrogate code units"
        ) from None


_PARSERS = {"markdown": parse_markdown, "markdownv2": parse_markdown_v2, "html": parse_html}


def utf16_len(text: str) -> int:
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _utf16_index(text: str) -> list[int]:
    """UTF-16 offset of every character index (and of the end)."""
    offsets = [0] * (len(text) + 1)
    total = 0
    for index, ch in enumerate(text):
        offsets[index] = total
        total += 2 if ord(ch) > 0xFFFF else 1
    offsets[len(text)] = total
    return offsets


def _trim(text: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Telegram drops leading and trailing white space; entities are clipped to what is left."""
    stripped = text.strip(" \t\r\n")
    if stripped == text:
        return text, entities
    lead = utf16_len(text[: len(text) - len(text.lstrip(" \t\r\n"))])
    end = lead + utf16_len(stripped)
    kept = []
    for entity in entities:
        start = max(entity["offset"], lead)
        stop = min(entity["offset"] + entity["length"], end)
        if stop > start:
            kept.append({**entity, "offset": start - lead, "length": stop - start})
    return stripped, kept


_AUTO_PATTERNS = (
    ("email", re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")),
    ("url", re.compile(
        r"(?<![\w@/.-])(?:https?://[^\s<>\"]+|(?:[A-Za-z0-9-]+\.)+"
        r"(?:com|org|net|io|dev|app|me|co|info|ru|de|uk|br|in|ai|xyz|tech|tv|ly|gg)(?::\d+)?(?:/[^\s<>\"]*)?)",
        re.IGNORECASE,
    )),
    ("bot_command", re.compile(r"(?<![\w/<>])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![\w/])")),
    ("mention", re.compile(r"(?<![\w@])@[A-Za-z][A-Za-z0-9_]{3,31}(?!\w)")),
    ("hashtag", re.compile(r"(?<![\w#])#\w*[^\W\d]\w*")),
    ("cashtag", re.compile(r"(?<![\w$])\$[A-Z]{3,8}(?![\w$])")),
)
_NO_AUTO_INSIDE = {"code", "pre", "text_link", "url", "email", "text_mention", "custom_emoji"}


def _auto_entities(text: str, entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Entities the server finds by itself: commands, mentions, hashtags, URLs, e-mail."""
    if not any(ch in text for ch in "/@#.$"):
        return entities
    index = _utf16_index(text)
    taken = [(e["offset"], e["offset"] + e["length"]) for e in entities if e["type"] in _NO_AUTO_INSIDE]
    found: list[dict[str, Any]] = []
    for kind, pattern in _AUTO_PATTERNS:
        for match in pattern.finditer(text):
            start, stop = match.start(), match.end()
            if kind == "url":
                while stop > start and text[stop - 1] in ".,;:!?)]'\"":
                    stop -= 1
            offset, end = index[start], index[stop]
            if end <= offset or any(offset < t_end and t_start < end for t_start, t_end in taken):
                continue
            taken.append((offset, end))
            found.append({"offset": offset, "length": end - offset, "type": kind})
    if not found:
        return entities
    return sorted(entities + found, key=lambda e: (e["offset"], -e["length"]))


def format_text(text: str, parse_mode: str, entities_json: Any, *, what: str = "text") -> tuple[str, list[dict[str, Any]]]:
    """The text and entities of a message as the server stores them.

    Raises BotApiError as the real server does for bad markup.
    """
    if isinstance(entities_json, list):
        entities = [dict(e) for e in entities_json if isinstance(e, dict)]
        for entity in entities:
            if not isinstance(entity.get("offset"), int) or not isinstance(entity.get("length"), int):
                raise bad_request("can't parse entities: entity offset and length must be integers")
            if not isinstance(entity.get("type"), str):
                raise bad_request("can't parse entities: entity type must be a string")
        entities.sort(key=lambda e: (e["offset"], -e["length"]))
    else:
        mode = parse_mode.lower()
        if mode in ("", "none"):
            entities = []
        else:
            parser = _PARSERS.get(mode)
            if parser is None:
                raise bad_request("unsupported parse_mode")
            try:
                text, parsed = parser(text)
            except ParseError as error:
                message = str(error)
                raise BotApiError(400, f"Bad Request: can't parse entities: {message}") from None
            entities = [entity.api() for entity in sorted(parsed, key=lambda e: (e.offset, -e.length))]
    text, entities = _trim(text, entities)
    return text, _auto_entities(text, entities)
