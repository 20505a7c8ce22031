"""The versioned merchandising rule store: rule sets saved as JSON under ``$RECSYS_HOME``.

Layout: ``$RECSYS_HOME/merchandising/<dataset>/v1.json, v2.json, ...`` (one file per saved
rule set, never rewritten) and ``active.json`` (which version is served). Every
:meth:`RuleStore.save` writes the next version with who saved it and when, makes it the
active one and writes an audit row; earlier versions stay and can be made active again
(:meth:`RuleStore.activate`). Saving needs the ``analyst`` role (admins too): a viewer is
refused with :class:`~recsys_core.errors.AuthError`. Files are written atomically
(:mod:`recsys_core.io_utils`) and read through a pydantic schema (:class:`RuleSetFile`),
so a hand-edited file with a mistake is named with the rule and field at fault.

The service adds the active set to every list policy that names none
(:meth:`recsys_core.serving.service.RecommendationService.resolve_policy`).
"""

from __future__ import annotations

import fcntl
import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from recsys_core.errors import AuthError, ConfigError
from recsys_core.io_utils import atomic_write_text
from recsys_core.merchandising import MerchandisingRule
from recsys_core.paths import recsys_home
from recsys_core.policy import ListPolicy
from recsys_core.security import audit
from recsys_core.security.users import role_allows

__all__ = [
    "SAVE_ROLE",
    "RuleSet",
    "RuleSetFile",
    "RuleSpec",
    "RuleStore",
    "ServedRules",
    "parse_rules",
]

#: The role needed to save or activate a rule set (admins have it too).
SAVE_ROLE: Final = "analyst"
#: Audit actions.
SAVE_ACTION: Final = "merchandising-save"
ACTIVATE_ACTION: Final = "merchandising-activate"
FORMAT: Final = 1
_VERSION = re.compile(r"^v([1-9][0-9]*)$")
_ACTIVE = "active.json"


class RuleSpec(BaseModel):
    """One rule as stored (see :class:`~recsys_core.merchandising.MerchandisingRule`)."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["pin", "boost", "block"] = Field(description="pin, boost or block.")
    item_ids: list[str] = Field(default_factory=list, description="Items the rule is about.")
    categories: list[str] = Field(default_factory=list, description="Categories it is about.")
    position: int | None = Field(None, ge=1, description="1-based position (pin).")
    weight: float = Field(0.0, gt=-1, description="Score x (1 + weight) (boost).")
    segment: str | None = Field(None, description="'column=value', e.g. 'volume=heavy'.")
    start: date | None = Field(None, description="First day (inclusive).")
    end: date | None = Field(None, description="Last day (inclusive).")
    note: str = Field("", max_length=500, description="Why the rule exists.")

    def to_rule(self) -> MerchandisingRule:
        """The rule (its own checks: a target, a pin position, a window in order, ...)."""
        return MerchandisingRule(
            action=self.action,
            item_ids=tuple(self.item_ids),
            categories=tuple(self.categories),
            position=self.position,
            weight=self.weight,
            segment=self.segment,
            start=self.start,
            end=self.end,
            note=self.note,
        )


class RuleSetFile(BaseModel):
    """One saved version of a dataset's rules (``v<N>.json``)."""

    model_config = ConfigDict(extra="forbid")

    format: int = Field(FORMAT, description="File format version.")
    dataset: str = Field(min_length=1)
    version: str = Field(description="v1, v2, ...")
    saved_by: str = Field(min_length=1, description="Audit actor who saved it.")
    saved_at: datetime = Field(description="When (UTC).")
    note: str = Field("", max_length=500, description="What changed.")
    rules: list[RuleSpec] = Field(default_factory=list)

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        if not _VERSION.match(value):
            raise ValueError(f"version must look like v1, v2, ... (got {value!r})")
        return value


@dataclass(frozen=True)
class RuleSet:
    """A saved rule set: the rules and who saved them when."""

    dataset: str
    version: str
    saved_by: str
    saved_at: datetime
    note: str
    rules: tuple[MerchandisingRule, ...]

    def summary(self) -> dict[str, Any]:
        """One row of the version history."""
        return {
            "version": self.version,
            "saved_by": self.saved_by,
            "saved_at": self.saved_at.isoformat(timespec="seconds"),
            "rules": len(self.rules),
            "note": self.note,
        }


def _explain(exc: ValidationError, where: str) -> str:
    """A pydantic error as one line naming the rule (1-based) and field at fault."""
    problems = []
    for error in exc.errors():
        loc = [str(p) for p in error["loc"]]
        if len(loc) >= 2 and loc[0] == "rules" and loc[1].isdigit():
            loc = [f"rule {int(loc[1]) + 1}", *loc[2:]]
        problems.append(f"{' '.join(loc) or 'file'}: {error['msg']}")
    return f"{where}: " + "; ".join(problems) + " -- fix it and save again"


def parse_rules(
    rows: Sequence[dict[str, Any]], where: str = "merchandising rules"
) -> tuple[MerchandisingRule, ...]:
    """Rules from plain dicts (a form, a JSON file), each checked by :class:`RuleSpec` and
    :class:`~recsys_core.merchandising.MerchandisingRule`.

    Raises
    ------
    ConfigError
        Naming the rule (1-based) and the field at fault.
    """
    out = []
    for n, row in enumerate(rows, start=1):
        try:
            out.append(RuleSpec.model_validate(row).to_rule())
        except ValidationError as exc:
            raise ConfigError(_explain(exc, f"{where}, rule {n}")) from None
        except ConfigError as exc:
            raise ConfigError(f"{where}, rule {n}: {exc}") from None
    return tuple(out)


class RuleStore:
    """The versioned rule sets of one dataset (see the module docstring)."""

    def __init__(self, dataset: str, home: Path | None = None) -> None:
        if not dataset or "/" in dataset or dataset.startswith("."):
            raise ConfigError(f"not a dataset name for the rule store: {dataset!r}")
        self.dataset = dataset
        self.home = home
        self.folder = (home or recsys_home()) / "merchandising" / dataset

    # ------------------------------------------------------------------ reading
    def version_names(self) -> list[str]:
        """Saved versions, oldest first."""
        if not self.folder.is_dir():
            return []
        found = []
        for path in self.folder.glob("v*.json"):
            match = _VERSION.match(path.stem)
            if match:
                found.append((int(match.group(1)), path.stem))
        return [name for _, name in sorted(found)]

    def load(self, version: str) -> RuleSet:
        """One saved version.

        Raises
        ------
        ConfigError
            No such version, or a file that is not a valid rule set (field named).
        """
        path = self.folder / f"{version}.json"
        if not _VERSION.match(version) or not path.is_file():
            known = ", ".join(self.version_names()) or "none saved yet"
            raise ConfigError(f"no merchandising rule set {version!r} for {self.dataset} ({known})")
        try:
            data = RuleSetFile.model_validate_json(path.read_text(encoding="utf-8"))
        except ValidationError as exc:
            raise ConfigError(_explain(exc, str(path))) from None
        rules = parse_rules([r.model_dump() for r in data.rules], str(path))
        return RuleSet(data.dataset, data.version, data.saved_by, data.saved_at, data.note, rules)

    def history(self) -> list[RuleSet]:
        """Every saved version, newest first."""
        return [self.load(v) for v in reversed(self.version_names())]

    def active_version(self) -> str | None:
        """The version served (``None``: no rules saved, none served)."""
        path = self.folder / _ACTIVE
        if not path.is_file():
            return None
        try:
            version = json.loads(path.read_text(encoding="utf-8"))["version"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"{path} is not a valid pointer ({exc}): activate a version again"
            ) from None
        return str(version)

    def active(self) -> RuleSet | None:
        """The served rule set, or ``None``."""
        version = self.active_version()
        return None if version is None else self.load(version)

    def stamp(self) -> tuple[int, int] | None:
        """Changes whenever another version is made active (cheap: one ``stat``)."""
        try:
            stat = (self.folder / _ACTIVE).stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_ino

    # ------------------------------------------------------------------ writing
    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / ".lock", "a+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def save(
        self,
        rules: Sequence[MerchandisingRule],
        *,
        role: str | None,
        actor: str,
        note: str = "",
        now: datetime | None = None,
    ) -> RuleSet:
        """Save ``rules`` as the next version and serve it; audited.

        Parameters
        ----------
        role:
            The saver's role (``analyst`` or ``admin`` may save).
        actor:
            The audit actor (``app:<user>``, ``cli:<user>``).

        Raises
        ------
        AuthError
            The role may not save rules (a viewer).
        """
        _check_role(role, "save merchandising rules")
        saved_at = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
        with self._locked():
            names = self.version_names()
            version = f"v{int(names[-1][1:]) + 1 if names else 1}"
            document = RuleSetFile(
                dataset=self.dataset,
                version=version,
                saved_by=actor,
                saved_at=saved_at,
                note=note,
                rules=[RuleSpec.model_validate(r.to_dict()) for r in rules],
            )
            atomic_write_text(self.folder / f"{version}.json", document.model_dump_json(indent=2))
            self._point(version)
        audit.record(
            actor,
            SAVE_ACTION,
            {
                "dataset": self.dataset,
                "version": version,
                "rules": [r.describe() for r in rules],
                "note": note,
            },
            home=self.home,
        )
        return RuleSet(self.dataset, version, actor, saved_at, note, tuple(rules))

    def activate(self, version: str, *, role: str | None, actor: str) -> RuleSet:
        """Serve an earlier version again (a rollback); audited.

        Raises
        ------
        AuthError
            The role may not change rules.
        ConfigError
            No such version.
        """
        _check_role(role, "change the served merchandising rules")
        chosen = self.load(version)
        with self._locked():
            self._point(version)
        audit.record(
            actor, ACTIVATE_ACTION, {"dataset": self.dataset, "version": version}, home=self.home
        )
        return chosen

    def _point(self, version: str) -> None:
        atomic_write_text(self.folder / _ACTIVE, json.dumps({"version": version}) + "\n")


def _check_role(role: str | None, what: str) -> None:
    if not role_allows(role, SAVE_ROLE):
        raise AuthError(
            f"a {role or 'user without a role'} may not {what}: it needs the {SAVE_ROLE} or "
            "admin role (ask an admin)"
        )


class ServedRules:
    """The active rule set of one dataset as a service serves it: re-read only when another
    version is made active (one ``stat`` per request), added to every list policy that names
    no rules of its own (:meth:`apply`)."""

    def __init__(self, dataset: str, home: Path | None = None) -> None:
        self.dataset = dataset
        self.home = home
        self._store: RuleStore | None = None
        self._stamp: tuple[int, int] | None = None
        self._rules: RuleSet | None = None

    def current(self) -> RuleSet | None:
        """The active set (``None``: none saved).

        Raises
        ------
        ConfigError
            The active rule file is not valid (the message names the rule and field).
        """
        if self._store is None:  # made on first use: $RECSYS_HOME is read then
            self._store = RuleStore(self.dataset, self.home)
        stamp = self._store.stamp()
        if stamp != self._stamp:
            self._rules = None if stamp is None else self._store.active()
            self._stamp = stamp
        return self._rules

    def apply(self, policy: ListPolicy) -> ListPolicy:
        """``policy`` with the active rules, unless it names a rule set or rules of its own
        (a preview, or a caller that chose its rules)."""
        if policy.merchandising or policy.rules:
            return policy
        served = self.current()
        if served is None or not served.rules:
            return policy
        return replace(policy, rules=served.rules, merchandising=served.version)
