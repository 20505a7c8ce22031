"""The demo store's catalog: its categories, styles, brands, items and titles.

Part of :mod:`recsys_core.data.demo_store` (whose docstring tells the whole generative
story; the catalog is told here): :func:`make_items` draws each item's latent attributes (category,
style, price level, Zipf popularity, price) and :func:`make_catalog` its shown catalog row
(id, title, category, brand, price). Both draw from the store's one generator, in the order
:func:`~recsys_core.data.demo_store.generate_demo_store` calls them.

12 categories (:data:`CATEGORIES`), five of them consumables (Coffee & Tea, Pet Supplies,
Cleaning, Bath & Body, Snacks & Pantry). An item has a category, a *style* (Nordic,
Rustic, Urban, Bright; the title's first word says which), a *price level* (budget,
standard, premium: 40/40/20 %), a brand (two invented brands per category and level) and
a price that is log-normal around the category's median times the level's multiplier
(0.6, 1.0, 1.8), rounded to ``.99``. Titles read like "Nordic Oak Coffee Mug": a style
adjective, a material or flavour and a product noun of the category; they are unique
(a repeated combination gets an edition suffix such as "Mini" or "XL"). Popularity is
Zipf-like within a category (weight ``1 / rank ** 0.9``, ranks shuffled).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd

from recsys_core.columns import Columns
from recsys_core.data.dataset import canonical_ids

__all__ = [
    "CATEGORIES",
    "STYLES",
    "CategorySpec",
    "Items",
    "numbered_ids",
    "make_catalog",
    "make_items",
]


@dataclass(frozen=True)
class CategorySpec:
    """One product category of the demo store.

    Attributes
    ----------
    name:
        Category name shown in the catalog.
    weight:
        Relative share of shoppers' attention (the mean of their category tastes).
    median_price:
        Median price of a standard-level item, in the shop's currency.
    materials:
        Materials or flavours, the second word of a title.
    nouns:
        Product nouns, the end of a title.
    reorder_days:
        Mean days between repurchases for consumables; ``None`` for durable goods.
    """

    name: str
    weight: float
    median_price: float
    materials: tuple[str, ...]
    nouns: tuple[str, ...]
    reorder_days: float | None = None


#: The product categories, in catalog order.
# fmt: off
CATEGORIES: Final[tuple[CategorySpec, ...]] = (
    CategorySpec(
        "Kitchen",
        1.2,
        24.0,
        ("Oak", "Bamboo", "Ceramic", "Cast Iron", "Stainless Steel", "Copper", "Stoneware",
         "Glass", "Enamel", "Walnut"),
        ("Coffee Mug", "Chef's Knife", "Cutting Board", "Saucepan", "Mixing Bowl", "Spatula",
         "Frying Pan", "Salad Bowl", "Teapot", "Dinner Plate", "Utensil Set"),
    ),
    CategorySpec(
        "Coffee & Tea",
        1.0,
        11.0,
        ("Arabica", "Colombian", "Ethiopian", "Dark Roast", "Medium Roast", "Earl Grey",
         "Jasmine", "Peppermint", "Decaf", "Rooibos"),
        ("Coffee Beans", "Ground Coffee", "Espresso Pods", "Tea Bags", "Loose Leaf Tea",
         "Cold Brew Blend", "Herbal Infusion", "Chai Mix", "Instant Coffee"),
        reorder_days=21.0,
    ),
    CategorySpec(
        "Pet Supplies",
        0.8,
        18.0,
        ("Salmon", "Chicken", "Grain-Free", "Lamb & Rice", "Senior", "Puppy", "Hypoallergenic",
         "Organic", "Turkey"),
        ("Dog Food", "Cat Food", "Cat Litter", "Dog Treats", "Chew Toy", "Pet Shampoo",
         "Bird Seed", "Dental Sticks", "Pet Bed"),
        reorder_days=30.0,
    ),
    CategorySpec(
        "Cleaning",
        0.8,
        7.0,
        ("Lemon", "Lavender", "Eucalyptus", "Unscented", "Eco", "Citrus", "Pine", "Sensitive",
         "Mint"),
        ("Dish Soap", "Laundry Detergent", "Surface Spray", "Sponges", "Microfiber Cloths",
         "Glass Cleaner", "Dishwasher Tablets", "Floor Cleaner", "Trash Bags"),
        reorder_days=40.0,
    ),
    CategorySpec(
        "Bath & Body",
        0.9,
        9.0,
        ("Aloe", "Coconut", "Shea Butter", "Argan", "Oatmeal", "Rose", "Charcoal", "Tea Tree",
         "Vanilla"),
        ("Shampoo", "Conditioner", "Body Wash", "Hand Soap", "Body Lotion", "Bath Salts",
         "Lip Balm", "Shower Gel", "Face Cream"),
        reorder_days=35.0,
    ),
    CategorySpec(
        "Snacks & Pantry",
        0.8,
        5.0,
        ("Sea Salt", "Almond", "Organic", "Wildflower", "Tuscan", "Smoked", "Spicy", "Maple",
         "Hazelnut"),
        ("Granola", "Dark Chocolate", "Trail Mix", "Olive Oil", "Pasta", "Honey", "Crackers",
         "Peanut Butter", "Jam"),
        reorder_days=25.0,
    ),
    CategorySpec(
        "Stationery",
        0.7,
        6.0,
        ("Recycled Paper", "Leather", "Linen", "Kraft", "Cork", "Brass", "Dotted", "Hardcover",
         "Felt"),
        ("Notebook", "Gel Pens", "Sketchbook", "Planner", "Sticky Notes", "Pencil Case",
         "Desk Organizer", "Fountain Pen", "Washi Tape"),
    ),
    CategorySpec(
        "Toys",
        0.8,
        22.0,
        ("Wooden", "Felt", "Cotton", "Magnetic", "Cardboard", "Rubber", "Bamboo", "Knitted",
         "Plush"),
        ("Building Blocks", "Puzzle", "Teddy Bear", "Train Set", "Board Game", "Kite",
         "Doll House", "Stacking Rings", "Hand Puppet"),
    ),
    CategorySpec(
        "Home Decor",
        1.0,
        30.0,
        ("Linen", "Velvet", "Rattan", "Marble", "Ceramic", "Brass", "Wool", "Terracotta",
         "Glass"),
        ("Scented Candle", "Throw Pillow", "Picture Frame", "Vase", "Wall Clock", "Table Lamp",
         "Blanket", "Mirror", "Plant Pot"),
    ),
    CategorySpec(
        "Garden",
        0.6,
        20.0,
        ("Galvanized", "Terracotta", "Cedar", "Recycled", "Steel", "Willow", "Rubber", "Resin",
         "Zinc"),
        ("Watering Can", "Seed Kit", "Planter", "Pruning Shears", "Garden Gloves",
         "Bird Feeder", "Hose Nozzle", "Trowel", "Solar Lantern"),
    ),
    CategorySpec(
        "Electronics Accessories",
        0.9,
        25.0,
        ("Braided", "Silicone", "Aluminium", "Leather", "Fabric", "Matte", "Carbon",
         "Transparent", "Magnetic"),
        ("USB-C Cable", "Phone Case", "Wireless Charger", "Earbuds", "Power Bank",
         "Laptop Sleeve", "Bluetooth Speaker", "Keyboard", "Mouse Pad"),
    ),
    CategorySpec(
        "Sports & Outdoors",
        0.7,
        28.0,
        ("Cork", "Recycled", "Merino", "Nylon", "Titanium", "Rubber", "Canvas", "Ripstop",
         "Bamboo"),
        ("Yoga Mat", "Water Flask", "Resistance Bands", "Running Cap", "Camping Mug",
         "Daypack", "Jump Rope", "Foam Roller", "Trekking Poles"),
    ),
)

#: Style names and the adjectives that open a title of that style.
STYLES: Final[dict[str, tuple[str, ...]]] = {
    "Nordic": ("Nordic", "Scandi", "Fjord", "Arctic", "Minimal"),
    "Rustic": ("Rustic", "Farmhouse", "Heritage", "Country", "Vintage"),
    "Urban": ("Urban", "Modern", "Metro", "Sleek", "Studio"),
    "Bright": ("Sunny", "Bright", "Happy", "Tropical", "Coral"),
}

_BRAND_HEADS: Final = (
    "Nor", "Lum", "Ash", "Bri", "Cal", "Dun", "Eld", "Fen", "Gal", "Hal", "Ivo", "Jun",
    "Kes", "Lor", "Mar", "Ost",
)
_BRAND_TAILS: Final = (
    "vik", "ora", "mere", "wick", "stone", "ford", "ley", "ton", "bury", "wyn", "dale", "holt",
)
# fmt: on
#: Suffixes that tell apart items whose style, material and noun coincide.
_EDITIONS: Final = ("Mini", "XL", "Duo", "Pro", "Classic", "Plus", "Family Size", "Travel")

# Price levels: budget, standard, premium.
_LEVEL_SHARE_ITEMS: Final = np.array([0.4, 0.4, 0.2])
_LEVEL_PRICE_FACTOR: Final = np.array([0.6, 1.0, 1.8])
_PRICE_SIGMA: Final = 0.25
_ZIPF_EXPONENT: Final = 0.9


def numbered_ids(prefix: str, n: int) -> pd.Index:
    """``prefix`` + 1..n zero-padded to the width of ``n`` (sorted order = number order)."""
    width = len(str(n))
    numbers = canonical_ids(pd.Series(np.arange(1, n + 1))).str.zfill(width)
    return pd.Index(prefix + numbers, dtype="str")


@dataclass(frozen=True)
class Items:
    """Latent item attributes, one entry per item index."""

    category: np.ndarray  # int16
    style: np.ndarray  # int8
    level: np.ndarray  # int8
    popularity: np.ndarray  # float64, Zipf weight within the category
    price: np.ndarray  # float64
    combo: np.ndarray  # int64, index into the category's (adjective, material, noun) space
    edition: np.ndarray  # int64, 0 for the first item with that combination


def make_items(rng: np.random.Generator, n_items: int, n_categories: int) -> Items:
    weights = np.array([c.weight for c in CATEGORIES[:n_categories]])
    # every category gets at least one item, the rest by weight
    category = np.concatenate(
        [
            np.arange(n_categories),
            rng.choice(n_categories, size=n_items - n_categories, p=weights / weights.sum()),
        ]
    ).astype(np.int16)
    category = rng.permutation(category)
    level = rng.choice(3, size=n_items, p=_LEVEL_SHARE_ITEMS).astype(np.int8)

    n_adjectives = sum(len(a) for a in STYLES.values())
    adjectives_per_style = len(next(iter(STYLES.values())))
    combo = np.zeros(n_items, dtype=np.int64)
    edition = np.zeros(n_items, dtype=np.int64)
    popularity = np.zeros(n_items, dtype=np.float64)
    medians = np.zeros(n_items, dtype=np.float64)
    for c, spec in enumerate(CATEGORIES[:n_categories]):
        members = np.flatnonzero(category == c)
        space = n_adjectives * len(spec.materials) * len(spec.nouns)
        order = np.arange(len(members))
        combo[members] = rng.permutation(space)[order % space]
        edition[members] = order // space
        ranks = rng.permutation(len(members))
        popularity[members] = 1.0 / (ranks + 1.0) ** _ZIPF_EXPONENT
        medians[members] = spec.median_price
    # the adjective is the slowest-moving digit of the combination index
    adjective = combo // _combo_tail_sizes(category, n_categories)
    style = (adjective // adjectives_per_style).astype(np.int8)

    raw = medians * _LEVEL_PRICE_FACTOR[level] * rng.lognormal(0.0, _PRICE_SIGMA, n_items)
    price = np.where(raw >= 5.0, np.maximum(np.round(raw), 1.0) - 0.01, np.round(raw, 1) - 0.01)
    price = np.round(np.maximum(price, 0.49), 2)
    return Items(category, style, level, popularity, price, combo, edition)


def _combo_tail_sizes(category: np.ndarray, n_categories: int) -> np.ndarray:
    """Per item: len(materials) * len(nouns) of its category (the adjective's place value)."""
    tail = np.array([len(s.materials) * len(s.nouns) for s in CATEGORIES[:n_categories]])
    return tail[category]


def make_catalog(rng: np.random.Generator, items: Items, n_categories: int) -> pd.DataFrame:
    n_items = len(items.category)
    adjectives = np.array([a for group in STYLES.values() for a in group], dtype=object)
    tail = _combo_tail_sizes(items.category, n_categories)
    adjective = items.combo // tail
    rest = items.combo % tail

    titles = np.empty(n_items, dtype=object)
    for c, spec in enumerate(CATEGORIES[:n_categories]):
        members = np.flatnonzero(items.category == c)
        materials = np.array(spec.materials, dtype=object)
        nouns = np.array(spec.nouns, dtype=object)
        r = rest[members]
        titles[members] = (
            adjectives[adjective[members]]
            + " "
            + materials[r // len(spec.nouns)]
            + " "
            + nouns[r % len(spec.nouns)]
        )
    title = pd.Series(titles, dtype="str")
    repeat = items.edition
    if repeat.any():
        editions = np.array(("",) + _EDITIONS, dtype=object)
        n_ed = len(_EDITIONS)
        suffix = pd.Series(editions[np.where(repeat > 0, (repeat - 1) % n_ed + 1, 0)], dtype="str")
        rounds = (repeat - 1) // n_ed
        # title text ("Mug 2"), not an id
        numbered = pd.Series(np.where(rounds > 0, " " + (rounds + 1).astype(str), ""), dtype="str")
        title = title.where(repeat == 0, title + " " + suffix + numbered)

    # two invented brands per category and price level
    n_heads, n_tails = len(_BRAND_HEADS), len(_BRAND_TAILS)
    picks = rng.choice(n_heads * n_tails, size=(n_categories, 3, 2), replace=False)
    names = np.array([h + t for h in _BRAND_HEADS for t in _BRAND_TAILS], dtype=object)
    brand_of = names[picks]  # (category, level, 2)
    which = rng.integers(0, 2, size=n_items)
    brand = brand_of[items.category, items.level, which]

    category_names = np.array([c.name for c in CATEGORIES[:n_categories]], dtype=object)
    return pd.DataFrame(
        {
            Columns.ITEM: pd.Series(numbered_ids("P", n_items), dtype="str"),
            Columns.TITLE: title,
            Columns.CATEGORY: pd.Series(category_names[items.category], dtype="str"),
            Columns.BRAND: pd.Series(brand, dtype="str"),
            Columns.PRICE: items.price.astype(np.float64),
        }
    )
