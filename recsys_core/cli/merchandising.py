"""``merchandising``: the versioned rule sets (list, show, save, activate) and the preview.

The command line is the machine's operator (as for ``users`` and ``registry``): it saves and
activates with the admin role, audited as ``cli:<OS user>``. Rule files are JSON: a list of
rules, or ``{"rules": [...]}`` (the fields of docs/merchandising.md).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from recsys_core.cli.app import TrainedDatasetOption, _service, app, echo_json
from recsys_core.errors import ConfigError, ModelNotTrainedError
from recsys_core.merchandising import rules_frame
from recsys_core.merchandising_store import RuleStore, parse_rules
from recsys_core.models.registry import RANKER, recommendable_models

merch_app = typer.Typer(
    help="Merchandising rules: pin, boost or block items or categories (docs/merchandising.md)."
)
app.add_typer(merch_app, name="merchandising")

RulesFile = Annotated[
    Path, typer.Argument(help="JSON: a list of rules, or {'rules': [...]}.", exists=False)
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _store(dataset: str | None) -> RuleStore:
    if dataset is None:
        from recsys_core.serving.registry import last_pointer_state

        last, _ = last_pointer_state()
        if last is None:
            raise ModelNotTrainedError(
                "no trained model yet, so no dataset to keep rules for: pass --dataset NAME "
                "or train first"
            )
        dataset = last[0]
    return RuleStore(dataset)


def _read_rules(path: Path) -> Any:
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read rules from {path}: {exc}") from None
    rows = payload.get("rules") if isinstance(payload, dict) else payload
    if not isinstance(rows, list):
        raise ConfigError(f"{path} holds no list of rules: give [...] or {{'rules': [...]}}")
    return parse_rules(rows, str(path))


def _actor() -> str:
    from recsys_core.security.audit import cli_actor

    return cli_actor()


@merch_app.command("list")
def list_versions(dataset: TrainedDatasetOption = None, as_json: JsonFlag = False) -> None:
    """Saved versions, newest first, with who saved them when and which one is served."""
    store = _store(dataset)
    served = store.active_version()
    rows = [{**h.summary(), "served": h.version == served} for h in store.history()]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        typer.echo(f"no merchandising rules saved for {store.dataset}")
    for row in rows:
        mark = "*" if row["served"] else " "
        typer.echo(
            f"{mark} {row['version']:>4}  {row['saved_at']}  {row['saved_by']}  "
            f"{row['rules']} rules  {row['note']}"
        )


@merch_app.command("show")
def show(
    version: Annotated[
        str | None, typer.Option(help="A version (default: the served one).")
    ] = None,
    dataset: TrainedDatasetOption = None,
    as_json: JsonFlag = False,
) -> None:
    """The rules of a version."""
    store = _store(dataset)
    chosen = store.load(version) if version else store.active()
    rules = () if chosen is None else chosen.rules
    if as_json:
        echo_json({"version": None if chosen is None else chosen.version,
                   "rules": [r.to_dict() for r in rules]})  # fmt: skip
        return
    typer.echo(rules_frame(rules).to_string(index=False) if rules else "no rules")


@merch_app.command("save")
def save(
    rules: RulesFile,
    note: Annotated[str, typer.Option(help="What changed.")] = "",
    dataset: TrainedDatasetOption = None,
) -> None:
    """Save a rule file as the next version and serve it (audited)."""
    store = _store(dataset)
    saved = store.save(_read_rules(rules), role="admin", actor=_actor(), note=note)
    typer.echo(f"saved {len(saved.rules)} rules as {saved.version} of {store.dataset}: served now")


@merch_app.command("activate")
def activate(
    version: Annotated[str, typer.Argument(help="The version to serve, e.g. v2.")],
    dataset: TrainedDatasetOption = None,
) -> None:
    """Serve an earlier version again (audited)."""
    store = _store(dataset)
    store.activate(version, role="admin", actor=_actor())
    typer.echo(f"serving {version} of {store.dataset}")


@merch_app.command("preview")
def preview(
    rules: RulesFile,
    user: Annotated[str, typer.Option("--user", help="The shopper's id.")],
    k: Annotated[int, typer.Option("--k", help="Number of items.")] = 10,
    model: Annotated[str, typer.Option(help=" | ".join(recommendable_models()))] = RANKER,
    dataset: TrainedDatasetOption = None,
    as_json: JsonFlag = False,
) -> None:
    """A shopper's list and its expected revenue as served now and under a draft rule file
    (nothing is saved)."""
    from recsys_core.merchandising_preview import preview_rules
    from recsys_core.policy import LAB_RULE

    service = _service(dataset, None)
    result = preview_rules(service, user, k, model, _read_rules(rules), policy=LAB_RULE)
    payload = {
        "user_id": result.user_id,
        "model": result.model,
        "before": result.before["item_id"].tolist(),
        "after": result.after["item_id"].tolist(),
        "revenue_before": _number(result.revenue_before),
        "revenue_after": _number(result.revenue_after),
        "notes": result.notes,
    }
    if as_json:
        echo_json(payload)
        return
    for label, items, money in (
        ("now:       ", payload["before"], result.revenue_before),
        ("with draft:", payload["after"], result.revenue_after),
    ):
        typer.echo(f"{label} {' '.join(items)}  (expected revenue {_money(money)})")
    for line in result.notes:
        typer.echo(f"note: {line}")


def _number(value: float) -> float | None:
    return None if value != value else round(float(value), 4)


def _money(value: float) -> str:
    return "—" if value != value else f"{value:,.2f}"
