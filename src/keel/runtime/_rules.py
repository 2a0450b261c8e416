"""Rule-list policies: `AgentRuntime(approval_policy=[Rule(...), ...])`.

The first rule whose `tool` glob (and `agent` glob) matches a call decides it: with no `when`,
its `then`; with one, `then` when the arguments satisfy it, else `otherwise` (None lets the
next rules decide). No matching rule leaves the call to the tool's own flag and
`require_approval`. Every decision records the rule that made it. Rules fail closed: a call
whose arguments could not be parsed, or whose condition raises (a missing field, a wrong
type), waits for a human.

    approval_policy=[
        Rule("save_draft", agent="drafter"),                        # an allow list for one
        Rule("*", agent="drafter", then=Deny("Only drafting tools.")),  # agent, then its end
        Rule("send_reply", when=lambda a: a["confidence"] >= 0.9,
             otherwise=Deny("Confidence below 0.9: save a draft instead.")),
        Rule("process_refund", when=lambda a: a["amount"] <= 25, otherwise=Ask()),
        Rule("delete_*", then=Deny("Never.", stop=True)),          # a deny list
    ]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._approvals import Allow, Ask, Deny, PolicyContext, Verdict

__all__ = ["Rule", "RuleList"]


def _allow() -> Allow:
    from ._approvals import Allow

    return Allow()


@dataclass(frozen=True)
class Rule:
    """Calls of tools matching `tool` (a glob; handoffs are `transfer_to_*`), made by agents
    matching `agent`, get `then` when `when(args)` holds (or always, without `when`), else
    `otherwise`."""

    tool: str = "*"
    when: Callable[[dict[str, Any]], bool] | None = None
    then: Allow | Deny | Ask | None = field(default_factory=_allow)
    otherwise: Allow | Deny | Ask | None = None
    agent: str = "*"
    name: str | None = None
    """How decisions name this rule; default `rule N (tool)`."""

    def __post_init__(self) -> None:
        from ._approvals import Allow, Ask, Deny

        if not (isinstance(self.tool, str) and isinstance(self.agent, str)):
            raise TypeError(f"Rule's tool and agent are globs (strings): {self!r}")
        if self.when is not None and not callable(self.when):
            raise TypeError(f"Rule(when=...) takes a function (args) -> bool, not {self.when!r}.")
        for outcome in (self.then, self.otherwise):
            if outcome is not None and not isinstance(outcome, Allow | Deny | Ask):
                raise TypeError(f"A Rule's then and otherwise take Allow(), Deny(reason), Ask() "
                                f"or None (the next rules decide), not {outcome!r}.")

    def label(self, index: int) -> str:
        if self.name:
            return self.name
        scope = f" for {self.agent}" if self.agent != "*" else ""
        return f"rule {index + 1} ({self.tool}{scope})"


class RuleList:
    """An approval policy made of rules (see the module docstring)."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        for rule in rules:
            if not isinstance(rule, Rule):
                raise TypeError(f"approval_policy lists take Rule(...) items, not {rule!r}.")
        self.rules = tuple(rules)

    def evaluate(self, name: str, args: dict[str, Any] | None,
                 context: PolicyContext) -> Verdict | None:
        """The first deciding rule's verdict, or None when no rule decides."""
        from ._approvals import Verdict

        for index, rule in enumerate(self.rules):
            if not (fnmatchcase(name, rule.tool) and fnmatchcase(context.agent or "",
                                                                 rule.agent)):
                continue
            label = rule.label(index)
            outcome: Allow | Deny | Ask | None = rule.then
            if rule.when is not None:
                if args is None:
                    return Verdict("ask", rule=f"{label}: the arguments could not be parsed")
                try:
                    holds = bool(rule.when(args))
                except Exception as exc:  # fail closed
                    return Verdict("ask", rule=f"{label}: its condition raised {exc!r}")
                outcome = rule.then if holds else rule.otherwise
            if outcome is not None:
                return verdict_of(outcome, label)
        return None


def verdict_of(outcome: Allow | Deny | Ask, rule: str) -> Verdict:
    from ._approvals import Allow, Deny, Verdict

    if isinstance(outcome, Allow):
        return Verdict("approve", rule=rule)
    if isinstance(outcome, Deny):
        return Verdict("reject", rule=rule, reason=outcome.reason, stop=outcome.stop)
    return Verdict("ask", rule=rule, reason=outcome.reason)
