"""Loaders and validation: good logs load, every kind of bad input gives one clear message."""

from __future__ import annotations

import bz2
import gzip
import io
from pathlib import Path

import pandas as pd
import pytest

from recsys_core.columns import EVENT_TYPES
from recsys_core.data.loaders import (
    load_event_file,
    online_retail_from_frame,
    retailrocket_from_frame,
)
from recsys_core.errors import DataValidationError

GOOD = (
    "user_id,item_id,event,timestamp,quantity,price\n"
    "u1,i1,view,2024-01-01 10:00:00,1,2.5\n"
    "u1,i1,purchase,2024-01-02 10:00:00,2,2.5\n"
    "u2,i2,cart,2024-01-03 11:00:00,1,10\n"
    "u2,i1,favorite,2024-01-04 12:00:00,1,2.5\n"
)


def test_generic_csv_loads_in_canonical_form(write_csv) -> None:
    ds = load_event_file(write_csv("log.csv", GOOD))
    ev = ds.events
    assert list(ev.columns) == ["user_id", "item_id", "event", "timestamp", "quantity", "price"]
    assert list(ev["event"].cat.categories) == list(EVENT_TYPES)
    assert str(ev["timestamp"].dtype) == "datetime64[ns]"
    assert ev["quantity"].tolist() == [1.0, 2.0, 1.0, 1.0]
    assert ds.summary()["events_by_type"] == {"view": 1, "cart": 1, "favorite": 1, "purchase": 1}
    assert sorted(ds.catalog["item_id"]) == ["i1", "i2"]


def test_column_and_event_mapping(write_csv) -> None:
    text = "CustomerID;SKU;action\n7;A;click\n7;B;buy\n8;A;seen\n"
    path = write_csv("mapped.csv", text)
    ds = load_event_file(
        path,
        column_map={"user_id": "CustomerID", "item_id": "SKU", "event": "action"},
        event_map={"seen": "view"},
    )
    assert ds.events["event"].tolist() == ["view", "purchase", "view"]
    assert not ds.has_timestamps
    assert any("random split" in n for n in ds.notes)


def test_parquet_and_timestamps_in_epoch_ms(tmp_path: Path) -> None:
    df = pd.DataFrame(
        {
            "user_id": [1, 2],
            "item_id": ["a", "b"],
            "event": ["view", "purchase"],
            "timestamp": [1_700_000_000_000, 1_700_000_100_000],
        }
    )
    path = tmp_path / "log.parquet"
    df.to_parquet(path)
    ds = load_event_file(path)
    assert ds.events["timestamp"].iloc[0] == pd.Timestamp("2023-11-14 22:13:20")
    assert ds.events["user_id"].astype(str).tolist() == ["1", "2"]


@pytest.mark.parametrize(
    ("values", "first"),
    [
        # epochs written as text: numbers all the way down
        (["1700000000"] * 150 + ["1700000100"], pd.Timestamp("2023-11-14 22:13:20")),
        # dates as text (Online Retail): the first values are not numbers
        (["2010-12-01 08:26"] * 150 + ["2011-12-09 12:50"], pd.Timestamp("2010-12-01 08:26")),
    ],
)
def test_text_timestamps_are_epochs_only_when_every_value_is_a_number(
    tmp_path: Path, values: list[str], first: pd.Timestamp
) -> None:
    """The column is not converted to numbers when its first values already are not (a
    shortcut of the first page's load, issue 24): the parse is the same."""
    n = len(values)
    df = pd.DataFrame(
        {
            "user_id": [f"u{i}" for i in range(n)],
            "item_id": ["a"] * n,
            "event": ["purchase"] * n,
            "timestamp": values,
        }
    )
    path = tmp_path / "log.parquet"
    df.to_parquet(path)  # the timestamps stay text (a CSV reader would make numbers of them)
    events = load_event_file(path).events
    assert events["timestamp"].min() == first
    assert events["timestamp"].notna().all()


@pytest.mark.parametrize("kind", ["gzip", "bz2"])
def test_compressed_file_under_plain_name_is_read(write_csv, kind: str) -> None:
    data = gzip.compress(GOOD.encode()) if kind == "gzip" else bz2.compress(GOOD.encode())
    ds = load_event_file(write_csv("log.csv", data))
    assert len(ds.events) == 4
    assert any(kind in n for n in ds.notes)


def test_parquet_under_csv_name_is_read_with_a_note(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    pd.read_csv(io.StringIO(GOOD)).to_parquet(path)
    ds = load_event_file(path)
    assert len(ds.events) == 4
    assert any("Parquet" in n for n in ds.notes)


def test_utf8_bom_and_latin1_with_encoding_option(write_csv) -> None:
    ds = load_event_file(write_csv("bom.csv", "\ufeff" + GOOD))
    assert len(ds.events) == 4
    latin = "user_id,item_id,event\nJosé,café,view\n".encode("latin-1")
    ds = load_event_file(write_csv("latin.csv", latin), encoding="latin-1")
    assert ds.events["user_id"].astype(str).tolist() == ["José"]


def _error(path: Path, **kwargs: object) -> str:
    with pytest.raises(DataValidationError) as info:
        load_event_file(path, **kwargs)  # type: ignore[arg-type]
    return str(info.value)


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("empty.csv", "", "empty"),
        ("blank.csv", "\n\n  \n", "empty"),
        ("header.csv", "user_id,item_id,event,timestamp\n", "no rows"),
        ("missing.csv", "user,item_id\nu1,i1\n", "missing required column(s) ['user_id', 'event']"),
        ("dupe.csv", "user_id,item_id,event,event\nu,i,view,view\n", "duplicated column"),
        ("fields.csv", "user_id,item_id,event\nu1,i1,view\nu2,i2,view,extra\n", "line 3 has 4"),
        ("short.csv", "user_id,item_id,event\nu1,i1\n", "line 2 has 2"),
        (
            "ts.csv",
            "user_id,item_id,event,timestamp\nu1,i1,view,2024-01-01\nu1,i2,view,yesterday\n",
            "line 3 ('yesterday')",
        ),
        ("ev.csv", "user_id,item_id,event\nu1,i1,click\nu1,i2,zap\n", "'zap' (1 rows)"),
        (
            "qty.csv",
            "user_id,item_id,event,quantity\nu1,i1,purchase,two\n",
            "non-numeric value(s) in column 'quantity'",
        ),
        (
            "price.csv",
            "user_id,item_id,event,price\nu1,i1,purchase,€3\n",
            "column 'price' in price.csv at line 2 ('€3')",
        ),
        ("ids.csv", "user_id,item_id,event\n,,view\n,,view\n", "every row"),
        ("someids.csv", "user_id,item_id,event\nu1,i1,view\n,i2,view\n", "empty user_id"),
    ],
)
def test_bad_input_gives_one_clear_message(
    write_csv, name: str, content: str, expected: str
) -> None:
    message = _error(write_csv(name, content))
    assert expected in message, message


def test_unknown_events_message_shows_how_to_map(write_csv) -> None:
    message = _error(write_csv("ev.csv", "user_id,item_id,event\nu1,i1,zap\n"))
    assert "--event-map zap=" in message


def test_missing_columns_message_lists_what_exists(write_csv) -> None:
    message = _error(write_csv("m.csv", "a,b\n1,2\n"))
    assert "['a', 'b']" in message and "--map" in message


def test_undecodable_text_names_the_line(write_csv) -> None:
    raw = "user_id,item_id,event\nu1,i1,view\nu2,caf\xe9,view\n".encode("latin-1")
    message = _error(write_csv("enc.csv", raw))
    assert "line 3" in message and "0xe9" in message and "--encoding" in message


def test_binary_junk_is_named(write_csv) -> None:
    message = _error(write_csv("junk.csv", bytes(range(256)) * 10))
    assert "binary" in message


def test_fake_parquet_is_reported(write_csv) -> None:
    message = _error(write_csv("fake.parquet", bytes(range(256)) * 10))
    assert "binary" in message
    broken = b"PAR1" + b"\x00garbage" * 50
    message = _error(write_csv("broken.parquet", broken))
    assert "Parquet" in message and "damaged" in message


def test_text_under_parquet_name_is_read_as_csv(write_csv) -> None:
    ds = load_event_file(write_csv("actually_csv.parquet", GOOD))
    assert len(ds.events) == 4
    assert any("not Parquet" in n for n in ds.notes)


def test_online_retail_cleaning(online_retail_slice: pd.DataFrame) -> None:
    raw = online_retail_slice
    ds = online_retail_from_frame(raw, source="slice")
    ev = ds.events
    assert set(ev["event"].astype(str)) == {"purchase"}
    assert (ev["quantity"] > 0).all() and (ev["price"] > 0).all()
    assert ev["item_id"].astype(str).str.match(r"^\d{5}").all()
    kept_customers = set(ev["user_id"].astype(str))
    assert "nan" not in kept_customers
    expected_rows = raw[
        ~raw.InvoiceNo.astype(str).str.startswith("C")
        & (raw.Quantity > 0)
        & (raw.UnitPrice > 0)
        & raw.CustomerID.notna()
        & raw.StockCode.str.match(r"^\d{5}")
    ]
    assert len(ev) == len(expected_rows)
    assert set(ds.catalog["item_id"]) == set(ev["item_id"].astype(str))
    assert ds.catalog["title"].str.len().gt(0).all()


def test_online_retail_file_via_auto_detection(
    online_retail_slice: pd.DataFrame, tmp_path: Path
) -> None:
    path = tmp_path / "retail.csv"
    online_retail_slice.to_csv(path, index=False)
    ds = load_event_file(path)
    assert ds.summary()["events_by_type"]["purchase"] > 1000


def test_retailrocket_mapping(write_csv) -> None:
    text = (
        "timestamp,visitorid,event,itemid,transactionid\n"
        "1433221332117,257597,view,355908,\n"
        "1433224214164,992329,addtocart,248676,\n"
        "1433221999827,111016,transaction,318965,4000\n"
    )
    ds = load_event_file(write_csv("events.csv", text))
    assert sorted(ds.events["event"].astype(str)) == ["cart", "purchase", "view"]
    assert ds.events["timestamp"].min() == pd.Timestamp("2015-06-02 05:02:12.117")


def test_retailrocket_bad_timestamp() -> None:
    raw = pd.DataFrame({"timestamp": ["x"], "visitorid": ["1"], "event": ["view"], "itemid": ["2"]})
    with pytest.raises(DataValidationError, match="Unix milliseconds"):
        retailrocket_from_frame(raw)
