"""new_value: values of `metric` learned per group, then a value never seen (or forgotten) raises a signal.
"""

from __future__ import annotations

from typing import Any

from ccl.detection.rules import Rule
from ccl.detection.signals import OpenSignals, Signal, field_value


class NewValueDetector:
    """New values of `metric`, learned per group, as Datadog documents newValueOptions.

    Datadog's new value page (docs.datadoghq.com/security/cloud_siem/detect_and_monitor/
    custom_detection_rules/new_value): "The group by field defines the scope within which new values
    are evaluated, such as per account", a rule "Triggers a signal when a value appears that has not
    been observed within the current scope", and with a learning duration of 7 days "the rule learns
    the values for the first seven days and then triggers on any new values after the seven days".
    The API reference (SecurityMonitoringRuleNewValueOptions in datadog-api-client): learningDuration
    is "The duration in days during which values are learned, and after which signals will be
    generated for values that weren't learned. If set to 0, a signal will be generated for all new
    values after the first value is learned"; forgetAfter is "The duration in days after which a
    learned value is forgotten"; with instantaneousBaseline "Datadog uses previous values that fall
    within the defined learning window to construct the baseline ... rather than relying solely on
    gradual learning over time".

    So learning is per scope: a group's learning period starts with its own first value (a new
    hire's first week teaches their countries, instead of being "new" against everyone else's).
    Events older than the rule (`Rule.deployed_at`; by default the rule starts with the first event)
    are ignored, except that an instantaneous baseline learns those within the learning duration
    before the deployment, and the groups it saw then alert from the deployment on.
    """

    def __init__(self, rule: Rule, out: list[Signal]):
        self.rule = rule
        self.signals = OpenSignals(rule, out)
        self.deployed_at = rule.deployed_at
        self.learning_since: dict[Any, float] = {}
        self.known: dict[Any, dict[Any, float]] = {}

    def feed(self, moment: float, event: dict[str, Any], matched: list[int]) -> None:
        query = self.rule.queries[matched[0]]
        group_values = [field_value(event, attribute) for attribute in query.group_by]
        value = field_value(event, query.metric or "")
        if value is None or any(v is None for v in group_values):
            return
        if self.deployed_at is None:
            self.deployed_at = moment
        key = tuple(group_values)
        known = self.known.setdefault(key, {})
        learning_duration = self.rule.learning_duration
        if moment < self.deployed_at:
            if self.rule.instantaneous_baseline and moment >= self.deployed_at - learning_duration:
                known[value] = moment
                self.learning_since[key] = self.deployed_at - learning_duration
            return
        since = self.learning_since.setdefault(key, moment)
        learning = moment - since < learning_duration
        seen_at = known.get(value)
        is_new = seen_at is None or moment - seen_at > self.rule.forget_after
        first_of_group = not known  # with no learning duration, the group's first value is learned
        known[value] = moment
        if learning or not is_new or first_of_group:
            return
        group = {**dict(zip(query.group_by, group_values, strict=True)), query.metric: value}
        self.signals.raise_or_extend((key, value), group, self.rule.cases[0].severity, moment, [(moment, event)])

    def forget_before(self, moment: float) -> None:
        """Drop values that an event at `moment` or later would find forgotten anyway (forget_after).

        Each group keeps one entry, so that a group that was seen stays different from one never seen.
        """
        horizon = moment - self.rule.forget_after
        for known in self.known.values():
            stale = [value for value, seen_at in known.items() if seen_at < horizon]
            for value in stale[1:] if len(stale) == len(known) else stale:
                del known[value]
