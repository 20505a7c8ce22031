"""Commands that answer for a shopper or an item: ``recommend``, ``similar``, ``explain``."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from recsys_core.cli.app import (
    CategoryOption,
    FilterBoughtOption,
    FilterSeenOption,
    HideBoughtDaysOption,
    MaxPriceOption,
    MinPriceOption,
    ModelVersionOption,
    TrainedDatasetOption,
    _service,
    app,
    business_filters,
    echo_json,
    to_json,
)
from recsys_core.errors import ConfigError
from recsys_core.models.registry import (
    ALS,
    RANKER,
    purchase_model,
    recommendable_models,
    similar_item_models,
)
from recsys_core.policy import LAB_RULE, BusinessFilters, ListPolicy, PolicyChoice


def list_policy(
    filter_bought: bool | None,
    filter_seen: bool,
    filters: BusinessFilters | None = None,
    service: Any = None,
) -> PolicyChoice:
    """The list policy of the ``--filter-bought/--keep-bought`` and ``--filter-seen`` flags
    (the lab's rule when neither is given) with the business ``filters`` of the filter
    options (resolved against ``service``'s rule when any is set)."""
    if filter_seen and filter_bought is False:
        raise ConfigError("--filter-seen and --keep-bought contradict each other: pick one")
    choice: PolicyChoice = LAB_RULE
    if filter_seen or filter_bought is not None:
        choice = ListPolicy.from_flags(filter_bought, filter_seen=filter_seen)
    if filters is not None and filters.active:
        return service.resolve_policy(choice).with_filters(filters)
    return choice


@app.command()
def recommend(
    user: Annotated[str, typer.Option("--user", help="The shopper's id.")],
    k: Annotated[int, typer.Option("--k", help="Number of items.")] = 10,
    model: Annotated[str, typer.Option(help=" | ".join(recommendable_models()))] = RANKER,
    filter_bought: FilterBoughtOption = None,
    filter_seen: FilterSeenOption = False,
    category: CategoryOption = None,
    min_price: MinPriceOption = None,
    max_price: MaxPriceOption = None,
    hide_bought_days: HideBoughtDaysOption = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    dataset: TrainedDatasetOption = None,
    version: ModelVersionOption = None,
) -> None:
    """Top-k items for a shopper with titles, scores and purchase probabilities."""
    if k < 1:
        raise ConfigError("--k must be at least 1")
    service = _service(dataset, version)
    filters = business_filters(category, min_price, max_price, hide_bought_days)
    policy = list_policy(filter_bought, filter_seen, filters, service)
    answer = service.recommend(user, k, model, policy=policy)
    if as_json:
        echo_json(to_json("recommend", answer))
        return
    typer.echo(f"shopper {answer['user_id']} (model {answer['model']}, {answer['model_version']})")
    if answer["degraded"]:
        typer.echo(f"note: {answer['reason']}")
    rule = answer.get("list_policy")
    if rule:
        kept = "kept" if rule["repeats"] == "keep" else "left out"
        typer.echo(f"list policy {rule['name']}: already-bought items {kept}: {rule['why']}")
    order = answer.get("order_probability")
    if order is not None:
        typer.echo(f"orders in the next 30 days: {order:.1%}")
    typer.echo("rank  if they order  overall  item")

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.1%}"

    for item in answer["items"]:
        typer.echo(
            f"{item['rank']:>4}. {pct(item['purchase_probability']):>12}  "
            f"{pct(item.get('probability')):>7}  {item['item_id']:<10} {item['title']}"
        )


@app.command()
def similar(
    item: Annotated[str, typer.Option("--item", help="The product's id.")],
    k: Annotated[int, typer.Option("--k", help="Number of items.")] = 10,
    model: Annotated[str, typer.Option(help=" | ".join(similar_item_models()))] = ALS,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    dataset: TrainedDatasetOption = None,
    version: ModelVersionOption = None,
) -> None:
    """Items similar to a product."""
    answer = _service(dataset, version).similar(item, k, model)
    if as_json:
        echo_json(to_json("similar", answer))
        return
    typer.echo(f"similar to {answer['item_id']} {answer['title']} (model {model})")
    if answer.get("note"):
        typer.echo(f"note: {answer['note']}")
    for it in answer["items"]:
        typer.echo(
            f"{it['rank']:>3}. {it['score']:12.4g} {it['score_label']:<29} "
            f"support {it['support']:>4}  {it['item_id']:<10} {it['title']}"
        )


@app.command()
def explain(
    user: Annotated[str, typer.Option("--user", help="The shopper's id.")],
    item: Annotated[str, typer.Option("--item", help="The product's id.")],
    model: Annotated[
        str,
        typer.Option(
            help="The model whose list is explained (it gives the reasons): "
            + " | ".join(recommendable_models())
        ),
    ] = RANKER,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    dataset: TrainedDatasetOption = None,
    version: ModelVersionOption = None,
) -> None:
    """Why the item is in the model's list: for the purchase model SHAP reasons and its own
    stage-one "because you bought"; for another model its own reasons (ALS's factors,
    item-kNN's neighbours), each saying what was counted (bought / viewed).

    An unknown shopper gets the API's documented cold-start answer (the item's base rate,
    no reasons, ``degraded``): both go through :meth:`RecommendationService.explain_answer`.
    """
    service = _service(dataset, version)
    if model == purchase_model():  # the API's /explain answer, as is
        answer = service.explain_answer(user, item)
    else:  # the reasons of the model that served the list
        answer = service.explain_served(user, item, model)
    if as_json:
        echo_json(to_json("explain", answer))
        return
    if answer.get("degraded"):
        typer.echo(f"note: {answer['reason']}")
    probability = answer["probability"]
    shown = "n/a" if probability is None else f"{probability:.1%}"
    margin = ""
    if answer.get("raw_score") is not None and answer.get("base_value") is not None:
        margin = f" (margin {answer['raw_score']:+.3f}, base {answer['base_value']:+.3f})"
    typer.echo(
        f"shopper {answer['user_id']} buys {answer['item_id']} with probability "
        f"{shown} if they order{margin}"
    )
    if answer.get("order_probability") is not None:
        typer.echo(
            f"orders in the next 30 days: {answer['order_probability']:.1%}; overall: "
            f"{answer['overall_probability']:.1%}"
        )
    for c in answer["contributions"][:8]:
        label = c.get("label") or c["feature"]
        typer.echo(f"  {c['contribution']:+.3f}  {label}")
    if answer["because_you_bought"]:
        typer.echo(f"{answer.get('reasons_label', 'Because you bought').lower()} (from {model}):")
        for b in answer["because_you_bought"]:
            counted = b.get("counted", "bought")
            typer.echo(f"  {b['contribution']:+.3f}  {b['item_id']:<10} {counted:<7} {b['title']}")
