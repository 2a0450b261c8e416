"""Redaction: secrets and personal data become a marker before anything reaches the store.

Everything keel writes about a run (its input and output, events, journal payloads, approval
arguments, decisions, LangGraph checkpoint values, ADK sessions) passes through the run's
`Redactor` first; the stream, the API and exports read the store, so they never see the
original. The live objects of the run are not touched: the model and the tools see the real
values while the run goes on.

Strings are redacted wherever they sit in the data, dictionary keys included; a string that
holds a JSON document (a model's tool-call arguments) is redacted as JSON, so it stays JSON.
An integer that is a payment card number becomes the marker too.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel

from ._fenced import NewEvent
from ._json import dumps, jsonable, loads

__all__ = [
    "BUILTIN_KINDS", "BuiltinKind", "RedactOption", "Redactor", "redacted_approval",
    "redacted_event", "redacted_json", "redactor_of",
]

BuiltinKind = Literal["email", "api_key", "token", "card"]
BUILTIN_KINDS: tuple[BuiltinKind, ...] = ("email", "api_key", "token", "card")

_BUILTIN_PATTERNS: dict[str, str] = {
    "email": r"(?<![\w.%+-])[\w.%+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}",
    # OpenAI/Anthropic, Stripe, GitHub, Slack, AWS access key ids, Google API keys.
    "api_key": r"\b(?:sk-[\w-]{20,}|(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}"
               r"|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_\w{30,}|xox[abposr]-[A-Za-z0-9-]{10,}"
               r"|(?:AKIA|ASIA)[A-Z0-9]{16}|AIza[\w-]{35})",
    # A bearer token (the word Bearer stays) or a JWT.
    "token": r"(?i:\bbearer\s+)(?P<secret>[\w.~+/-]{16,}=*)"
             r"|\beyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]*",
    # 13-19 digits, bare or in groups of four (Amex: 4-6-5); not part of a longer identifier,
    # a decimal or a version. Checked by `_is_card` besides.
    "card": r"(?<![\w.-])(?:\d{13,19}|\d{4}(?P<s>[ -])\d{4}(?P=s)\d{4}(?P=s)\d{1,7}"
            r"|\d{4}(?P<a>[ -])\d{6}(?P=a)\d{4,5})(?![\w-]|\.\d)",
}

_IDENTIFIERS = frozenset({"call_id", "approval_id", "tool_name", "target", "guardrail_name"})
"""Event fields that name things rather than carry data: never redacted, so that events
still match their journal steps and approvals."""


@dataclass(frozen=True)
class Redactor:
    """What to redact before anything is stored: built-in kinds, your own patterns, a hook.

        AgentRuntime(redact=True)                      # every built-in kind
        AgentRuntime(redact=Redactor(kinds=["api_key", "token", "card"]))  # keep e-mails
        AgentRuntime(redact=Redactor(patterns={"ticket_secret": r"TS-\\d{6}"}))
        AgentRuntime(redact=scrub)                     # built-ins, then your hook

    Each match becomes `[redacted:<kind>]`. Patterns run first (the built-in kinds, then
    yours, by name); a pattern with a group named `secret` replaces only that group. Then
    the `hook` receives every string and returns it redacted; a hook that raises redacts the
    whole string (`[redacted:hook_error]`) rather than let it through.

    The kinds and patterns are recorded with each execution, so every keel process that
    writes about it (a resume elsewhere, a worker, an approval from the CLI) applies them
    too. A hook is code: it applies in the runtimes it is given to.
    """

    kinds: Collection[BuiltinKind] = BUILTIN_KINDS
    """Built-in kinds: "email" (addresses), "api_key" (sk-..., ghp_..., xox..., AKIA...,
    AIza..., Stripe keys), "token" (bearer tokens, JWTs), "card" (payment card numbers: a
    card network's range and a valid Luhn check, so order numbers stay)."""
    patterns: Mapping[str, str] = field(default_factory=dict)
    """Your own kinds: name -> regular expression."""
    hook: Callable[[str], str] | None = None
    """`(text) -> text`, applied to every string after the patterns."""

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(BUILTIN_KINDS)
        if unknown:
            raise ValueError(f"Unknown redaction kinds {sorted(unknown)}; the built-in ones "
                             f"are {list(BUILTIN_KINDS)}. Add your own with patterns=.")
        for name, pattern in self.patterns.items():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"The redaction pattern {name!r} is not a valid regular "
                                 f"expression: {exc}.") from None

    def redact(self, text: str) -> str:
        """`text` with everything this redactor finds replaced by its marker."""
        for pattern, replace in self._compiled:
            text = pattern.sub(replace, text)
        if self.hook is not None:
            try:
                text = self.hook(text)
            except Exception:
                return "[redacted:hook_error]"
            if not isinstance(text, str):
                return "[redacted:hook_error]"
        return text

    @cached_property
    def _compiled(self) -> list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]]:
        builtin = [(kind, _BUILTIN_PATTERNS[kind]) for kind in BUILTIN_KINDS
                   if kind in self.kinds]
        return [(re.compile(pattern), _replacer(kind, checked=kind == "card"))
                for kind, pattern in builtin] + \
            [(re.compile(pattern), _replacer(kind)) for kind, pattern in
             sorted(self.patterns.items())]

    # -- keel's data ----------------------------------------------------------------------

    def redact_value(self, value: Any) -> Any:
        """`value` with its strings redacted, as a copy where anything changed: JSON data,
        and the dicts, lists, tuples, pydantic models and dataclasses that hold it. Other
        objects are returned as they are."""
        if isinstance(value, str):
            return self._string(value)
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return "[redacted:card]" if "card" in self.kinds and _is_card(str(value)) \
                else value
        if isinstance(value, dict):
            items = [(self.redact_value(k), self.redact_value(v)) for k, v in value.items()]
            unchanged = all(k is new_k and v is new_v for (k, v), (new_k, new_v)
                            in zip(value.items(), items, strict=True))
            return value if unchanged else dict(items)
        if isinstance(value, list | tuple):
            redacted = [self.redact_value(item) for item in value]
            if all(a is b for a, b in zip(value, redacted, strict=True)):
                return value
            if isinstance(value, list) or type(value) is tuple:
                return type(value)(redacted)
            return type(value)(*redacted)  # a named tuple
        if isinstance(value, BaseModel) or _is_dataclass_instance(value):
            return self._fields(value)
        return value

    def _fields(self, value: Any) -> Any:
        names = list(type(value).model_fields) if isinstance(value, BaseModel) else \
            [f.name for f in dataclasses.fields(value)]
        changes = {name: new for name in names
                   if (new := self.redact_value(old := getattr(value, name, None))) is not old}
        if not changes:
            return value
        if isinstance(value, BaseModel):
            return value.model_copy(update=changes)
        changed = copy.copy(value)  # frozen dataclasses too
        for name, new in changes.items():
            object.__setattr__(changed, name, new)
        return changed

    def _string(self, text: str) -> str:
        if text[:1] in ("{", "[") and len(text) > 1:  # a JSON document stays one
            try:
                document = json.loads(text)
            except ValueError:
                pass
            else:
                if isinstance(document, dict | list):
                    redacted = self.redact_value(document)
                    return text if redacted is document else \
                        json.dumps(redacted, ensure_ascii=False)
        redacted = self.redact(text)
        return text if redacted == text else redacted

    # -- travelling with an execution -----------------------------------------------------

    def spec(self) -> str | None:
        """What travels with an execution: the kinds and patterns (a hook is code)."""
        if not self.kinds and not self.patterns:
            return None
        return dumps({"kinds": sorted(self.kinds), "patterns": dict(self.patterns)})

    @staticmethod
    def combine(own: Redactor | None, recorded: str | None) -> Redactor | None:
        """This process's redactor together with the one recorded with an execution."""
        spec = loads(recorded) or {}
        if not spec:
            return own
        kinds = set(spec.get("kinds") or ()) | set(own.kinds if own else ())
        patterns = {**(spec.get("patterns") or {}), **(own.patterns if own else {})}
        combined = Redactor(kinds=tuple(k for k in BUILTIN_KINDS if k in kinds),
                            patterns=patterns, hook=own.hook if own else None)
        return own if combined == own else combined


RedactOption = bool | Redactor | Callable[[str], str] | None
"""What `AgentRuntime(redact=...)` takes."""


def redacted_json(redactor: Redactor, text: str | None) -> str | None:
    """Stored JSON text, redacted."""
    if text is None:
        return None
    data = loads(text)
    redacted = redactor.redact_value(data)
    return text if redacted is data else dumps(redacted)


def redacted_event(redactor: Redactor, event: NewEvent) -> NewEvent:
    """An event to store, redacted; its identifying fields are kept."""
    return NewEvent(event.type, event.agent, {
        key: value if key in _IDENTIFIERS else redactor.redact_value(jsonable(value))
        for key, value in event.data.items()})


def redacted_approval(redactor: Redactor, row: dict[str, Any]) -> dict[str, Any]:
    """An approval row to store, redacted: its arguments and reason."""
    return {**row, "args": redacted_json(redactor, row["args"]),
            "reason": redactor.redact_value(row.get("reason"))}


def redactor_of(option: RedactOption) -> Redactor | None:
    """The redactor `AgentRuntime(redact=...)` asks for: True (the built-in kinds), a
    `Redactor`, or a hook (with the built-in kinds)."""
    if option is None or option is False:
        return None
    if option is True:
        return Redactor()
    if isinstance(option, Redactor):
        return option
    if callable(option):
        return Redactor(hook=option)
    raise TypeError(f"redact= takes True, a keel.Redactor or a function (text) -> text, "
                    f"not {option!r}.")


def _replacer(kind: str, *, checked: bool = False) -> Callable[[re.Match[str]], str]:
    """What replaces a match: the marker (in place of its `secret` group, if it has one).
    `checked`: a card number, kept unless `_is_card` says it is one."""
    marker = f"[redacted:{kind}]"

    def replace(match: re.Match[str]) -> str:
        if checked and not _is_card(re.sub(r"\D", "", match.group())):
            return match.group()
        if match.groupdict().get("secret") is None:
            return marker
        start, end = match.span("secret")
        return match.string[match.start():start] + marker + match.string[end:match.end()]

    return replace


def _is_card(digits: str) -> bool:
    """13-19 digits in a card network's range (2221-2720 or a first digit of 3 to 6) with a
    valid Luhn check digit."""
    if not 13 <= len(digits) <= 19 or not (
            digits[0] in "3456" or 2221 <= int(digits[:4]) <= 2720):
        return False
    total = 0
    for position, digit in enumerate(reversed(digits)):
        number = int(digit) * (2 if position % 2 else 1)
        total += number - 9 if number > 9 else number
    return total % 10 == 0


def _is_dataclass_instance(value: Any) -> bool:
    return dataclasses.is_dataclass(value) and not isinstance(value, type)
